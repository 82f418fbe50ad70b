"""The set is committed at once, a failed run changes nothing, and nothing outside the directory is touched."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SecretValues, run_sidecar, sidecar_env, snapshot
from tests.e2e.helpers import (
    NOBODY,
    assert_failed,
    assert_ok,
    full_state,
    payload_dirs,
    run_as,
    run_with_file_size_limit,
    run_with_private_mount,
    secrets_json,
    visible,
)

ORPHAN = "..2020_01_02_03_04_05.123456.abc123"


def _env(aws: Any, outdir: Path, *entries: dict[str, Any], **settings: str) -> dict[str, str]:
    return sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries),
                       **settings)


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A directory outside the output directory, with a file and a subdirectory, that must never change."""
    directory = tmp_path / "elsewhere"
    (directory / "sub").mkdir(parents=True)
    (directory / "file").write_bytes(b"outside file: must stay")
    (directory / "sub" / "inner").write_bytes(b"outside inner file")
    os.chmod(directory / "file", 0o644)
    return directory


def _seed_first_set(aws: Any, secret_values: SecretValues) -> dict[str, Any]:
    arn = aws.secretsmanager.create_secret(
        Name="set/db", SecretString=secret_values.add('{"user": "set-user-1", "password": "set-pass-1"}'))["ARN"]
    aws.ssm.put_parameter(Name="/set/api", Value=secret_values.add("set-api-1"), Type="SecureString")
    aws.ssm.put_parameter(Name="/set/gone", Value=secret_values.add("set-gone-1"), Type="String")
    return {"arn": arn, "entries": [
        {"name": "db", "valueFrom": arn, "expand": True},
        {"name": "api", "valueFrom": "/set/api"},
        {"name": "gone", "valueFrom": "/set/gone"},
        {"name": "nested/gone", "valueFrom": "/set/gone"},
    ]}


def test_second_run_replaces_the_whole_set(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    first = _seed_first_set(aws, secret_values)
    assert_ok(run_sidecar(_env(aws, outdir, *first["entries"]), guard=secret_values))
    (old_payload,) = payload_dirs(outdir)
    assert os.readlink(outdir / "..data") == old_payload
    assert visible(outdir)["gone"] == b"set-gone-1"

    aws.secretsmanager.put_secret_value(
        SecretId=first["arn"], SecretString=secret_values.add('{"user": "set-user-2", "password": "set-pass-2"}'))
    aws.ssm.put_parameter(Name="/set/new", Value=secret_values.add("set-new-2"), Type="String")
    second = [first["entries"][0], first["entries"][1], {"name": "new", "valueFrom": "/set/new"}]
    result = run_sidecar(_env(aws, outdir, *second), guard=secret_values)

    assert_ok(result)
    (new_payload,) = payload_dirs(outdir)
    assert new_payload != old_payload
    assert os.readlink(outdir / "..data") == new_payload
    assert visible(outdir) == {"api": b"set-api-1", "db/password": b"set-pass-2", "db/user": b"set-user-2",
                               "new": b"set-new-2"}
    assert sorted(os.listdir(outdir)) == sorted(
        ["..data", "..manifest.json", "..version", new_payload, "api", "db", "new"])
    assert sorted(e["name"] for e in result.events if e["event"] == "file_removed") == ["gone", "nested"]
    manifest = json.loads((outdir / "..manifest.json").read_bytes())
    assert sorted(e["name"] for e in manifest["entries"]) == ["api", "db", "new"]


def _fail_fetch(aws: Any, outdir: Path, entries: list[dict[str, Any]], sv: SecretValues) -> Any:
    missing = {"name": "missing", "valueFrom": "/set/does-not-exist"}
    return run_sidecar(_env(aws, outdir, *entries, missing), guard=sv), 3


def _fail_json_key(aws: Any, outdir: Path, entries: list[dict[str, Any]], sv: SecretValues) -> Any:
    bad = {"name": "nokey", "valueFrom": f"{entries[0]['valueFrom']}:no-such-key::"}
    return run_sidecar(_env(aws, outdir, *entries, bad), guard=sv), 3


def _fail_config(aws: Any, outdir: Path, entries: list[dict[str, Any]], sv: SecretValues) -> Any:
    return run_sidecar(_env(aws, outdir, *entries, SIDECAR_FILE_MODE="0666"), guard=sv), 2


def _fail_mid_payload(aws: Any, outdir: Path, entries: list[dict[str, Any]], sv: SecretValues) -> Any:
    # The small files fit, the large one does not: the run fails after part of the new payload is written.
    aws.ssm.put_parameter(Name="/set/large", Value=sv.add("L" * 3000), Type="String")
    large = {"name": "zz_large", "valueFrom": "/set/large"}
    return run_with_file_size_limit(_env(aws, outdir, *entries, large), limit=1000, guard=sv), 4


@pytest.mark.parametrize("failure", [_fail_fetch, _fail_json_key, _fail_config, _fail_mid_payload],
                         ids=["not-found", "json-key", "config", "write-mid-payload"])
def test_a_failing_run_leaves_the_directory_exactly_as_it_was(
    failure: Callable[..., Any], aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    first = _seed_first_set(aws, secret_values)
    assert_ok(run_sidecar(_env(aws, outdir, *first["entries"]), guard=secret_values))
    aws.secretsmanager.put_secret_value(
        SecretId=first["arn"], SecretString=secret_values.add('{"user": "changed-user", "password": "changed-pw"}'))
    before = full_state(outdir)

    result, code = failure(aws, outdir, first["entries"], secret_values)

    failed = assert_failed(result, code)
    assert full_state(outdir) == before
    assert visible(outdir)["db/user"] == b"set-user-1"
    if code == 4:
        assert "File too large" in failed["reason"] and "previous contents are untouched" in failed["reason"]


def test_leftovers_of_an_interrupted_run_are_cleaned(
    aws: Any, outdir: Path, elsewhere: Path, secret_values: SecretValues
) -> None:
    first = _seed_first_set(aws, secret_values)
    assert_ok(run_sidecar(_env(aws, outdir, *first["entries"]), guard=secret_values))
    (current,) = payload_dirs(outdir)
    # An interrupted run: a payload built but never swapped in, and its temporary link.
    (outdir / ORPHAN / "db").mkdir(parents=True)
    (outdir / ORPHAN / "db" / "user").write_bytes(b"half-written")
    os.symlink(ORPHAN, outdir / "..data_tmp")
    # Another interrupted payload that is just a link (to a directory outside): only the link may go.
    other = "..2020_01_02_03_04_06.000001.ff00ee"
    os.symlink(elsewhere, outdir / other)
    outside_before = full_state(elsewhere)

    result = run_sidecar(_env(aws, outdir, *first["entries"]), guard=secret_values)

    assert_ok(result)
    assert not os.path.lexists(outdir / "..data_tmp")
    assert not os.path.lexists(outdir / ORPHAN)
    assert not os.path.lexists(outdir / other)
    (new_payload,) = payload_dirs(outdir)
    assert new_payload != current
    assert os.readlink(outdir / "..data") == new_payload
    assert visible(outdir)["db/user"] == b"set-user-1"
    assert full_state(elsewhere) == outside_before


def test_data_tmp_link_pointing_outside_is_removed_not_followed(
    aws: Any, outdir: Path, elsewhere: Path, secret_values: SecretValues
) -> None:
    first = _seed_first_set(aws, secret_values)
    os.symlink(elsewhere, outdir / "..data_tmp")
    outside_before = full_state(elsewhere)

    result = run_sidecar(_env(aws, outdir, *first["entries"]), guard=secret_values)

    assert_ok(result)
    assert full_state(elsewhere) == outside_before
    assert os.readlink(outdir / "..data") == payload_dirs(outdir)[0]
    assert not os.path.lexists(outdir / "..data_tmp")


def test_planted_data_link_to_outside_is_replaced_and_outside_untouched(
    aws: Any, outdir: Path, elsewhere: Path, secret_values: SecretValues
) -> None:
    first = _seed_first_set(aws, secret_values)
    os.symlink(elsewhere, outdir / "..data")
    os.symlink(elsewhere / "sub", outdir / "..2020_01_02_03_04_05.123456.feed00")  # a "payload" that is a link
    outside_before = full_state(elsewhere)

    result = run_sidecar(_env(aws, outdir, *first["entries"]), guard=secret_values)

    assert_ok(result)
    assert full_state(elsewhere) == outside_before
    (payload,) = payload_dirs(outdir)
    assert os.readlink(outdir / "..data") == payload
    assert visible(outdir)["api"] == b"set-api-1"


@pytest.mark.parametrize(("planted", "entry_name"), [
    ("name", "api"),  # api -> /…/elsewhere/file
    ("dir", "tls/cert.pem"),  # tls -> /…/elsewhere/sub
    ("stale", "api"),  # an unrelated link pointing outside: left alone
])
def test_planted_symlinks_are_never_followed(
    planted: str, entry_name: str, *, aws: Any, outdir: Path, elsewhere: Path, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/set/api", Value=secret_values.add("planted-api-1"), Type="SecureString")
    if planted == "name":
        os.symlink(elsewhere / "file", outdir / "api")
    elif planted == "dir":
        os.symlink(elsewhere / "sub", outdir / "tls")
    else:
        os.symlink(elsewhere / "file", outdir / "stale")
    outside_before = full_state(elsewhere)
    inside_before = snapshot(outdir)

    result = run_sidecar(_env(aws, outdir, {"name": entry_name, "valueFrom": "/set/api"}), guard=secret_values)

    assert full_state(elsewhere) == outside_before
    if planted == "stale":
        assert_ok(result)
        assert os.readlink(outdir / "stale") == str(elsewhere / "file")
        assert (outdir / "api").read_bytes() == b"planted-api-1"
    else:
        top = entry_name.split("/", maxsplit=1)[0]
        assert_failed(result, 4, repr(top), "did not create")
        assert snapshot(outdir) == inside_before
        assert [e for e in result.events if e["event"] == "api_call"]  # fetched, then refused to write


def test_existing_regular_file_with_an_entry_name_is_a_conflict(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/set/api", Value=secret_values.add("conflict-api-1"), Type="SecureString")
    (outdir / "api").write_bytes(b"the operator's own file")
    os.chmod(outdir / "api", 0o640)
    before = full_state(outdir)

    result = run_sidecar(_env(aws, outdir, {"name": "api", "valueFrom": "/set/api"}), guard=secret_values)

    assert_failed(result, 4, "'api'", "did not create")
    assert full_state(outdir) == before


def test_old_payload_the_sidecar_cannot_remove_does_not_fail_a_committed_run(
    aws: Any, open_outdir: Path, _previous_template: Path, secret_values: SecretValues
) -> None:
    # A set written by root (files 0400, directories 0755 owned by root); now the sidecar runs as another uid
    # that owns the output directory: it can swap the set in, but not empty root's old payload.
    shutil.copytree(_previous_template, open_outdir, symlinks=True, dirs_exist_ok=True)
    (old_payload,) = payload_dirs(open_outdir)
    os.chown(open_outdir, NOBODY, NOBODY)
    aws.ssm.put_parameter(Name="/set/api", Value=secret_values.add("non-root-new-set"), Type="SecureString")
    env = _env(aws, open_outdir, {"name": "api", "valueFrom": "/set/api"})

    result = run_as(env, uid=NOBODY, gid=NOBODY, guard=secret_values)

    assert_ok(result)
    assert visible(open_outdir) == {"api": b"non-root-new-set"}
    assert old_payload in payload_dirs(open_outdir)  # left behind, unreachable through ..data
    assert os.readlink(open_outdir / "..data") != old_payload

    # A later run that can remove it does.
    assert_ok(run_sidecar(env, guard=secret_values))
    assert old_payload not in payload_dirs(open_outdir) and len(payload_dirs(open_outdir)) == 1


def test_a_directory_named_data_tmp_is_a_write_error_not_a_crash(
    aws: Any, previous: Path, secret_values: SecretValues
) -> None:
    (previous / "..data_tmp").mkdir()
    (previous / "..data_tmp" / "keep").write_bytes(b"not the sidecar's")
    aws.ssm.put_parameter(Name="/set/api", Value=secret_values.add("never-written-1"), Type="SecureString")
    before = full_state(previous)

    result = run_sidecar(_env(aws, previous, {"name": "api_key", "valueFrom": "/set/api"}), guard=secret_values)

    assert_failed(result, 4, "..data_tmp", "previous contents are untouched")
    assert full_state(previous) == before


# The seed set (entry "a") takes 9 inodes of a tmpfs: its root, the payload directory, the files "a",
# ..manifest.json and ..version, the link ..data and the links of the three names. A set of five (a, b, c and the
# two internal files) then needs, at its peak, 6 more for its payload, 2 for the new names' links and 1 for
# ..data_tmp; the swap frees the previous ..data link's inode, the tidying the previous payload's.
SEED_INODES = 9
NEW_SET_PEAK_INODES = 6 + 2 + 1


def test_a_volume_out_of_inodes_fails_before_the_swap_and_says_so(
    aws: Any, tmp_path: Path, secret_values: SecretValues
) -> None:
    """Two inodes short of the new set's peak: the payload and the link of "b" fit, the link of "c" does not.
    Before the fix the links were made after the swap: there the link of "c" failed with the new set already
    live, and the run exited 4 saying the previous contents were untouched."""
    for name in ("a", "b", "c"):
        aws.ssm.put_parameter(Name=f"/inodes/{name}", Value=secret_values.add(f"inode-test-{name}"), Type="String")
    seed, after, outdir = tmp_path / "seed", tmp_path / "after", tmp_path / "out"
    for directory in (seed, after, outdir):
        directory.mkdir()
    assert_ok(run_sidecar(_env(aws, seed, {"name": "a", "valueFrom": "/inodes/a"}), guard=secret_values))
    before = full_state(seed)
    entries = [{"name": name, "valueFrom": f"/inodes/{name}"} for name in ("a", "b", "c")]

    def mount(inodes: int) -> str:
        return f'mount -t tmpfs -o size=1m,mode=0755,nr_inodes={inodes} tmpfs "$dir" && cp -a {seed}/. "$dir"/'

    short = SEED_INODES + NEW_SET_PEAK_INODES - 2
    result, _ = run_with_private_mount(_env(aws, outdir, *entries), mount(short), outdir, guard=secret_values,
                                       keep=after)

    assert_failed(result, 4, "no free inodes left", "previous contents are untouched")
    assert full_state(after) == before
    assert visible(after) == {"a": b"inode-test-a"}

    # With the inodes its peak needs, the same run commits: the count above is what a set of this shape takes.
    result, left = run_with_private_mount(_env(aws, outdir, *entries), mount(short + 2), outdir,
                                          guard=secret_values)
    assert_ok(result)
    assert sorted(name for name in left if not name.startswith("..2")) == [
        "..data", "..manifest.json", "..version", "a", "b", "c"]
    assert len(payload_dirs_in(left)) == 1


def payload_dirs_in(names: list[str]) -> list[str]:
    return [name for name in names if name.startswith("..") and name[2:3].isdigit()]


RACE_KEYS = 150  # files in the new set: building them (each fsynced) is the planter's window
RACE_ROUNDS = 3


def test_a_link_planted_at_a_new_name_during_the_commit_never_survives_it(
    aws: Any, tmp_path: Path, elsewhere: Path, secret_values: SecretValues
) -> None:
    """A planter watches for the new payload directory (the build has begun) and plants a link at a name the
    new set adds. Either the plant lands first and the run refuses (exit 4, the previous set still what the app
    sees, the planted link left and not followed), or the sidecar's link is there first and the plant fails.
    Before the fix the run took the planted link for its own and exited 0 with "b" showing the planter's file."""
    aws.ssm.put_parameter(Name="/race/a", Value=secret_values.add("race-value-a"), Type="String")
    document = {f"k{i:03d}": f"race-set-value-{i:03d}" for i in range(RACE_KEYS)}
    arn = aws.secretsmanager.create_secret(Name="race/set", SecretString=secret_values.add(json.dumps(document)))
    seed, out = tmp_path / "seed", tmp_path / "out"
    seed.mkdir()
    assert_ok(run_sidecar(_env(aws, seed, {"name": "a", "valueFrom": "/race/a"}), guard=secret_values))
    env = _env(aws, out, {"name": "a", "valueFrom": "/race/a"}, {"name": "b", "valueFrom": "/race/a"},
               {"name": "set", "valueFrom": arn["ARN"], "expand": True})
    outside_before = full_state(elsewhere)
    planted_first = 0
    for _ in range(RACE_ROUNDS):
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(seed, out, symlinks=True)
        before = full_state(out)
        landed: list[bool] = []
        planter = threading.Thread(target=_plant_when_building, args=(out, elsewhere / "file", landed))
        planter.start()
        result = run_sidecar(env, guard=secret_values)
        planter.join(timeout=30)
        assert landed, "the planter never saw the build begin"
        if landed[0]:
            planted_first += 1
            assert_failed(result, 4, "'b' appeared or changed", "previous contents are untouched")
            after = full_state(out)
            assert after["content"] == {**before["content"], "b": ("link", str(elsewhere / "file"))}
            assert visible(out) == {"a": b"race-value-a", "b": b"outside file: must stay"}  # the plant, unread
        else:
            assert_ok(result)
            assert os.readlink(out / "b") == "..data/b"
            assert (out / "b").read_bytes() == b"race-value-a"
            assert len(list((out / "set").iterdir())) == RACE_KEYS
        assert full_state(elsewhere) == outside_before
    assert planted_first > 0, "no plant landed inside the commit: the race was not exercised"


def _plant_when_building(out: Path, decoy: Path, landed: list[bool]) -> None:
    """As soon as a new payload directory appears, plant ``out/b`` -> ``decoy``; record whether it landed."""
    known = set(payload_dirs(out))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if set(payload_dirs(out)) - known:
            try:
                os.symlink(decoy, out / "b")
            except FileExistsError:
                landed.append(False)
            else:
                landed.append(True)
            return
        time.sleep(0.0005)
