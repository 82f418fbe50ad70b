"""tenacity, driven by the retry policy: one callable attempted until it succeeds or the policy says stop.

tenacity runs the loop, draws the wait (``retry_policy.full_jitter``) and sleeps with the injected ``sleep``;
``retry_policy.decide`` is its stop condition. A stop hands back a ``Stopped`` value naming the decision,
not an exception, so the caller acts on the decision rather than re-deriving it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type
from tenacity.stop import stop_base

from sidecar import aws_errors
from sidecar.deadline import Deadline, Sleep
from sidecar.retry_policy import Decision, ErrorClass, FailOver, FallBack, GiveUp, Retry, decide, full_jitter

T = TypeVar("T")
OnRetry = Callable[[ErrorClass, int, float], None]  # (error, the attempt that failed, seconds until the next)


@dataclass(frozen=True)
class Stopped:
    """No result: the decision that ended the attempts, the last attempt's error, and how many were made."""

    decision: GiveUp | FallBack | FailOver
    error: BaseException
    error_class: ErrorClass
    attempts: int


class _PolicyStop(stop_base):
    """tenacity's stop condition for one call: stop unless the policy says retry; keeps what it decided."""

    def __init__(self, *, batch: bool, deadline: Deadline, can_fail_over: bool) -> None:
        self._batch = batch
        self._deadline = deadline
        self._can_fail_over = can_fail_over
        self.decision: Decision | None = None
        self.error_class: ErrorClass | None = None

    def __call__(self, retry_state: RetryCallState) -> bool:
        self.error_class = aws_errors.classify(_error(retry_state))
        self.decision = decide(
            self.error_class, attempt=retry_state.attempt_number, batch=self._batch,
            seconds_left=self._deadline.remaining(), backoff_seconds=retry_state.upcoming_sleep,
            can_fail_over=self._can_fail_over,
        )
        return not isinstance(self.decision, Retry)


def retry_call(
    what: Callable[[], T], *, batch: bool, deadline: Deadline, sleep: Sleep, rng: random.Random,
    on_retry: OnRetry, can_fail_over: bool = False,
) -> T | Stopped:
    """``what()``'s result, or ``Stopped``. Only AWS and botocore errors are considered for a retry: any
    other exception is a bug and propagates at once. A call that ``can_fail_over`` is given ``deadline``:
    its own region's share of the time."""
    stop = _PolicyStop(batch=batch, deadline=deadline, can_fail_over=can_fail_over)

    def stopped(state: RetryCallState) -> Stopped:
        assert isinstance(stop.decision, GiveUp | FallBack | FailOver) and stop.error_class is not None  # noqa: S101
        return Stopped(stop.decision, _error(state), stop.error_class, state.attempt_number)

    def before_sleep(state: RetryCallState) -> None:
        assert stop.error_class is not None  # noqa: S101 - the stop condition ran first
        on_retry(stop.error_class, state.attempt_number, state.upcoming_sleep)

    def attempt() -> T | Stopped:
        return what()

    retrying = Retrying(
        retry=retry_if_exception_type(aws_errors.AWS_ERRORS),
        wait=full_jitter(rng),
        stop=stop,
        sleep=sleep,
        before_sleep=before_sleep,
        retry_error_callback=stopped,
    )
    return retrying(attempt)


def _error(state: RetryCallState) -> BaseException:
    error = state.outcome.exception() if state.outcome is not None else None
    assert error is not None  # noqa: S101 - tenacity asks only after a failed attempt
    return error
