"""The retry policy as a pure function: which errors are retried, how often, how long to wait, when a batch
gives way, and when the deadline ends it. No process, no network, no real time."""

from __future__ import annotations

import random

import pytest
from botocore import exceptions as bce
from hypothesis import given
from hypothesis import strategies as st
from tenacity import RetryCallState, Retrying

from sidecar import aws_errors
from sidecar.retry_policy import (
    BACKOFF_MAX_SECONDS,
    BACKOFF_MULTIPLIER_SECONDS,
    MAX_ATTEMPTS,
    MAX_THROTTLED_ATTEMPTS,
    MIN_ATTEMPT_SECONDS,
    ErrorClass,
    FallBack,
    GiveUp,
    Retry,
    classify_code,
    decide,
    full_jitter,
)

THROTTLED = classify_code("ThrottlingException", 400)
SERVER_ERROR = classify_code("InternalServiceError", 500)
DENIED = classify_code("AccessDeniedException", 400)
NOT_FOUND = classify_code("ResourceNotFoundException", 400)
PLENTY = 1e9  # seconds left: the deadline plays no part


def client_error(code: str, status: int) -> bce.ClientError:
    return bce.ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                           "GetSecretValue")


# --- which errors are retried -------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "status", "transient", "throttled", "denied"), [
    ("ThrottlingException", 400, True, True, False),
    ("TooManyRequestsException", 400, True, True, False),
    ("SlowDown", 503, True, True, False),
    ("InternalServiceError", 500, True, False, False),
    ("ServiceUnavailableException", 503, True, False, False),
    ("RequestTimeout", 400, True, False, False),
    ("SomeNewServerFault", 502, True, False, False),  # any other 5xx
    ("AccessDeniedException", 400, False, False, True),
    ("AccessDenied", 500, False, False, True),  # a permanent code stays permanent whatever the status
    ("ResourceNotFoundException", 400, False, False, False),
    ("NoSuchKey", 500, False, False, False),
    ("ValidationException", 400, False, False, False),
    ("DecryptionFailure", 400, False, False, False),
])
def test_codes_are_classified_by_code_then_status(
    code: str, status: int, transient: bool, throttled: bool, denied: bool
) -> None:
    assert classify_code(code, status) == ErrorClass(code, transient, throttled=throttled, denied=denied)


@pytest.mark.parametrize(("exc", "expected"), [
    (client_error("ThrottlingException", 400), ErrorClass("ThrottlingException", True, throttled=True)),
    (client_error("AccessDeniedException", 400), ErrorClass("AccessDeniedException", False, denied=True)),
    (bce.ConnectionClosedError(endpoint_url="https://x"), ErrorClass("ConnectionClosedError", True)),
    (bce.EndpointConnectionError(endpoint_url="https://x"), ErrorClass("EndpointConnectionError", True)),
    (bce.ReadTimeoutError(endpoint_url="https://x"), ErrorClass("ReadTimeoutError", True)),
    (bce.CredentialRetrievalError(provider="p", error_msg="e"),
     ErrorClass("CredentialRetrievalError", True, credentials=True)),
    (bce.NoCredentialsError(), ErrorClass("NoCredentialsError", False)),
    (bce.ParamValidationError(report="r"), ErrorClass("ParamValidationError", False)),
])
def test_botocore_exceptions_are_classified(exc: BaseException, expected: ErrorClass) -> None:
    assert aws_errors.classify(exc) == expected


@pytest.mark.parametrize("error", [DENIED, NOT_FOUND, classify_code("ValidationException", 400)])
def test_a_permanent_error_is_never_retried(error: ErrorClass) -> None:
    assert decide(error, attempt=1, batch=False, seconds_left=PLENTY, backoff_seconds=0.1) == GiveUp("permanent")


# --- attempt limits -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("error", "limit"), [(SERVER_ERROR, MAX_ATTEMPTS), (THROTTLED, MAX_THROTTLED_ATTEMPTS)])
def test_transient_errors_are_retried_up_to_their_attempt_limit(error: ErrorClass, limit: int) -> None:
    decisions = [decide(error, attempt=n, batch=False, seconds_left=PLENTY, backoff_seconds=0.3)
                 for n in range(1, limit + 1)]
    assert decisions == [Retry(0.3)] * (limit - 1) + [GiveUp("attempts")]


# --- batches ----------------------------------------------------------------------------------------------------


def test_a_throttled_batch_falls_back_at_once_instead_of_retrying() -> None:
    assert decide(THROTTLED, attempt=1, batch=True, seconds_left=PLENTY, backoff_seconds=0.1) == FallBack("throttled")


def test_a_denied_batch_falls_back_and_a_denied_single_call_gives_up() -> None:
    assert decide(DENIED, attempt=1, batch=True, seconds_left=PLENTY, backoff_seconds=0.1) == FallBack("denied")
    assert decide(DENIED, attempt=1, batch=False, seconds_left=PLENTY, backoff_seconds=0.1) == GiveUp("permanent")


def test_a_batch_is_retried_as_a_batch_for_server_errors() -> None:
    assert decide(SERVER_ERROR, attempt=1, batch=True, seconds_left=PLENTY, backoff_seconds=0.1) == Retry(0.1)
    assert decide(NOT_FOUND, attempt=1, batch=True, seconds_left=PLENTY, backoff_seconds=0.1) == GiveUp("permanent")


# --- the deadline -----------------------------------------------------------------------------------------------


def test_no_retry_is_started_with_less_than_the_minimum_attempt_time_left_after_its_wait() -> None:
    at_the_edge = MIN_ATTEMPT_SECONDS + 2.0
    assert decide(THROTTLED, attempt=3, batch=False, seconds_left=at_the_edge, backoff_seconds=2.0) == Retry(2.0)
    assert decide(THROTTLED, attempt=3, batch=False, seconds_left=at_the_edge - 0.001,
                  backoff_seconds=2.0) == GiveUp("deadline")
    assert decide(SERVER_ERROR, attempt=1, batch=False, seconds_left=0.0, backoff_seconds=0.0) == GiveUp("deadline")


@given(st.floats(0, 100), st.floats(0, BACKOFF_MAX_SECONDS), st.integers(1, 60), st.booleans())
def test_a_retry_always_leaves_the_minimum_attempt_time(left: float, backoff: float, attempt: int,
                                                         throttled: bool) -> None:
    error = THROTTLED if throttled else SERVER_ERROR
    decision = decide(error, attempt=attempt, batch=False, seconds_left=left, backoff_seconds=backoff)
    if isinstance(decision, Retry):
        assert left - decision.after_seconds >= MIN_ATTEMPT_SECONDS
        assert attempt < (MAX_THROTTLED_ATTEMPTS if throttled else MAX_ATTEMPTS)
    else:
        assert decision in (GiveUp("deadline"), GiveUp("attempts"))


# --- full jitter -----------------------------------------------------------------------------------------------


def _after_attempt(number: int) -> RetryCallState:
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = number
    return state


def _window(attempt: int) -> float:
    return min(BACKOFF_MAX_SECONDS, BACKOFF_MULTIPLIER_SECONDS * 2 ** (attempt - 1))


class _Highest(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


class _Lowest(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


def test_full_jitter_draws_between_zero_and_a_doubling_capped_window() -> None:
    assert [full_jitter(_Highest())(_after_attempt(n)) for n in range(1, 8)] == [0.2, 0.4, 0.8, 1.6, 3.2, 4.0, 4.0]
    assert [full_jitter(_Lowest())(_after_attempt(n)) for n in range(1, 8)] == [0.0] * 7
    assert full_jitter(_Highest())(_after_attempt(10_000)) == BACKOFF_MAX_SECONDS  # no overflow, still capped


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 6, 39])
def test_full_jitter_spreads_over_the_whole_window(attempt: int) -> None:
    wait = full_jitter(random.Random(attempt))  # noqa: S311
    draws = [wait(_after_attempt(attempt)) for _ in range(500)]
    window = _window(attempt)
    assert all(0 <= d <= window for d in draws)
    assert min(draws) < 0.05 * window
    assert max(draws) > 0.95 * window


def test_full_jitter_with_the_same_seed_draws_the_same_waits() -> None:
    def draws(seed: int) -> list[float]:
        wait = full_jitter(random.Random(seed))  # noqa: S311
        return [wait(_after_attempt(n)) for n in range(1, 10)]

    assert draws(7) == draws(7) != draws(8)
