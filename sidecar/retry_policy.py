"""The retry policy as data: which errors are retried, how often, how long to wait, and when a batch gives way.

Pure: no botocore, no clock, no sleeping. ``decide`` answers for one failed attempt; the executor
(``sidecar.fetch``) runs tenacity with the wait from ``full_jitter`` and stops where ``decide`` says so.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from tenacity import wait_exponential

if TYPE_CHECKING:
    from tenacity import RetryCallState

MAX_ATTEMPTS: Final = 6  # for server errors, resets and timeouts
MAX_THROTTLED_ATTEMPTS: Final = 40  # throttling clears as a fleet's burst passes: the deadline ends it first
BACKOFF_MULTIPLIER_SECONDS: Final = 0.2
BACKOFF_MAX_SECONDS: Final = 4.0
MIN_ATTEMPT_SECONDS: Final = 0.5  # do not start an attempt that could not finish before the deadline
# A call that can fail over spends at most this share of the time left when it starts in its own region, so
# that the failover region has the rest.
PRIMARY_SHARE: Final = 0.5

THROTTLING_CODES: Final = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "RequestLimitExceeded", "SlowDown", "EC2ThrottledException",
})
TRANSIENT_CODES: Final = THROTTLING_CODES | frozenset({
    "RequestTimeout", "RequestTimeoutException", "InternalServiceError", "InternalServiceErrorException",
    "InternalFailure", "InternalError", "ServiceUnavailable", "ServiceUnavailableException",
    "PriorRequestNotComplete",
})
NOT_FOUND_CODES: Final = frozenset({
    "ResourceNotFoundException", "ParameterNotFound", "ParameterVersionNotFound", "NoSuchKey", "NoSuchVersion",
    "NoSuchBucket",
})
ACCESS_DENIED_CODES: Final = frozenset({"AccessDeniedException", "AccessDenied", "Forbidden", "403"})
SERVER_ERROR_STATUS: Final = 500


@dataclass(frozen=True)
class ErrorClass:
    """What the policy needs to know about a failed attempt: never the message, which may quote input."""

    code: str  # the AWS error code, or the exception's class name for network and credential errors
    transient: bool  # a later attempt may succeed
    throttled: bool = False
    denied: bool = False
    credentials: bool = False  # the task's credentials could not be had: no region would answer otherwise

    @property
    def regional(self) -> bool:
        """The region did not answer, or answered that it could not serve now (5xx, throttling): another
        region may. Never a denial, a missing secret, a decryption failure or any other client error: the
        other region would hide a mistake that must be seen."""
        return self.transient and not self.credentials


def classify_code(code: str, http_status: int = 0) -> ErrorClass:
    """An error answered by AWS: the listed transient codes, and any other 5xx that is not a permanent code."""
    permanent = code in NOT_FOUND_CODES or code in ACCESS_DENIED_CODES
    transient = code in TRANSIENT_CODES or (http_status >= SERVER_ERROR_STATUS and not permanent)
    return ErrorClass(code, transient, throttled=code in THROTTLING_CODES, denied=code in ACCESS_DENIED_CODES)


@dataclass(frozen=True)
class Retry:
    after_seconds: float


@dataclass(frozen=True)
class GiveUp:
    why: Literal["permanent", "attempts", "deadline"]


@dataclass(frozen=True)
class FallBack:
    """Replace the batch by one GetSecretValue per secret (``sidecar.plan.follow_ups``)."""

    why: Literal["denied", "throttled"]


@dataclass(frozen=True)
class FailOver:
    """Make the same call in the failover region (``sidecar.plan.follow_ups``): the call's own region kept
    failing with a regional error until its attempts or its share of the deadline ran out."""

    why: Literal["attempts", "deadline"]


Decision = Retry | GiveUp | FallBack | FailOver


def attempt_limit(error: ErrorClass) -> int:
    return MAX_THROTTLED_ATTEMPTS if error.throttled else MAX_ATTEMPTS


def primary_seconds(seconds_left: float) -> float:
    """How much of ``seconds_left`` a call that can fail over may spend in its own region."""
    return seconds_left * PRIMARY_SHARE


def decide(
    error: ErrorClass, *, attempt: int, batch: bool, seconds_left: float, backoff_seconds: float,
    can_fail_over: bool = False,
) -> Decision:
    """After ``attempt`` (1-based) failed with ``error``: retry after ``backoff_seconds``, give up, fail over
    (when the call has a failover region: ``seconds_left`` is then what is left of its own region's share),
    or (for a ``BatchGetSecretValue``) fall back to single calls.

    A denied batch falls back because ``secretsmanager:GetSecretValue`` may be granted without the batch
    permission. A throttled batch is not retried as a batch: its ~100/s quota is the scarce one at a fleet's
    start-up, while GetSecretValue's is 100 times larger. Throttling elsewhere gets more attempts than other
    transient errors: at start-up it is the quota being shared out, not a fault, and it passes. A regional
    error fails over only once the call's own region has had its attempts or its share of the time: a flapping
    region that answers within its retries serves the value itself."""
    if batch and error.denied:
        return FallBack("denied")
    if batch and error.throttled:
        return FallBack("throttled")
    if not error.transient:
        return GiveUp("permanent")
    fail_over = can_fail_over and error.regional
    if attempt >= attempt_limit(error):
        return FailOver("attempts") if fail_over else GiveUp("attempts")
    if seconds_left - backoff_seconds < MIN_ATTEMPT_SECONDS:
        return FailOver("deadline") if fail_over else GiveUp("deadline")
    return Retry(backoff_seconds)


class full_jitter(wait_exponential):  # named like tenacity's own wait strategies
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2 ** (n - 1))] after attempt n, the
    window from tenacity's ``wait_exponential``. Like tenacity's ``wait_random_exponential``, except that it
    draws from ``rng`` rather than the ``random`` module, so a test can seed it."""

    def __init__(self, rng: random.Random | None = None) -> None:
        super().__init__(multiplier=BACKOFF_MULTIPLIER_SECONDS, max=BACKOFF_MAX_SECONDS)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def __call__(self, retry_state: RetryCallState) -> float:
        return self._rng.uniform(0, super().__call__(retry_state))
