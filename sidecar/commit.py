"""Commit a set of files into the output directory atomically, with each file's mode and owner set
before its first byte is written.

Layout (the scheme Kubernetes uses for Secret volumes)::

    output/..2026_11_28_17_00_00.123456.k3j9/   the payload of one run (files, subdirectories, manifest)
    output/..data -> ..2026_11_28_...           swapped in one rename(2): the commit point
    output/db -> ..data/db                      one link per top-level name, created once
    output/..manifest.json -> ..data/..manifest.json   the sidecar's own files: manifest, version
    output/..version -> ..data/..version

Readers that open ``output/db/password`` see the whole old set or the whole new set, never a mix. Everything
is done relative to directory file descriptors, nothing planted in the directory is ever followed, and
nothing outside it is touched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Final, TypeVar

from sidecar.errors import WriteError
from sidecar.render import OutputFile

DATA_LINK: Final = "..data"
DATA_TMP_LINK: Final = "..data_tmp"
MANIFEST: Final = "..manifest.json"
VERSION: Final = "..version"
DIR_MODE: Final = 0o755  # names are not secret; each file's own mode guards its value
BUILD_DIR_MODE: Final = 0o700  # while a payload is being written, only the sidecar can enter it
T = TypeVar("T")
_PAYLOAD = re.compile(r"^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d{6}\.[a-z0-9]+$")


@dataclass(frozen=True)
class Committed:
    payload: str  # the new payload directory's name
    removed: tuple[str, ...]  # top-level names of the previous set that are no longer present
    kept: tuple[str, ...] = ()  # old payloads that could not be removed (e.g. written by another uid)


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


def commit(
    output_dir: str,
    files: Sequence[OutputFile],
    internal: Sequence[OutputFile],
    *,
    dir_uid: int,
    dir_gid: int,
) -> Committed:
    """Commit ``files`` plus the sidecar's ``internal`` files (names beginning with ``..``) as one set."""
    top_level = {f.path.split("/", 1)[0] for f in [*files, *internal]}
    try:
        root = os.open(output_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise _write_error(exc, output_dir) from None
    try:
        kept = _clean_leftovers(root, output_dir)
        _check_conflicts(root, top_level)
        payload = _build_payload(root, [*files, *internal], dir_uid, dir_gid, output_dir)
        previous = _swap(root, payload, output_dir)
        removed = _link_names(root, top_level, output_dir)
        # The new set is committed: an old payload that cannot be removed is left for a later run, not an error.
        if previous and previous != payload and not _try_remove_payload(root, previous):
            kept.append(previous)
        os.fsync(root)
        return Committed(payload, removed, tuple(kept))
    finally:
        os.close(root)


def _write_error(exc: OSError, where: str, uid: int | None = None, gid: int | None = None) -> WriteError:
    reasons = {
        errno.ENOSPC: "the volume is full",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EROFS: "the volume is read-only",
        errno.EACCES: "permission denied",
    }
    reason = reasons.get(exc.errno or 0, exc.strerror or type(exc).__name__)
    if exc.errno == errno.EPERM and uid is not None:
        reason = f"changing the owner to {uid}:{gid} is not permitted (the sidecar runs as uid {os.geteuid()})"
    return WriteError(f"cannot write {where}: {reason}; the previous contents are untouched")


def _entries(root: int) -> list[str]:
    return os.listdir(root)


def _clean_leftovers(root: int, output_dir: str) -> list[str]:
    """Remove what an interrupted run left: a temporary link, payloads ``..data`` does not point to.
    Returns the payloads that could not be removed; they do not stop a run."""
    current = _current_payload(root)
    kept = []
    for name in _entries(root):
        if name == DATA_TMP_LINK:
            try:
                os.unlink(name, dir_fd=root)
            except OSError as exc:  # not a link: something the sidecar did not create
                raise _write_error(exc, f"{output_dir}/{DATA_TMP_LINK}") from None
        elif _PAYLOAD.match(name) and name != current and not _try_remove_payload(root, name):
            kept.append(name)
    return kept


def _current_payload(root: int) -> str | None:
    try:
        target = os.readlink(DATA_LINK, dir_fd=root)
    except (FileNotFoundError, OSError):
        return None
    return target if _PAYLOAD.match(target) else None


def _try_remove_payload(root: int, name: str) -> bool:
    try:
        _remove_payload(root, name)
    except OSError:
        return False
    return True


def _remove_payload(root: int, name: str) -> None:
    info = os.lstat(name, dir_fd=root)
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(name, dir_fd=root)  # fd-based: does not follow links inside
    else:
        os.unlink(name, dir_fd=root)


def _check_conflicts(root: int, top_level: set[str]) -> None:
    for name in sorted(top_level):
        try:
            target = os.readlink(name, dir_fd=root)
        except FileNotFoundError:
            continue
        except OSError:  # exists, and is not a symbolic link
            target = None
        if target != f"{DATA_LINK}/{name}":
            raise WriteError(
                f"the output directory already holds {name!r}, which the sidecar did not create; "
                "remove it or choose another name (nothing was written)"
            )


def _build_payload(root: int, files: Sequence[OutputFile], dir_uid: int, dir_gid: int, output_dir: str) -> str:
    now = datetime.now(UTC)
    payload = f"..{now:%Y_%m_%d_%H_%M_%S.%f}.{secrets.token_hex(3)}"
    os.mkdir(payload, BUILD_DIR_MODE, dir_fd=root)
    try:
        directory = os.open(payload, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=root)
        try:
            subdirs = _write_files(directory, files, output_dir)
            for subdir in sorted(subdirs, key=lambda d: -d.count("/")):  # deepest first
                _finish_dir(directory, subdir, dir_uid, dir_gid)
            _finish_dir(directory, ".", dir_uid, dir_gid)
        finally:
            os.close(directory)
    except BaseException:
        _remove_payload(root, payload)
        raise
    return payload


def _write_files(directory: int, files: Sequence[OutputFile], output_dir: str) -> set[str]:
    subdirs: set[str] = set()
    for file in files:
        parts = file.path.split("/")
        for depth in range(1, len(parts)):
            subdir = "/".join(parts[:depth])
            if subdir not in subdirs:
                _at(partial(os.mkdir, subdir, BUILD_DIR_MODE, dir_fd=directory), f"{output_dir}/{subdir}")
                subdirs.add(subdir)
        _write_file(directory, file, output_dir)
    return subdirs


def _write_file(directory: int, file: OutputFile, output_dir: str) -> None:
    where = f"{output_dir}/{file.path}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = _at(lambda: os.open(file.path, flags, 0o000, dir_fd=directory), where)
    try:
        # Owner and mode are final before the first byte: there is no moment the value is readable by others.
        _at(lambda: os.fchown(fd, file.uid, file.gid), where, file.uid, file.gid)
        _at(lambda: os.fchmod(fd, file.mode), where)
        data = memoryview(file.content.reveal())
        while data:
            written = _at(partial(os.write, fd, data), where)
            data = data[written:]
        _at(lambda: os.fsync(fd), where)
    finally:
        os.close(fd)


def _finish_dir(directory: int, path: str, uid: int, gid: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
    try:
        _at(lambda: os.fchown(fd, uid, gid), f"directory {path}", uid, gid)
        os.fchmod(fd, DIR_MODE)
        os.fsync(fd)
    finally:
        os.close(fd)


def _at(action: Callable[[], T], where: str, uid: int | None = None, gid: int | None = None) -> T:
    try:
        return action()
    except OSError as exc:
        raise _write_error(exc, where, uid, gid) from None


def _swap(root: int, payload: str, output_dir: str) -> str | None:
    """The commit point: one rename(2) of a symbolic link replaces the whole set."""
    previous = _current_payload(root)
    try:
        os.symlink(payload, DATA_TMP_LINK, dir_fd=root)
        os.replace(DATA_TMP_LINK, DATA_LINK, src_dir_fd=root, dst_dir_fd=root)
    except OSError as exc:
        for leftover in (DATA_TMP_LINK, payload):
            with contextlib.suppress(OSError):
                _remove_payload(root, leftover)
        raise _write_error(exc, f"{output_dir}/{DATA_LINK}") from None
    os.fsync(root)
    return previous


def _link_names(root: int, top_level: set[str], output_dir: str) -> tuple[str, ...]:
    """Give each top-level name its link into ``..data``; drop links of names the new set no longer has."""
    for name in sorted(top_level):
        try:
            os.symlink(f"{DATA_LINK}/{name}", name, dir_fd=root)
        except FileExistsError:
            pass  # _check_conflicts proved it is our link
        except OSError as exc:
            raise _write_error(exc, f"{output_dir}/{name}") from None
    removed = []
    for name in _entries(root):
        if name in top_level or name.startswith(".."):
            continue
        try:
            target = os.readlink(name, dir_fd=root)
        except OSError:
            continue
        if target == f"{DATA_LINK}/{name}":
            os.unlink(name, dir_fd=root)
            removed.append(name)
    return tuple(sorted(removed))
