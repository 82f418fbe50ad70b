from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from sidecar import commit, output_dir
from sidecar.errors import WriteError
from sidecar.output import OutputFile
from sidecar.secret import SecretBytes
from tests.conftest import skip_unless_required, snapshot

UID, GID = os.getuid(), os.getgid()


def files(**contents: bytes) -> list[OutputFile]:
    return [OutputFile(path.replace("__", "/"), SecretBytes(data), 0o400, UID, GID) for path, data in contents.items()]


def manifest() -> OutputFile:
    return OutputFile(commit.MANIFEST, SecretBytes(b"{}"), 0o400, UID, GID)


def do_commit(out: Path, items: list[OutputFile]) -> commit.Committed:
    return commit.commit(str(out), items, [manifest()], dir_uid=UID, dir_gid=GID)


def test_layout_modes_and_contents(tmp_path: Path) -> None:
    result = do_commit(tmp_path, files(api_key=b"k", db__password=b"p"))
    assert os.readlink(tmp_path / "..data") == result.payload
    assert os.readlink(tmp_path / "api_key") == "..data/api_key"
    assert os.readlink(tmp_path / "db") == "..data/db"
    assert (tmp_path / "db" / "password").read_bytes() == b"p"
    assert stat.S_IMODE((tmp_path / "api_key").stat().st_mode) == 0o400
    assert stat.S_IMODE((tmp_path / result.payload).stat().st_mode) == commit.DIR_MODE
    assert sorted(os.listdir(tmp_path)) == sorted(["..data", result.payload, "..manifest.json", "api_key", "db"])


def test_a_new_set_replaces_the_old_one_whole(tmp_path: Path) -> None:
    first = do_commit(tmp_path, files(a=b"1", b=b"2"))
    second = do_commit(tmp_path, files(b=b"3", c=b"4"))
    assert second.removed == ("a",)
    assert not (tmp_path / first.payload).exists()
    assert sorted(os.listdir(tmp_path)) == sorted(["..data", second.payload, "..manifest.json", "b", "c"])
    assert (tmp_path / "b").read_bytes() == b"3"


def test_mode_and_owner_are_final_before_the_first_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, int, int]] = []
    real_write = os.write

    def spying_write(fd: int, data: bytes) -> int:
        info = os.fstat(fd)
        seen.append((stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid))
        return real_write(fd, data)

    monkeypatch.setattr(commit.os, "write", spying_write)
    items = [OutputFile("a", SecretBytes(b"x"), 0o440, UID, GID), OutputFile("b", SecretBytes(b"y"), 0o400, UID, GID)]
    do_commit(tmp_path, items)
    assert seen[:2] == [(0o440, UID, GID), (0o400, UID, GID)]


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS, errno.EDQUOT])
def test_a_failed_write_leaves_the_previous_set_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    do_commit(tmp_path, files(a=b"old", b=b"old"))
    before = snapshot(tmp_path)
    calls = 0
    real_write = os.write

    def failing_write(fd: int, data: bytes) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError(error, os.strerror(error))
        return real_write(fd, data)

    monkeypatch.setattr(commit.os, "write", failing_write)
    with pytest.raises(WriteError) as caught:
        do_commit(tmp_path, files(a=b"new", b=b"new", c=b"new"))
    assert "previous contents are untouched" in caught.value.message
    assert snapshot(tmp_path) == before


def test_owner_change_not_permitted() -> None:
    if os.geteuid() != 0:
        skip_unless_required("needs root to run a non-root child")
    tmp_path = Path(tempfile.mkdtemp(prefix="sidecar-owner-"))  # under /tmp: reachable by a non-root uid
    os.chown(tmp_path, 4321, 4321)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.setgid(4321)
        os.setuid(4321)
        try:
            do_commit(tmp_path, [OutputFile("a", SecretBytes(b"x"), 0o400, 1, 1)])
        except WriteError as exc:
            os._exit(0 if "not permitted" in exc.message and not os.listdir(tmp_path) else 1)
        os._exit(2)
    _, status = os.waitpid(pid, 0)
    shutil.rmtree(tmp_path)
    assert os.waitstatus_to_exitcode(status) == 0


def test_leftovers_of_an_interrupted_run_are_cleaned(tmp_path: Path) -> None:
    kept = do_commit(tmp_path, files(a=b"1"))
    orphan = tmp_path / "..2020_01_01_00_00_00.000000.abc123"
    orphan.mkdir()
    (orphan / "half").write_bytes(b"partial")
    os.symlink(orphan.name, tmp_path / "..data_tmp")
    assert (tmp_path / "a").read_bytes() == b"1"
    new = do_commit(tmp_path, files(a=b"2"))
    assert not orphan.exists()
    assert not (tmp_path / kept.payload).exists()
    assert not os.path.lexists(tmp_path / "..data_tmp")
    assert os.readlink(tmp_path / "..data") == new.payload


def test_planted_links_are_never_followed(tmp_path: Path) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (outside / "victim").write_bytes(b"keep")
    os.symlink(outside, out / "..data_tmp")
    os.symlink(outside, out / "..2020_01_01_00_00_00.000000.abc123")
    os.symlink(outside / "victim", out / "..data")
    do_commit(out, files(a=b"1"))
    assert (outside / "victim").read_bytes() == b"keep"
    assert os.listdir(outside) == ["victim"]
    assert (out / "a").read_bytes() == b"1"


@pytest.mark.parametrize("kind", ["file", "directory", "fifo", "foreign link"])
def test_names_the_sidecar_did_not_create_are_conflicts(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "a"
    if kind == "file":
        target.write_bytes(b"mine")
    elif kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        os.symlink("/etc/passwd", target)
    before = os.lstat(target)
    with pytest.raises(WriteError, match="already holds 'a', which the sidecar did not create"):
        do_commit(tmp_path, files(a=b"1"))
    assert os.listdir(tmp_path) == ["a"]
    after = os.lstat(target)  # not opened (a FIFO would block a reader), not replaced
    assert (after.st_ino, after.st_mode, after.st_mtime_ns) == (before.st_ino, before.st_mode, before.st_mtime_ns)


def test_preflight(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match="does not exist"):
        output_dir.preflight(str(tmp_path / "missing"), {(UID, GID)})
    output_dir.preflight(str(tmp_path), {(UID, GID)})


# --- nothing that can fail happens after the commit point --------------------------------------------------


def _fail_on(monkeypatch: pytest.MonkeyPatch, function: str, name: str, error: int = errno.ENOSPC) -> None:
    """Make ``os.<function>`` fail with ``error`` when the name it creates is ``name``."""
    real = getattr(os, function)
    created = 0 if function == "mkdir" else 1  # mkdir(name, ...), symlink(target, name), replace(src, name)

    def failing(*args: object, **kwargs: object) -> object:
        if args[created] == name:
            raise OSError(error, os.strerror(error))
        return real(*args, **kwargs)

    monkeypatch.setattr(commit.os, function, failing)


@pytest.mark.parametrize(("function", "name"), [
    ("symlink", "c"),  # the link of a name the previous set did not have
    ("symlink", "..data_tmp"),
    ("replace", "..data"),  # the swap itself
])
def test_a_failure_at_any_step_of_the_swap_leaves_the_previous_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, function: str, name: str
) -> None:
    do_commit(tmp_path, files(a=b"old", b=b"old"))
    before = snapshot(tmp_path)
    _fail_on(monkeypatch, function, name)

    with pytest.raises(WriteError) as caught:
        do_commit(tmp_path, files(a=b"new", c=b"new"))

    assert caught.value.message.endswith(commit.UNTOUCHED)
    assert "the volume is full" in caught.value.message
    assert snapshot(tmp_path) == before  # no dangling new link, no payload, the old names still there


def test_a_refused_run_leaves_leftovers_where_they_were(tmp_path: Path) -> None:
    do_commit(tmp_path, files(a=b"1"))
    orphan = tmp_path / "..2020_01_01_00_00_00.000000.abc123"
    orphan.mkdir()
    (orphan / "half").write_bytes(b"partial")
    os.symlink(orphan.name, tmp_path / "..data_tmp")
    (tmp_path / "b").write_bytes(b"the operator's")
    before = snapshot(tmp_path)

    with pytest.raises(WriteError, match="already holds 'b'"):
        do_commit(tmp_path, files(a=b"2", b=b"2"))

    assert snapshot(tmp_path) == before


def test_a_link_planted_at_a_new_name_while_the_payload_is_built_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, decoy = tmp_path / "out", tmp_path / "decoy"
    out.mkdir()
    decoy.write_bytes(b"attacker content")
    do_commit(out, files(a=b"old"))
    before = snapshot(out)
    real_create = commit.create_file

    def create_and_plant(*args: object, **kwargs: object) -> None:
        with contextlib.suppress(FileExistsError):
            os.symlink(decoy, out / "b")  # after the run inspected the directory, before it links the names
        real_create(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(commit, "create_file", create_and_plant)
    with pytest.raises(WriteError) as caught:
        do_commit(out, files(a=b"new", b=b"new"))

    assert "'b' appeared or changed" in caught.value.message and commit.UNTOUCHED in caught.value.message
    assert snapshot(out) == {**before, "b": ("link", str(decoy))}  # the planted link is left, not followed
    assert decoy.read_bytes() == b"attacker content"


def test_a_link_replaced_during_the_swap_puts_the_previous_set_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, decoy = tmp_path / "out", tmp_path / "decoy"
    out.mkdir()
    decoy.write_bytes(b"attacker content")
    first = do_commit(out, files(a=b"old"))
    real_replace = os.replace

    def replace_then_plant(src: str, dst: str, **kwargs: int) -> None:
        real_replace(src, dst, **kwargs)
        if dst == commit.DATA_LINK and not os.path.lexists(out / "planted"):
            os.symlink(decoy, out / "planted")
            real_replace(out / "planted", out / "a")  # renamed over the sidecar's own link, just after the swap

    monkeypatch.setattr(commit.os, "replace", replace_then_plant)
    with pytest.raises(WriteError) as caught:
        do_commit(out, files(a=b"new", b=b"new"))

    assert caught.value.message.endswith(commit.PUT_BACK)
    assert os.readlink(out / "..data") == first.payload
    assert sorted(os.listdir(out)) == sorted(["..data", first.payload, "..manifest.json", "a"])
    assert (out / first.payload / "a").read_bytes() == b"old"
    assert decoy.read_bytes() == b"attacker content"


def test_tidying_after_the_commit_point_never_fails_the_committed_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    do_commit(tmp_path, files(a=b"old", gone=b"old"))
    real_unlink = os.unlink

    def unlink(name: str, **kwargs: int) -> None:
        if name == "gone":
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_unlink(name, **kwargs)

    monkeypatch.setattr(commit.os, "unlink", unlink)
    result = do_commit(tmp_path, files(a=b"new"))

    assert result.removed == ()
    assert result.untidy == ("the link of 'gone', no longer configured, stays: Input/output error",)
    assert (tmp_path / "a").read_bytes() == b"new"
    assert not (tmp_path / "gone").exists()  # the link dangles: the app sees no such name


def test_no_free_inodes_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_on(monkeypatch, "mkdir", "x")  # the payload's subdirectory
    real_statvfs = os.fstatvfs

    def no_inodes(fd: int) -> os.statvfs_result:
        info = list(real_statvfs(fd))
        info[5], info[6], info[7] = 1000, 0, 0  # f_files, f_ffree, f_favail: none of 1000 left
        return os.statvfs_result(info)

    monkeypatch.setattr(commit.os, "fstatvfs", no_inodes)
    with pytest.raises(WriteError, match="no free inodes left") as caught:
        do_commit(tmp_path, files(x__y=b"1"))
    assert caught.value.message.endswith(commit.UNTOUCHED)
    assert os.listdir(tmp_path) == []


def test_the_health_record_is_written_like_a_secret_file_and_never_through_a_planted_link(tmp_path: Path) -> None:
    from sidecar.health import HEALTH, Health, read_health, write_health

    out, decoy = tmp_path / "out", tmp_path / "decoy"
    out.mkdir()
    decoy.write_bytes(b"outside")
    os.symlink(decoy, out / "..health.json.tmp")  # planted at the temporary name: removed, never followed
    record = Health(last_success=1.0, last_attempt=2.0, last_error=None, generation=3, pid=4)

    write_health(str(out), record, mode=0o440, uid=UID, gid=GID)

    assert decoy.read_bytes() == b"outside"
    assert read_health(str(out)) == record
    info = os.lstat(out / HEALTH)
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o440
    assert sorted(os.listdir(out)) == [HEALTH]
