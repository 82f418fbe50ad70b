"""Shared fixtures: one moto server over real HTTP per session, and the secrecy guard.

Every value a test seeds into AWS goes through ``secret_values.add``, which records it for the whole session
in every form a leak could take (JSON-escaped, ``repr``, base64, URL-encoded, shell-quoted, JSON inside
JSON), and, for a JSON secret, every string, number and key inside it at any depth (keys for the test).

Every process a test starts that could print a value (the sidecar, directly or in a container) is started by
``spawn`` or ``run_captured``: its stdout and stderr go to files that the guard always reads, after killing
whatever is still running, when the test ends, passed or failed. After every test the guard scans those
files, pytest's captured streams and log records for every value seeded so far in the session, and fails
the test if one appears.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, NoReturn

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis: how fast a machine shared with other jobs generates examples says nothing about the code, so no
# profile has a per-example deadline or the "too slow" health check. CI's (HYPOTHESIS_PROFILE=ci, .ci/run) is
# also derandomized without an example database: a CI run depends on its commit alone, and a failure prints
# the blob that reproduces it. The fast tier (`-m fast`) tries 20 examples per property instead of 100 unless
# a profile is chosen. Files with their own settings (the fuzzers) keep them.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", settings.get_profile("dev"), derandomize=True, database=None, print_blob=True)
settings.register_profile("fast", settings.get_profile("dev"), max_examples=20)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

REGION = "eu-west-1"
ACCOUNT = "123456789012"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
SIDECAR = shutil.which("secrets-sidecar", path=os.path.dirname(sys.executable)) or "secrets-sidecar"
_MIN_SCANNED_LENGTH = 4  # shorter values ("app", "1") occur in ordinary text by chance
_MIN_BASE64_LENGTH = 8  # the part of a base64 text that does not depend on the bytes around the value
_SESSION_VALUES: set[bytes] = set()  # every form of every value seeded by any test so far
_PROCESS_OUTPUTS: list[bytes] = []  # outputs handed to record_process_output during the current test


def leak_forms(value: str | bytes) -> set[bytes]:
    """Every form in which ``value`` could appear in an output: as is, JSON-escaped (ASCII or not, and
    once more inside another JSON string), ``repr``, URL-encoded, shell-quoted, and base64 at each of
    the three alignments it could have inside a longer encoded text."""
    raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    text = raw.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
    forms = {raw, repr(raw)[2:-1].encode()}
    for ascii_only in (True, False):
        escaped = json.dumps(text, ensure_ascii=ascii_only)[1:-1]
        forms.add(escaped.encode("utf-8", "surrogatepass"))
        forms.add(json.dumps(escaped, ensure_ascii=ascii_only)[1:-1].encode("utf-8", "surrogatepass"))
    forms.add(repr(text)[1:-1].encode("utf-8", "surrogatepass"))
    forms.add(urllib.parse.quote(raw, safe="").encode())
    forms.add(urllib.parse.quote_plus(raw, safe="").encode())
    forms.add(raw.replace(b"'", b"'\"'\"'"))  # inside shlex.quote's single quotes
    forms.add(raw.replace(b"'", b"'\\''"))  # inside the env file's single quotes
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * offset + raw)
            first_group = -(-offset // 3)  # the first 3-byte group made only of the value's bytes
            last_group = (offset + len(raw)) // 3
            stable = encoded[4 * first_group : 4 * last_group]
            if len(stable) >= _MIN_BASE64_LENGTH:
                forms.add(stable)
    return {form for form in forms if len(form) >= _MIN_SCANNED_LENGTH}


def json_members(document: object) -> Iterator[tuple[str, bool]]:
    """Every key, string and number inside a JSON document, at any depth, each with whether it is a key."""
    if isinstance(document, dict):
        for key, item in document.items():
            yield str(key), True
            yield from json_members(item)
    elif isinstance(document, list):
        for item in document:
            yield from json_members(item)
    elif isinstance(document, str | int | float) and not isinstance(document, bool):
        yield str(document), False


@dataclass
class SecretValues:
    """Values seeded into the fake AWS, and every output that must never contain them.

    Values count for the whole session (a value seeded by a session fixture must not leak in a later test).
    JSON keys count in the test that seeded them: they are words like ``user`` that other tests may print
    for reasons of their own, but no test may print a key of a secret it seeded.
    """

    values: set[bytes] = field(default_factory=set)
    keys: set[bytes] = field(default_factory=set)
    outputs: list[bytes] = field(default_factory=list)

    def add(self, value: str | bytes, *, keys_named_in_config: Iterable[str] = ()) -> str | bytes:
        """Register ``value``; ``keys_named_in_config`` are JSON keys the test's configuration names itself
        (``arn:...:password::``), so they may appear where the configuration does."""
        raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
        if len(raw) < _MIN_SCANNED_LENGTH:
            return value
        forms = leak_forms(value)
        self.values |= forms
        _SESSION_VALUES.update(forms)
        try:  # a JSON secret: every key, string and number inside it is secret content too
            document = json.loads(raw)
        except (ValueError, RecursionError):
            return value
        if isinstance(document, dict | list):
            for member, is_key in json_members(document):
                if is_key and member in keys_named_in_config:
                    continue
                if is_key:
                    self.keys |= leak_forms(member)
                else:
                    self.add(member)
        return value

    def leaks(self) -> list[str]:
        found = []
        for output in self.outputs:
            for value in self.values | self.keys | _SESSION_VALUES:
                if value in output:
                    found.append(f"{value[:12]!r}... in {output[:200]!r}")
        return found


# --- capturing every process a test starts ----------------------------------------------------------------


@dataclass
class _Captures:
    """Output files not yet scanned, and processes not yet known to have ended."""

    directory: Path | None = None
    files: list[Path] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def new_files(self, merged: bool) -> tuple[Path, Path | None]:
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="sidecar-test-output-"))
        index = len(self.files)
        stdout = self.directory / f"{index:04d}.out"
        stderr = None if merged else self.directory / f"{index:04d}.err"
        for path in (stdout, stderr):
            if path is not None:
                path.touch(0o600)
                self.files.append(path)
        return stdout, stderr

    def collect(self) -> list[bytes]:
        """End every process still running, then read and forget every output file."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        outputs = [path.read_bytes() for path in self.files]
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.directory, self.files, self.processes = None, [], []
        return outputs


_CAPTURES = _Captures()


@dataclass
class Spawned:
    """A process started by ``spawn``: its output is in files, read here and by the guard."""

    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path | None

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.process.wait(timeout=timeout)

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        self.process.kill()

    def stdout(self) -> bytes:
        return self.stdout_path.read_bytes()

    def stderr(self) -> bytes:
        return b"" if self.stderr_path is None else self.stderr_path.read_bytes()

    def finish(self, timeout: float) -> tuple[int, bytes, bytes]:
        """Wait for the exit (killing the process after ``timeout`` seconds, then raising TimeoutExpired,
        like ``subprocess.run``); returns the exit code, stdout and stderr."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        return code, self.stdout(), self.stderr()

    def follow_stdout(self, poll_seconds: float = 0.02) -> Iterator[bytes]:
        """Each line of stdout as it is written, until the process has ended and every line is read."""
        with open(self.stdout_path, "rb") as handle:
            pending = b""
            while True:
                ended = self.process.poll() is not None
                chunk = handle.read()
                if chunk:
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        yield line + b"\n"
                elif ended:
                    if pending:
                        yield pending
                    return
                else:
                    time.sleep(poll_seconds)


def spawn(
    command: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    merge_stderr: bool = False,
    stdin: int | IO[bytes] | None = subprocess.DEVNULL,
    **popen: Any,
) -> Spawned:
    """Start ``command`` with stdout and stderr in files the secrecy guard reads when the test ends."""
    if _RUNNING_FAST_TEST and _starts_sidecar_or_container(command):
        pytest.fail(f"a fast-tier test may not start the sidecar or a container: {command[0]}; move it out of "
                    f"{'/'.join(FAST_DIRECTORIES)} or mark it slow")
    stdout_path, stderr_path = _CAPTURES.new_files(merge_stderr)
    with open(stdout_path, "wb") as out:
        if stderr_path is None:
            process = subprocess.Popen(
                list(command), env=None if env is None else dict(env), stdin=stdin, stdout=out,
                stderr=subprocess.STDOUT, **popen,
            )
        else:
            with open(stderr_path, "wb") as err:
                process = subprocess.Popen(
                    list(command), env=None if env is None else dict(env), stdin=stdin, stdout=out, stderr=err,
                    **popen,
                )
    _CAPTURES.processes.append(process)
    return Spawned(process, stdout_path, stderr_path)


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes


def run_captured(command: Sequence[str], env: Mapping[str, str] | None = None, *, timeout: float = 60,
                 input: bytes | None = None, **popen: Any) -> Completed:
    """``subprocess.run`` for a process whose output the secrecy guard must see."""
    if input is None:
        code, stdout, stderr = spawn(command, env, **popen).finish(timeout)
    else:
        with tempfile.TemporaryFile() as feed:
            feed.write(input)
            feed.seek(0)
            code, stdout, stderr = spawn(command, env, stdin=feed, **popen).finish(timeout)
    return Completed(code, stdout, stderr)


@pytest.fixture(autouse=True)
def _secrecy_guard(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Iterator[SecretValues]:
    _PROCESS_OUTPUTS.clear()
    guard = SecretValues()
    yield guard
    out, err = capfd.readouterr()
    guard.outputs += [out.encode(), err.encode(), caplog.text.encode(), *_PROCESS_OUTPUTS, *_CAPTURES.collect()]
    sys.stdout.write(out)
    sys.stderr.write(err)
    leaks = guard.leaks()
    assert not leaks, f"secret values leaked into output: {leaks}"


@pytest.fixture
def secret_values(_secrecy_guard: SecretValues) -> SecretValues:
    """Register every value a test seeds: ``secret_values.add(value)`` returns the value."""
    return _secrecy_guard


# --- tests that need root, unshare and setpriv ----------------------------------------------------------------

PRIVILEGED_ENV: Final = "SIDECAR_REQUIRE_PRIVILEGED_TESTS"


def skip_unless_required(reason: str) -> NoReturn:
    """Skip a test this machine cannot run (no root, no ``unshare``/``setpriv``/``mount``, no shell); where
    ``SIDECAR_REQUIRE_PRIVILEGED_TESTS=1`` (CI, .ci/run) the skip is a failure instead, as for container tests."""
    if os.environ.get(PRIVILEGED_ENV) == "1":
        pytest.fail(f"required ({PRIVILEGED_ENV}=1) but cannot run here: {reason}", pytrace=False)
    pytest.skip(reason)


# --- the fast tier ---------------------------------------------------------------------------------------

# Tests under these directories are in-process tests of the core's rules (policy, planner, fallback, backoff,
# deadline, config, render, commit) with an injected clock: `pytest -m fast`, `make test-fast`. A new test
# there is in the tier without being marked, unless it is marked slow or container or needs the moto server.
FAST_DIRECTORIES: Final = ("unit",)
_NOT_FAST_FIXTURES: Final = frozenset({"moto_endpoint"})  # moto, aws, previous, proxy... all depend on it
_RUNNING_FAST_TEST = False


def is_fast(item: pytest.Item) -> bool:
    """Whether ``item`` belongs to the fast tier: by its directory, unless it needs more than one process."""
    relative = Path(str(item.path)).resolve().relative_to(Path(__file__).resolve().parent)
    return (relative.parts[0] in FAST_DIRECTORIES
            and item.get_closest_marker("slow") is None and item.get_closest_marker("container") is None
            and not _NOT_FAST_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_configure(config: pytest.Config) -> None:
    if config.option.markexpr == "fast" and "HYPOTHESIS_PROFILE" not in os.environ:
        settings.load_profile("fast")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``-m fast`` alone, nothing outside the fast directories can be selected: do not import it."""
    if config.option.markexpr != "fast":
        return None
    path = collection_path.resolve()
    if path.parent != Path(__file__).resolve().parent:
        return None
    outside = path.name.startswith("test_") if path.is_file() else path.name not in FAST_DIRECTORIES
    return True if outside else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if is_fast(item):
            item.add_marker(pytest.mark.fast)


def pytest_runtest_setup(item: pytest.Item) -> None:
    global _RUNNING_FAST_TEST  # noqa: PLW0603 - read by spawn, which fixtures call without the item
    _RUNNING_FAST_TEST = item.get_closest_marker("fast") is not None


def _starts_sidecar_or_container(command: Sequence[str]) -> bool:
    return any(part == SIDECAR or "secrets-sidecar" in part or os.path.basename(part) == "docker"
               for part in command)


# --- moto -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto(moto_endpoint: str) -> str:
    """A moto server with empty state."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - loopback URL we built
        pass
    return moto_endpoint


@pytest.fixture
def aws(moto: str) -> Any:
    """boto3 clients on the moto server, for seeding."""
    import boto3

    session = boto3.Session(
        region_name=REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )

    class Clients:
        endpoint = moto
        secretsmanager = session.client("secretsmanager", endpoint_url=moto)
        ssm = session.client("ssm", endpoint_url=moto)
        s3 = session.client("s3", endpoint_url=moto)
        kms = session.client("kms", endpoint_url=moto)

    return Clients


def sidecar_env(endpoint: str, **settings: str) -> dict[str, str]:
    """A clean environment for a sidecar process: dummy credentials, the moto endpoint, the settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIDECAR_"))}
    return {
        **base,
        **DUMMY_CREDENTIALS,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
        **settings,
    }


def record_process_output(*outputs: bytes) -> None:
    """For output that reached a test by other means than ``spawn`` (e.g. read from a volume): scanned too."""
    _PROCESS_OUTPUTS.extend(outputs)


@dataclass
class SidecarResult:
    code: int
    stdout: str
    stderr: str

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]

    def event(self, name: str) -> dict[str, Any]:
        matches = [e for e in self.events if e.get("event") == name]
        assert len(matches) == 1, f"expected one {name!r} event, got {len(matches)}: {self.stdout}"
        return matches[0]

    @property
    def final(self) -> dict[str, Any]:
        return self.events[-1]


def run_sidecar(
    env: Mapping[str, str],
    *args: str,
    guard: SecretValues | None = None,
    timeout: float = 60,
) -> SidecarResult:
    """Run the installed ``secrets-sidecar`` console script as a real process (``guard`` is accepted for
    older callers: every output is scanned anyway)."""
    del guard
    completed = run_captured([SIDECAR, *args], env, timeout=timeout)
    return SidecarResult(completed.returncode, completed.stdout.decode(), completed.stderr.decode())


def snapshot(directory: Path, *, skip: str | None = None) -> dict[str, tuple[str, bytes | str]]:
    """Everything under ``directory``: regular files' bytes, links' targets, directories. Names beginning
    with ``skip`` are left out before they are read: a running sidecar replaces its health file at any moment."""
    result: dict[str, tuple[str, bytes | str]] = {}
    for path in sorted(directory.rglob("*")):
        relative = str(path.relative_to(directory))
        if skip is not None and relative.startswith(skip):
            continue
        if path.is_symlink():
            result[relative] = ("link", os.readlink(path))
        elif path.is_dir():
            result[relative] = ("dir", "")
        else:
            result[relative] = ("file", path.read_bytes())
    return result
