"""The wait between refresh cycles: a pure function of the interval and the failures so far."""

from __future__ import annotations

import random

import pytest

from sidecar.refresh import FAILURE_BACKOFF_BASE_SECONDS, JITTER, MAX_BACKOFF_DOUBLINGS, next_delay
from sidecar.settings.model import MAX_SECONDS


class _NoJitter(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


@pytest.mark.parametrize(("failures", "expected"), [(0, 300.0), (1, 5.0), (2, 10.0), (6, 160.0), (7, 300.0)])
def test_backoff_doubles_from_5_seconds_up_to_the_interval(failures: int, expected: float) -> None:
    assert next_delay(300.0, failures, _NoJitter()) == pytest.approx(expected)


@pytest.mark.parametrize("failures", [1_000, 1_100, 10**6])
def test_backoff_after_a_very_long_run_of_failures_is_the_interval_not_an_overflow(failures: int) -> None:
    for interval in (1.0, 300.0, float(MAX_SECONDS)):
        assert next_delay(interval, failures, _NoJitter()) == pytest.approx(interval)
        delay = next_delay(interval, failures, random.Random(failures))  # noqa: S311 - jitter, not a secret
        assert interval * (1 - JITTER) <= delay <= interval * (1 + JITTER)


def test_the_capped_backoff_still_reaches_the_longest_interval() -> None:
    assert FAILURE_BACKOFF_BASE_SECONDS * 2**MAX_BACKOFF_DOUBLINGS >= MAX_SECONDS
