"""Helpers for the end-to-end tests: references, result checks, directory states, and running as another uid."""

from __future__ import annotations

import functools
import json
import os
import shlex
import stat
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.conftest import (
    ACCOUNT,
    REGION,
    SIDECAR,
    SecretValues,
    SidecarResult,
    run_captured,
    skip_unless_required,
    snapshot,
)

NOBODY = 65534  # uid and gid of an unprivileged user that exists in every Debian-based image


def secret_arn_prefix(region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:secretsmanager:{region}:{account}:secret:"


def parameter_arn(name: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


def secrets_json(*entries: dict[str, Any]) -> str:
    return json.dumps(list(entries))


# --- results ----------------------------------------------------------------------------------------------


def api_calls(result: SidecarResult, operation: str | None = None) -> list[dict[str, Any]]:
    return [e for e in result.events
            if e.get("event") == "api_call" and (operation is None or e.get("operation") == operation)]


def assert_ok(result: SidecarResult) -> dict[str, Any]:
    """The run succeeded: exit 0, a final ``done`` event, nothing on stderr. Returns the ``done`` event."""
    assert result.code == 0, f"exit {result.code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.final["event"] == "done", result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    return result.final


def assert_failed(result: SidecarResult, exit_code: int, *fragments: str) -> dict[str, Any]:
    """The run failed as expected: its exit code, and one final one-line ``failed`` event whose reason holds
    every fragment; no traceback anywhere. Returns the ``failed`` event."""
    assert result.code == exit_code, f"exit {result.code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout
    failed = result.event("failed")
    assert result.final is not None and result.final == failed, "the failed event must be the last line"
    assert failed["exit_code"] == exit_code
    assert failed["level"] == "error"
    reason = failed["reason"]
    assert "\n" not in reason and "\n" not in result.stdout.splitlines()[-1]
    for fragment in fragments:
        assert fragment in reason, f"{fragment!r} not in reason {reason!r}"
    return failed


def owner_and_mode(path: Path) -> tuple[int, int, str]:
    info = os.stat(path)
    return info.st_uid, info.st_gid, f"{stat.S_IMODE(info.st_mode):04o}"


# --- directory states -------------------------------------------------------------------------------------


def full_state(directory: Path) -> dict[str, Any]:
    """``snapshot`` plus every entry's type, mode, owner and mtime (lstat: links are not followed). The
    directory itself counts with its mode and owner but not its mtime: a run that created and removed an
    entry of its own has changed nothing in it."""
    details = {}
    for path in [directory, *sorted(directory.rglob("*"))]:
        info = os.lstat(path)
        details[str(path.relative_to(directory))] = (
            stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid,
            info.st_mtime_ns if path != directory else None,
        )
    return {"content": snapshot(directory), "stat": details}


def visible(directory: Path) -> dict[str, bytes]:
    """What the app sees: every user-visible file, read through the links, by relative path."""
    seen = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if relative.parts[0].startswith(".."):
            continue
        if path.is_symlink() and path.is_dir():
            for inner in sorted(path.rglob("*")):
                if inner.is_file():
                    seen[str(relative / inner.relative_to(path))] = inner.read_bytes()
        elif path.is_file():
            seen[str(relative)] = path.read_bytes()
    return seen


# --- running as another user ------------------------------------------------------------------------------


@functools.cache
def _blocked_ancestor() -> tuple[str, str] | None:
    """The first directory on the interpreter's path that other users cannot search (e.g. a 0700 home
    holding a pyenv Python), and its child on that path; None when the path is open to everyone."""
    prefix = Path(os.path.realpath(sys.base_prefix))
    for depth in range(1, len(prefix.parts)):
        directory = Path(*prefix.parts[:depth])
        if not os.stat(directory).st_mode & stat.S_IXOTH:
            return str(directory), str(Path(*prefix.parts[: depth + 1]))
    return None


# In a private mount namespace: keep the interpreter's tree, cover the unsearchable directory with an empty
# tmpfs that everyone may search, put the tree back at its path, then drop to the uid and gid for good.
_UNBLOCK = """\
blocked=$1 keep=$2 stash=$3 uid=$4 gid=$5
shift 5
fail() { echo "run_as-setup-failed: $1" >&2; exit 125; }
mount --bind "$keep" "$stash" || fail "bind $keep"
mount -t tmpfs -o mode=0755,size=1m tmpfs "$blocked" || fail "tmpfs on $blocked"
mkdir -p "$keep" || fail "mkdir $keep"
mount --bind "$stash" "$keep" || fail "bind back $keep"
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
"""


def run_as(
    env: Mapping[str, str],
    *args: str,
    uid: int,
    gid: int,
    guard: SecretValues,
    timeout: float = 60,
) -> SidecarResult:
    """Run the installed ``secrets-sidecar`` as ``uid:gid`` (no supplementary groups)."""
    if os.geteuid() != 0:
        skip_unless_required("only root can start a process as another user")
    blocked = _blocked_ancestor()
    if blocked is None:
        completed = run_captured([SIDECAR, *args], env, user=uid, group=gid, extra_groups=[], timeout=timeout)
    else:
        with tempfile.TemporaryDirectory(prefix="stash-") as stash:
            command = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _UNBLOCK, "sh",
                       *blocked, stash, str(uid), str(gid), SIDECAR, *args]
            completed = run_captured(command, env, timeout=timeout)
        setup_failed = completed.returncode == 125 and b"run_as-setup-failed" in completed.stderr
        if setup_failed or completed.stderr.startswith(b"unshare:"):
            skip_unless_required(f"cannot start a process as {uid}:{gid}: {completed.stderr.decode()[-300:]}")
    return SidecarResult(completed.returncode, completed.stdout.decode(), completed.stderr.decode())


def run_with_file_size_limit(env: Mapping[str, str], *args: str, limit: int, guard: SecretValues,
                             timeout: float = 60) -> SidecarResult:
    """Run the sidecar with RLIMIT_FSIZE set: writing a file past ``limit`` bytes fails with EFBIG, as a
    full volume would fail, even for root (Python ignores SIGXFSZ, so the write returns the error)."""
    import resource

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    completed = run_captured([SIDECAR, *args], env, timeout=timeout, preexec_fn=limit_file_size)
    return SidecarResult(completed.returncode, completed.stdout.decode(), completed.stderr.decode())


def payload_dirs(directory: Path) -> list[str]:
    """The committed sets' payload directories (``..YYYY_MM_DD_...``) in ``directory``."""
    return sorted(name for name in os.listdir(directory) if name.startswith("..") and name[2:3].isdigit())


def run_with_private_mount(env: Mapping[str, str], mount: str, directory: Path, *, guard: SecretValues,
                           timeout: float = 60, keep: Path | None = None) -> tuple[SidecarResult, list[str]]:
    """Run the sidecar in a private mount namespace in which ``mount`` (a shell command using "$dir") has
    changed ``directory`` (made it read-only, or a tiny tmpfs); returns the result and what the sidecar left
    in the directory as seen inside the namespace. Nothing outside the namespace sees the mount. With
    ``keep``, the directory's whole tree as the sidecar left it is copied there (``cp -a``: links, modes,
    owners and times kept) for the test to inspect."""
    keep_tree = f'cp -a "$dir"/. {shlex.quote(str(keep))}/ || exit 126\n' if keep is not None else ""
    script = (
        'set -u\ndir=$1; shift\n'
        f'{mount} || {{ echo "mount-setup-failed" >&2; exit 125; }}\n'
        '"$@"; code=$?\n'
        f'{keep_tree}'
        'printf "\\n--listing--\\n" >&2; ls -A "$dir" >&2\nexit $code\n'
    )
    completed = run_captured(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", str(directory), SIDECAR],
        env, timeout=timeout,
    )
    if (completed.returncode == 125 and b"mount-setup-failed" in completed.stderr) or completed.stderr.startswith(
            b"unshare:"):
        skip_unless_required(f"cannot mount in a private namespace: {completed.stderr.decode()[-300:]}")
    stderr, _, listing = completed.stderr.decode().rpartition("\n--listing--\n")
    result = SidecarResult(completed.returncode, completed.stdout.decode(), stderr)
    return result, listing.split()
