"""The output directory as an operator sees it: whether it can take the set at all (checked before any API
call), and why a write into it failed, in words that say what to fix. The commit itself is ``sidecar.commit``.
"""

from __future__ import annotations

import errno
import os
import stat

from sidecar.errors import WriteError


def preflight(output_dir: str, owners: set[tuple[int, int]]) -> None:
    """Fail before any API call when the files could not be written anyway."""
    try:
        info = os.stat(output_dir)
    except FileNotFoundError:
        raise WriteError(f"output directory {output_dir} does not exist (mount the secrets volume there)") from None
    except OSError as exc:  # e.g. a parent directory the sidecar's uid cannot search
        reason = "permission denied on a parent directory" if exc.errno == errno.EACCES else exc.strerror
        raise WriteError(f"output directory {output_dir} cannot be reached by uid {os.geteuid()}: {reason}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise WriteError(f"output directory {output_dir} is not a directory")
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise WriteError(
            f"output directory {output_dir} is not writable by uid {os.geteuid()} "
            f"(owner uid {os.stat(output_dir).st_uid}, mode {stat.S_IMODE(os.stat(output_dir).st_mode):04o}, "
            "or a read-only volume)"
        )
    if os.geteuid() == 0:
        return
    groups = {os.getegid(), *os.getgroups()}
    for uid, gid in sorted(owners):
        if uid != os.geteuid() or gid not in groups:
            raise WriteError(
                f"cannot give files to {uid}:{gid}: the sidecar runs as {os.geteuid()}:{os.getegid()} and only "
                "root may change a file's owner (run as the app's uid, or as root with SIDECAR_UID/SIDECAR_GID)"
            )


def write_problem(exc: OSError, root: int | None, owner: tuple[int, int] | None = None) -> str:
    """Why a write into the output directory failed, in words an operator acts on; ``root`` (the directory's
    descriptor) tells a volume out of inodes from a full one, ``owner`` an ownership change refused."""
    if exc.errno == errno.ENOSPC and root is not None and _no_free_inodes(root):
        return "the volume has no free inodes left (no room for one more file or link, however small)"
    if exc.errno == errno.EPERM and owner is not None:
        return (f"changing the owner to {owner[0]}:{owner[1]} is not permitted "
                f"(the sidecar runs as uid {os.geteuid()})")
    reasons = {
        errno.ENOSPC: "the volume is full",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EROFS: "the volume is read-only",
        errno.EACCES: "permission denied",
    }
    return reasons.get(exc.errno or 0, exc.strerror or type(exc).__name__)


def _no_free_inodes(root: int) -> bool:
    try:
        info = os.fstatvfs(root)
    except OSError:
        return False
    return info.f_files > 0 and info.f_favail == 0  # f_files 0: a file system without an inode limit
