"""Commit a set of files into the output directory atomically, with each file's mode and owner set
before its first byte is written.

Layout (the scheme Kubernetes uses for Secret volumes)::

    output/..2026_11_28_17_00_00.123456.k3j9/   the payload of one run (files, subdirectories, manifest)
    output/..data -> ..2026_11_28_...           swapped in one rename(2): the commit point
    output/db -> ..data/db                      one link per top-level name
    output/..manifest.json -> ..data/..manifest.json   the sidecar's own files: manifest, version
    output/..version -> ..data/..version

Readers that open ``output/db/password`` see the whole old set or the whole new set, never a mix.

The order of one commit (``_Commit.run``)::

    1. inspect      read only: refuse (exit 4) a name, ``..data`` or ``..data_tmp`` the sidecar did not create
    2. clean        remove what an interrupted run left: ``..data_tmp``, payloads ``..data`` does not name
    3. build        write the new payload in a fresh 0700 directory
    4. link         give each new top-level name its link into ``..data/`` (it dangles until step 5)
    5. verify+swap  every name is still the sidecar's link; rename ``..data_tmp`` over ``..data``
    6. verify       still so after the swap, or the previous ``..data`` is put back (exit 4)
    7. tidy         drop links of names the set no longer has, the previous payload, fsync

Everything that needs space or can be refused happens in steps 1-5, and a failure there undoes what the run
created: the app still sees the previous set. Step 7 cannot change what the app sees (a link it fails to drop
already dangles), so it reports problems without failing the committed run. Everything is done relative to a
directory file descriptor, nothing planted in the directory is ever followed, and nothing outside it is
touched.
"""

from __future__ import annotations

import contextlib
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

from sidecar.deadline import Deadline
from sidecar.errors import WriteError
from sidecar.files import create_file
from sidecar.output import OutputFile
from sidecar.output_dir import write_problem

DATA_LINK: Final = "..data"
DATA_TMP_LINK: Final = "..data_tmp"
MANIFEST: Final = "..manifest.json"
VERSION: Final = "..version"
DIR_MODE: Final = 0o755  # names are not secret; each file's own mode guards its value
BUILD_DIR_MODE: Final = 0o700  # while a payload is being written, only the sidecar can enter it
UNTOUCHED: Final = "the previous contents are untouched"
PUT_BACK: Final = "the previous set was put back"
T = TypeVar("T")
_PAYLOAD = re.compile(r"^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d{6}\.[a-z0-9]+$")
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Committed:
    payload: str  # the new payload directory's name
    removed: tuple[str, ...]  # top-level names of the previous set that are no longer present
    kept: tuple[str, ...] = ()  # old payloads that could not be removed (e.g. written by another uid)
    untidy: tuple[str, ...] = ()  # value-free reasons why a step after the commit point did not complete


def commit(
    output_dir: str,
    files: Sequence[OutputFile],
    internal: Sequence[OutputFile],
    *,
    dir_uid: int,
    dir_gid: int,
    deadline: Deadline | None = None,
) -> Committed:
    """Commit ``files`` plus the sidecar's ``internal`` files (names beginning with ``..``) as one set.

    Raises ``WriteError`` (exit 4) with the previous set still what the app sees, also when ``deadline``
    passes before the swap (checked before each file and before the swap: SIDECAR_TIMEOUT lasts to the last
    file)."""
    names = tuple(sorted({f.path.split("/", 1)[0] for f in [*files, *internal]}))
    try:
        root = os.open(output_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise WriteError(f"cannot write {output_dir}: {write_problem(exc, None)}; {UNTOUCHED}") from None
    try:
        return _Commit(root, output_dir, names, deadline).run([*files, *internal], dir_uid, dir_gid)
    finally:
        os.close(root)


def link_target(name: str) -> str:
    """What the sidecar's link at a top-level ``name`` points to."""
    return f"{DATA_LINK}/{name}"


class _Commit:
    def __init__(self, root: int, output_dir: str, names: tuple[str, ...], deadline: Deadline | None = None) -> None:
        self.root = root
        self.output_dir = output_dir
        self.names = names
        self.deadline = deadline
        self.new_links: list[str] = []  # links this run created (step 4), removed again if it fails

    def run(self, files: Sequence[OutputFile], dir_uid: int, dir_gid: int) -> Committed:
        previous = self._inspect()
        kept = self._clean_leftovers(previous)
        payload = self._build(files, dir_uid, dir_gid)
        try:
            self._in_time(f"all {len(files)} files were written")
            self._link_names()
            self._verify_names()
            self._swap(payload)
        except BaseException:
            self._undo(payload)
            raise
        try:
            self._verify_names()  # a link replaced between the check and the rename
        except WriteError as exc:
            raise self._put_back(previous, payload, exc.message) from None
        return self._tidy(payload, previous, kept)

    # -- 1. inspect: nothing changes before the run has decided not to refuse ---------------------------------

    def _inspect(self) -> str | None:
        """Refuse what the sidecar did not create; return the current payload's name (None: no set yet)."""
        for special in (DATA_LINK, DATA_TMP_LINK):
            info = self._lstat(special)
            if info is not None and stat.S_ISDIR(info.st_mode):  # a link or file there is replaced, never followed
                raise WriteError(f"cannot write {self.output_dir}/{special}: it is a directory the sidecar did not "
                                 f"create; remove it; {UNTOUCHED}")
        for name in self.names:
            if self._lstat(name) is not None and not self._is_our_link(name):
                raise WriteError(
                    f"the output directory already holds {name!r}, which the sidecar did not create; "
                    "remove it or choose another name (nothing was written)"
                )
        return self._current_payload()

    def _lstat(self, name: str) -> os.stat_result | None:
        try:
            return os.lstat(name, dir_fd=self.root)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error(exc, name) from None

    def _is_our_link(self, name: str) -> bool:
        try:
            return os.readlink(name, dir_fd=self.root) == link_target(name)
        except OSError:  # gone, or not a symbolic link
            return False

    def _current_payload(self) -> str | None:
        try:
            target = os.readlink(DATA_LINK, dir_fd=self.root)
        except OSError:
            return None
        return target if _PAYLOAD.match(target) else None

    # -- 2. clean ---------------------------------------------------------------------------------------------

    def _clean_leftovers(self, current: str | None) -> list[str]:
        """Remove what an interrupted run left, so its space is free for this one. Returns the payloads that
        could not be removed; they do not stop a run."""
        try:
            os.unlink(DATA_TMP_LINK, dir_fd=self.root)  # _inspect proved it is not a directory
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise self._error(exc, DATA_TMP_LINK) from None
        return [name for name in os.listdir(self.root)
                if _PAYLOAD.match(name) and name != current and not _try_remove(self.root, name)]

    # -- 3. build ---------------------------------------------------------------------------------------------

    def _build(self, files: Sequence[OutputFile], dir_uid: int, dir_gid: int) -> str:
        payload = f"..{datetime.now(UTC):%Y_%m_%d_%H_%M_%S.%f}.{secrets.token_hex(3)}"
        self._at(lambda: os.mkdir(payload, BUILD_DIR_MODE, dir_fd=self.root), payload)
        try:
            directory = self._at(lambda: os.open(payload, _DIR_FLAGS, dir_fd=self.root), payload)
            try:
                subdirs = self._write_files(directory, files)
                for subdir in sorted(subdirs, key=lambda d: -d.count("/")):  # deepest first
                    self._finish_dir(directory, subdir, dir_uid, dir_gid)
                self._finish_dir(directory, ".", dir_uid, dir_gid)
            finally:
                os.close(directory)
        except BaseException:
            _try_remove(self.root, payload)
            raise
        return payload

    def _write_files(self, directory: int, files: Sequence[OutputFile]) -> set[str]:
        subdirs: set[str] = set()
        for written, file in enumerate(files):
            self._in_time(f"{written} of {len(files)} files were written")
            parts = file.path.split("/")
            for depth in range(1, len(parts)):
                subdir = "/".join(parts[:depth])
                if subdir not in subdirs:
                    self._at(partial(os.mkdir, subdir, BUILD_DIR_MODE, dir_fd=directory), subdir)
                    subdirs.add(subdir)
            write = partial(create_file, directory, file.path, file.content.reveal(), mode=file.mode, uid=file.uid,
                            gid=file.gid)
            self._at(write, file.shown, (file.uid, file.gid))  # an expanded file by position: a key is content
        return subdirs

    def _in_time(self, progress: str) -> None:
        if self.deadline is not None and self.deadline.remaining() <= 0:
            raise WriteError(f"the SIDECAR_TIMEOUT deadline passed before the new set was in place: {progress}; "
                             f"{UNTOUCHED}")

    def _finish_dir(self, directory: int, path: str, uid: int, gid: int) -> None:
        where = path if path != "." else "the new set's directory"
        fd = self._at(lambda: os.open(path, _DIR_FLAGS, dir_fd=directory), where)
        try:
            self._at(lambda: os.fchown(fd, uid, gid), where, (uid, gid))
            self._at(lambda: os.fchmod(fd, DIR_MODE), where)
            self._at(lambda: os.fsync(fd), where)
        finally:
            os.close(fd)

    # -- 4. link, 5. verify and swap --------------------------------------------------------------------------

    def _link_names(self) -> None:
        """Create the links the new set needs before the swap: they point into ``..data``, where the previous
        set has no such name, so until the swap they dangle and nobody sees them."""
        for name in self.names:
            try:
                os.symlink(link_target(name), name, dir_fd=self.root)
            except FileExistsError:
                continue  # ours since _inspect, or planted since: _verify_names tells
            except OSError as exc:
                raise self._error(exc, name) from None
            self.new_links.append(name)

    def _verify_names(self) -> None:
        for name in self.names:
            if not self._is_our_link(name):
                raise WriteError(
                    f"{name!r} appeared or changed in the output directory while the set was being written, and is "
                    f"not the sidecar's link; remove it; {UNTOUCHED}"
                )

    def _swap(self, payload: str) -> None:
        """The commit point: one rename(2) of a symbolic link replaces the whole set."""
        try:
            os.symlink(payload, DATA_TMP_LINK, dir_fd=self.root)
            os.replace(DATA_TMP_LINK, DATA_LINK, src_dir_fd=self.root, dst_dir_fd=self.root)
        except OSError as exc:
            raise self._error(exc, DATA_LINK) from None

    def _undo(self, payload: str) -> None:
        """Remove what this run created before the commit point; what was there before stays."""
        with contextlib.suppress(OSError):
            if os.readlink(DATA_TMP_LINK, dir_fd=self.root) == payload:
                os.unlink(DATA_TMP_LINK, dir_fd=self.root)
        for name in self.new_links:
            if self._is_our_link(name):
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=self.root)
        _try_remove(self.root, payload)

    # -- 6. put back ------------------------------------------------------------------------------------------

    def _put_back(self, previous: str | None, payload: str, problem: str) -> WriteError:
        """After the swap a name turned out not to be the sidecar's: make ``..data`` name the previous payload
        again (or nothing, if there was none), so exit 4 still means the app sees the previous set."""
        problem = problem.removesuffix(f"; {UNTOUCHED}")
        try:
            if previous is None:
                os.unlink(DATA_LINK, dir_fd=self.root)
            else:
                os.symlink(previous, DATA_TMP_LINK, dir_fd=self.root)
                os.replace(DATA_TMP_LINK, DATA_LINK, src_dir_fd=self.root, dst_dir_fd=self.root)
        except OSError as exc:
            return WriteError(f"{problem}; the new set is in place, and putting the previous one back failed: "
                              f"{write_problem(exc, self.root)}")
        self._undo(payload)
        return WriteError(f"{problem}; {PUT_BACK}")

    # -- 7. tidy ----------------------------------------------------------------------------------------------

    def _tidy(self, payload: str, previous: str | None, kept: list[str]) -> Committed:
        untidy: list[str] = []
        removed = []
        for name in sorted(os.listdir(self.root)):
            if name in self.names or name.startswith("..") or not self._is_our_link(name):
                continue
            try:
                os.unlink(name, dir_fd=self.root)
            except OSError as exc:  # it dangles: the app sees no such name either way
                untidy.append(f"the link of {name!r}, no longer configured, stays: {write_problem(exc, self.root)}")
            else:
                removed.append(name)
        # An old payload that cannot be removed is left for a later run, not an error.
        if previous and previous != payload and not _try_remove(self.root, previous):
            kept.append(previous)
        try:
            os.fsync(self.root)
        except OSError as exc:
            untidy.append(f"the directory could not be flushed to disk: {write_problem(exc, self.root)}")
        return Committed(payload, tuple(removed), tuple(kept), tuple(untidy))

    # -- errors -----------------------------------------------------------------------------------------------

    def _at(self, action: Callable[[], T], where: str, owner: tuple[int, int] | None = None) -> T:
        try:
            return action()
        except OSError as exc:
            raise self._error(exc, where, owner) from None

    def _error(self, exc: OSError, where: str, owner: tuple[int, int] | None = None) -> WriteError:
        problem = write_problem(exc, self.root, owner)
        return WriteError(f"cannot write {self.output_dir}/{where}: {problem}; {UNTOUCHED}")


def _try_remove(root: int, name: str) -> bool:
    """Remove a payload directory (or whatever a payload-shaped name is) without following links inside."""
    try:
        if stat.S_ISDIR(os.lstat(name, dir_fd=root).st_mode):
            shutil.rmtree(name, dir_fd=root)
        else:
            os.unlink(name, dir_fd=root)
    except OSError:
        return False
    return True
