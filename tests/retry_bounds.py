"""Bounds the process-level tests take from the retry policy instead of copying its numbers."""

from __future__ import annotations

import math
import random

from tenacity import RetryCallState, Retrying

from sidecar.retry_policy import MAX_ATTEMPTS, MIN_ATTEMPT_SECONDS, full_jitter

# A generous allowance for what a run spends outside backoff waits (interpreter start, imports, requests
# through the fault proxy) on a loaded 2-core machine.
RUN_OVERHEAD_SECONDS = 4.0


class _TopOfWindow(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def longest_waits_before(attempt: int) -> float:
    """The most a call can sleep in all before its ``attempt``-th attempt: every draw at the top of its window."""
    wait = full_jitter(_TopOfWindow())
    total = 0.0
    for number in range(1, attempt):
        state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
        state.attempt_number = number
        total += wait(state)
    return total


def deadline_for_all_attempts(attempts: int = MAX_ATTEMPTS) -> int:
    """A SIDECAR_TIMEOUT (whole seconds) long enough that the deadline never cuts a call short of ``attempts``."""
    return math.ceil(longest_waits_before(attempts) + MIN_ATTEMPT_SECONDS + RUN_OVERHEAD_SECONDS)
