"""The volume: owner changes a non-root sidecar may not make, a directory it does not own, SIGKILL in the middle
of a commit, and hard links planted in the output directory."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REGION, SIDECAR, SecretValues, run_sidecar, sidecar_env, spawn
from tests.e2e.faultproxy import FaultProxy
from tests.e2e.helpers import NOBODY, assert_failed, assert_ok, full_state, payload_dirs, run_as, secrets_json
from tests.reliability.common import assert_clean, figure

OTHER_UID = 12345


# --- ownership ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["SIDECAR_UID", "entry uid"])
def test_owner_change_not_permitted_fails_before_any_api_call(
    how: str, aws: Any, open_outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/vol/a", Value=secret_values.add("volume-value-never-fetched"), Type="String")
    os.chown(open_outdir, NOBODY, NOBODY)
    entry: dict[str, Any] = {"name": "a", "valueFrom": "/vol/a"}
    settings = {"SIDECAR_UID": str(OTHER_UID)} if how == "SIDECAR_UID" else {}
    if how == "entry uid":
        entry["uid"] = OTHER_UID
    env = sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(open_outdir), SIDECAR_SECRETS=secrets_json(entry), **settings)

    result = run_as(env, uid=NOBODY, gid=NOBODY, guard=secret_values)

    assert_failed(result, 4, f"cannot give files to {OTHER_UID}:", f"runs as {NOBODY}:{NOBODY}")
    assert proxy.seen == []  # not one request: no credentials, no API call
    assert os.listdir(open_outdir) == []


def test_directory_owned_by_another_user_fails_before_any_api_call(
    aws: Any, open_outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/vol/a", Value=secret_values.add("volume-value-never-fetched"), Type="String")
    os.chown(open_outdir, OTHER_UID, OTHER_UID)  # mode 0755: the sidecar's user may enter, not write
    before = full_state(open_outdir)
    env = sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(open_outdir),
                      SIDECAR_SECRETS=secrets_json({"name": "a", "valueFrom": "/vol/a"}))

    result = run_as(env, uid=NOBODY, gid=NOBODY, guard=secret_values)

    assert_failed(result, 4, f"not writable by uid {NOBODY}", f"owner uid {OTHER_UID}", "mode 0755")
    assert proxy.seen == []
    assert full_state(open_outdir) == before


# --- hard links -------------------------------------------------------------------------------------------


def _victim(tmp_path: Path) -> tuple[Path, tuple[int, int, int]]:
    victim = tmp_path / "outside" / "victim"
    victim.parent.mkdir()
    victim.write_bytes(b"outside-the-output-directory\n")
    victim.chmod(0o644)
    info = victim.stat()
    return victim, (info.st_mode, info.st_mtime_ns, info.st_size)


def _untouched(victim: Path, before: tuple[int, int, int]) -> None:
    info = victim.stat()
    assert (info.st_mode, info.st_mtime_ns, info.st_size) == before
    assert victim.read_bytes() == b"outside-the-output-directory\n"


def test_hard_links_planted_in_the_output_directory_are_never_written_through(
    aws: Any, previous: Path, tmp_path: Path, secret_values: SecretValues
) -> None:
    """Hard links to a file outside, planted as: a name the configuration uses, the temporary link, a name
    shaped like a payload directory, a name the configuration does not use, and every file inside the
    current payload. The run either refuses (exit 4) or replaces the links; the file outside never changes."""
    aws.ssm.put_parameter(Name="/vol/a", Value=secret_values.add("hardlink-run-value"), Type="SecureString")
    victim, before = _victim(tmp_path)
    current = previous / os.readlink(previous / "..data")
    payload_files = [p for p in current.rglob("*") if p.is_file()]
    for path in payload_files:  # inside the set the last run committed
        path.unlink()
        os.link(victim, path)
    for name in ("..data_tmp", "..2020_01_01_00_00_00.000000.abc123", "unrelated"):
        os.link(victim, previous / name)
    os.link(victim, previous / "a")
    env = sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(previous),
                      SIDECAR_SECRETS=secrets_json({"name": "a", "valueFrom": "/vol/a"},
                                                   {"name": "api_key", "valueFrom": "/vol/a"}))

    conflict = run_sidecar(env, guard=secret_values)

    assert_failed(conflict, 4, "already holds 'a'")
    _untouched(victim, before)
    (previous / "a").unlink()

    result = run_sidecar(env, guard=secret_values)

    assert_ok(result)
    _untouched(victim, before)
    assert (previous / "a").read_bytes() == b"hardlink-run-value"
    assert (previous / "api_key").read_bytes() == b"hardlink-run-value"
    assert (previous / "unrelated").stat().st_ino == victim.stat().st_ino  # not the sidecar's: left alone
    assert_clean(previous)
    assert victim.stat().st_nlink == 2  # only "unrelated" still points at it


# --- SIGKILL in the middle of a commit ----------------------------------------------------------------------

FILES_PER_SET = 200
BLOBS = 3
BLOB_BYTES = 768 * 1024
KILL_ROUNDS = 8
AFTER_SWAP_ROUNDS = 3  # killed just past the commit point: the next run must see the new set
KILL_SEED = 20261128


def _seed_set(aws: Any, secret_values: SecretValues, label: str) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """One value set: a JSON secret expanded into FILES_PER_SET files, and BLOBS large S3 objects."""
    document = {f"k{i:03d}": f"{label}-value-{i:03d}-{'x' * (i % 7)}" for i in range(FILES_PER_SET)}
    arn = aws.secretsmanager.create_secret(Name=f"kill/{label}",
                                           SecretString=secret_values.add(json.dumps(document)))["ARN"]
    entries: list[dict[str, Any]] = [{"name": "set", "valueFrom": arn, "expand": True}]
    expected = {f"set/{key}": value.encode() for key, value in document.items()}
    for index in range(BLOBS):
        body = (f"{label}-blob-{index}-".encode() * (BLOB_BYTES // 12 + 1))[:BLOB_BYTES]
        aws.s3.put_object(Bucket="kill-bucket", Key=f"{label}/{index}", Body=secret_values.add(body))
        entries.append({"name": f"blob{index}", "valueFrom": f"s3://kill-bucket/{label}/{index}"})
        expected[f"blob{index}"] = body
    return entries, expected


def _seen_through_data(directory: Path) -> dict[str, bytes]:
    """What a reader that resolves ``..data`` once sees: every file of that payload."""
    payload = directory / os.readlink(directory / "..data")
    return {str(p.relative_to(payload)): p.read_bytes() for p in sorted(payload.rglob("*"))
            if p.is_file() and not p.name.startswith("..")}


def _seen_through_names(directory: Path) -> dict[str, bytes]:
    """What the app sees opening its file names (each resolved through the top-level links)."""
    seen = {f"set/{p.name}": p.read_bytes() for p in sorted((directory / "set").iterdir())}
    seen.update({f"blob{i}": (directory / f"blob{i}").read_bytes() for i in range(BLOBS)})
    return seen


def _kill_during_commit(env: dict[str, str], directory: Path, delay: float | None, *,
                        after_swap: bool = False) -> tuple[str, bytes, float]:
    """Start a run, wait until its payload directory appears (the commit has begun), wait ``delay``, SIGKILL
    (``None``: let it finish; ``after_swap``: SIGKILL as soon as ``..data`` names the new payload, while the
    run still removes the previous one). Returns where it was (``commit``: killed while committing;
    ``finished``: it exited first), its output, and the seconds from the payload's appearance to the kill or,
    with ``None``, to the commit point."""
    before = set(payload_dirs(directory))
    process = spawn([SIDECAR], env, merge_stderr=True)
    state, window = "timeout", 0.0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if set(payload_dirs(directory)) - before:
            appeared = time.monotonic()
            if delay is None:  # measure up to the commit point: ..data names another payload
                previous = os.readlink(directory / "..data")
                while process.poll() is None and os.readlink(directory / "..data") == previous:
                    time.sleep(0.0005)
                window = time.monotonic() - appeared
                if not after_swap:
                    process.wait(timeout=60)
                    return "finished", process.stdout(), window
            else:
                time.sleep(delay)
            window = time.monotonic() - appeared
            state = "finished"
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                state = "commit"
            break
        time.sleep(0.0005)
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)
    return state, process.stdout(), window


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_commit_leaves_the_old_or_the_new_set(
    aws: Any, tmp_path: Path, secret_values: SecretValues
) -> None:
    aws.s3.create_bucket(Bucket="kill-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    sets = {label: _seed_set(aws, secret_values, label) for label in ("A", "B")}
    directory = tmp_path / "out"
    directory.mkdir()

    def env(label: str) -> dict[str, str]:
        return sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(directory), SIDECAR_TIMEOUT="60",
                           SIDECAR_SECRETS=json.dumps(sets[label][0]))

    assert_ok(run_sidecar(env("A"), guard=secret_values))
    # How long building and swapping in this set takes here: kills are spread over that window and past it.
    state, output, window = _kill_during_commit(env("B"), directory, None)
    assert state == "finished" and b'"event": "done"' in output
    committed = "B"
    rng = random.Random(KILL_SEED)  # noqa: S311 - reproducible kill moments, not secrets
    where: list[str] = []
    outcomes: list[str] = []
    leftovers = 0
    schedule = [False] * KILL_ROUNDS + [True] * AFTER_SWAP_ROUNDS
    rng.shuffle(schedule)
    for after_swap in schedule:
        writing = "B" if committed == "A" else "A"
        delay = None if after_swap else rng.uniform(0, window * 1.2)
        state, output, _ = _kill_during_commit(env(writing), directory, delay, after_swap=after_swap)
        for value in secret_values.values:
            assert value not in output
        assert state != "timeout"
        where.append(state)

        # A reader resolving ..data sees one whole set; so does the app opening its names.
        through_data = _seen_through_data(directory)
        assert through_data in (sets["A"][1], sets["B"][1]), "a mix or a partial file"
        assert _seen_through_names(directory) == through_data
        seen = "A" if through_data == sets["A"][1] else "B"
        assert seen in (committed, writing)
        outcomes.append("new" if seen == writing else "old")
        if after_swap:
            assert seen == writing, "killed after the commit point, yet the old set"
        leftovers += len(payload_dirs(directory)) - 1 + os.path.lexists(directory / "..data_tmp")

        # The next normal run cleans what the killed one left and commits.
        assert_ok(run_sidecar(env(writing), guard=secret_values))
        assert _seen_through_names(directory) == sets[writing][1]
        assert_clean(directory)
        committed = writing

    # Kills landed on both sides of the commit point: the old set stayed (killed before the swap) and the new
    # one was whole (killed after it); otherwise the rounds proved less than they claim.
    killed = [outcome for state, outcome in zip(where, outcomes, strict=True) if state == "commit"]
    assert "old" in killed, f"no kill landed before the commit point: {list(zip(where, outcomes, strict=True))}"
    assert "new" in killed, f"no kill landed after the commit point: {list(zip(where, outcomes, strict=True))}"
    figure("sigkill", rounds=len(schedule), killed=where.count("commit"),
           finished_first=where.count("finished"), saw_old=outcomes.count("old"), saw_new=outcomes.count("new"),
           leftovers_cleaned=leftovers, files_per_set=FILES_PER_SET + BLOBS,
           commit_window_s=round(window, 3))
