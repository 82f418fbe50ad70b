"""The refresh loop in-process: after failed cycles it asks the stop flag's wait for the backoff that
``next_delay`` gives, capped at the interval, however long the failures go on. No real time passes: the
wait is a fake that records what it was asked for."""

from __future__ import annotations

import math
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import structlog
from structlog.testing import capture_logs

from sidecar.errors import FetchError
from sidecar.refresh import FAILURE_BACKOFF_BASE_SECONDS, JITTER, Refresher

FAILURES = 10_000
INTERVAL = 300.0


class RecordingStop:
    """Stands in for ``sidecar.stopping.Stop``: every wait returns at once; a stop after ``cycles`` waits."""

    signal_name = "SIGTERM"

    def __init__(self, cycles: int) -> None:
        self.cycles = cycles
        self.waits: list[float] = []

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return len(self.waits) > self.cycles

    def is_set(self) -> bool:
        return len(self.waits) > self.cycles

    def check(self) -> None:
        pass


def failing_job(stop: RecordingStop, output_dir: Path) -> Any:
    def fetcher(_seconds: float) -> Any:
        raise FetchError("injected: the check failed")

    settings = SimpleNamespace(refresh_interval=INTERVAL, timeout_seconds=30.0, output_dir=str(output_dir),
                               file_mode=0o400, uid=0, gid=0, sm_batch="auto")
    return SimpleNamespace(log=structlog.get_logger(), settings=settings, targets=(), stop=stop, generation=1,
                           fetcher=fetcher, values={}, batch_denied=set())


def test_ten_thousand_failed_cycles_back_off_to_the_interval_and_never_overflow(tmp_path: Path) -> None:
    stop = RecordingStop(FAILURES)
    refresher = Refresher(failing_job(stop, tmp_path / "absent"), rng=random.Random(1))  # noqa: S311

    with capture_logs() as logs:
        refresher.run_forever()

    waits = stop.waits
    assert len(waits) == FAILURES + 1
    assert INTERVAL * (1 - JITTER) <= waits[0] <= INTERVAL * (1 + JITTER)  # before the first cycle
    for failures, wait in enumerate(waits[1:], start=1):
        base = min(INTERVAL, FAILURE_BACKOFF_BASE_SECONDS * 2 ** min(failures - 1, 64))
        assert math.isfinite(wait)
        assert base * (1 - JITTER) <= wait <= base * (1 + JITTER), failures
    assert max(waits) <= INTERVAL * (1 + JITTER)
    failed = [e for e in logs if e["event"] == "refresh_failed"]
    assert [e["failures"] for e in failed] == list(range(1, FAILURES + 1))
    assert refresher.last_error == "injected: the check failed"
    assert logs[-1]["event"] == "stopped"


class _NoJitter(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


def test_a_successful_cycle_ends_the_backoff(tmp_path: Path) -> None:
    outcomes = iter([False, False, True, False, False])  # whether each cycle's check succeeds
    stop = RecordingStop(5)
    job = failing_job(stop, tmp_path / "absent")

    def fetcher(_seconds: float) -> Any:
        if not next(outcomes):
            raise FetchError("injected: the check failed")
        return SimpleNamespace(check=lambda _calls: {}, stats=SimpleNamespace(api_calls=0))

    job.fetcher = fetcher
    with capture_logs():
        Refresher(job, rng=_NoJitter()).run_forever()

    assert stop.waits == [INTERVAL, 5.0, 10.0, INTERVAL, 5.0, 10.0]
