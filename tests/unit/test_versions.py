"""A version never goes back. The guard's rules (pure), then the refresh cycle in-process against checks that
answer an older version than the one in place: the files keep the newer one unless two checks in a row say
the stage was moved back."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import structlog
from structlog.testing import capture_logs

from sidecar.outcomes import Checked, Fetched, Outcome
from sidecar.references import SecretTarget, Target
from sidecar.refresh import Refresher
from sidecar.secret import SecretBytes
from sidecar.versions import MAX_SUPERSEDED_KEPT, VersionGuard

V1, V2, V3 = "v1-aaaa", "v2-bbbb", "v3-cccc"
KEY = "db"


def fetched(version: str, created: float | None = None) -> Fetched:
    return Fetched(SecretBytes(version.encode()), version, created=created)


def answer(version: str, created: float | None = None) -> Checked:
    return Checked(version, fetched(version, created))


def guard_after_rotation() -> VersionGuard[str]:
    guard: VersionGuard[str] = VersionGuard()
    guard.replaced(KEY, V1, V2)  # V1 was in place, V2 replaced it
    return guard


def test_the_same_version_and_a_newer_one() -> None:
    guard = guard_after_rotation()
    assert guard.verdict(KEY, fetched(V2), answer(V2)) == "same"
    assert guard.verdict(KEY, fetched(V2), answer(V3)) == "newer"


def test_a_superseded_version_is_applied_only_when_two_answers_in_a_row_name_it() -> None:
    guard = guard_after_rotation()
    assert guard.verdict(KEY, fetched(V2), answer(V1)) == "older-once"
    assert guard.verdict(KEY, fetched(V2), answer(V1)) == "older-confirmed"


def test_a_lagging_answer_between_current_ones_is_never_confirmed() -> None:
    guard = guard_after_rotation()
    verdicts = [guard.verdict(KEY, fetched(V2), answer(v)) for v in (V1, V2, V1, V3)]
    assert verdicts == ["older-once", "same", "older-once", "newer"]


def test_a_version_created_before_the_one_in_place_is_older_though_never_held() -> None:
    guard: VersionGuard[str] = VersionGuard()  # just started: nothing superseded yet
    assert guard.verdict(KEY, fetched(V2, created=2000.0), answer(V1, created=1000.0)) == "older-once"
    assert guard.verdict(KEY, fetched(V2, created=2000.0), answer(V3, created=3000.0)) == "newer"
    assert guard.verdict(KEY, fetched(V2), answer(V1)) == "newer"  # no dates, never held: nothing says older


def test_after_a_confirmed_rollback_the_rolled_back_version_is_the_older_one() -> None:
    guard = guard_after_rotation()
    guard.replaced(KEY, V2, V1)  # the rollback was committed
    assert guard.verdict(KEY, fetched(V1), answer(V2)) == "older-once"


def test_the_memory_is_bounded() -> None:
    guard: VersionGuard[str] = VersionGuard()
    versions = [f"v{i}" for i in range(MAX_SUPERSEDED_KEPT + 2)]
    for old, new in itertools.pairwise(versions):
        guard.replaced(KEY, old, new)
    held = fetched(versions[-1])
    assert guard.verdict(KEY, held, answer(versions[-2])) == "older-once"
    assert guard.verdict(KEY, held, answer(versions[0])) == "newer"  # forgotten: too many rotations ago


# --- the refresh cycle -----------------------------------------------------------------------------------------

TARGET = SecretTarget("eu-west-1", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db")


class ScriptedFetcher:
    """Answers each check with the next version of a script; any fetch would be a bug (checks carry values)."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.stats = SimpleNamespace(api_calls=1)

    def check(self, _calls: object) -> dict[Target, Checked]:
        return {TARGET: answer(self.version)}

    def fetch(self, _calls: object) -> dict[Target, Outcome]:
        raise AssertionError("a value the check already read was fetched again")


class FakeJob:
    def __init__(self, tmp_path: Path) -> None:
        self.log = structlog.get_logger()
        self.settings = SimpleNamespace(
            refresh_interval=300.0, timeout_seconds=30.0, output_dir=str(tmp_path), file_mode=0o400, uid=0,
            gid=0, sm_batch="auto", notify_signal=None, notify_process=None, notify_command=None,
        )
        self.targets = (TARGET,)
        self.stop = SimpleNamespace(is_set=lambda: False)
        self.batch_denied: set[str] = set()
        self.values: dict[Target, Outcome] = {TARGET: fetched(V1)}
        self.generation = 1
        self.script: list[str] = []
        self.committed: list[str] = []

    def fetcher(self, _seconds: float) -> ScriptedFetcher:
        return ScriptedFetcher(self.script.pop(0))

    def publish(self, outcomes: dict[Target, Outcome]) -> Any:
        value = outcomes[TARGET]
        assert isinstance(value, Fetched)
        self.values = dict(outcomes)
        self.generation += 1
        self.committed.append(value.value.reveal().decode())
        return SimpleNamespace(files=1, bytes=len(self.committed[-1]))


def run_cycles(tmp_path: Path, script: list[str]) -> tuple[FakeJob, list[dict[str, Any]]]:
    job = FakeJob(tmp_path)
    job.script = list(script)
    refresher = Refresher(job, rng=random.Random(1))  # type: ignore[arg-type]  # noqa: S311
    with capture_logs() as logs:
        for _ in script:
            refresher.cycle()
    return job, logs


def test_an_answer_older_than_the_version_in_place_keeps_the_files(tmp_path: Path) -> None:
    # V1 in place, rotated to V2; then a lagging read answers V1 between answers of V2.
    job, logs = run_cycles(tmp_path, [V2, V1, V2, V1, V2])
    assert job.committed == [V2]  # V1 never came back
    older = [e for e in logs if e["event"] == "older_version_answered"]
    assert len(older) == 2 and older[0]["reference"] == TARGET.describe()
    assert [e["changed"] for e in logs if e["event"] == "refresh_check"] == [1, 0, 0, 0, 0]


def test_a_stage_moved_back_is_applied_at_the_second_answer_naming_it(tmp_path: Path) -> None:
    job, logs = run_cycles(tmp_path, [V2, V1, V1, V1])
    assert job.committed == [V2, V1]
    assert [e["event"] for e in logs if e["event"].startswith("older_version")] == [
        "older_version_answered", "older_version_applied"]
    assert (job.values[TARGET].version if isinstance(job.values[TARGET], Fetched) else None) == V1
