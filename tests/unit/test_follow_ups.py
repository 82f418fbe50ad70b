"""The planner's answer to a failed or partly answered batch: which single calls follow. Pure."""

from __future__ import annotations

import pytest

from sidecar.outcomes import Failure, Fetched
from sidecar.plan import Call, follow_ups
from sidecar.references import ObjectTarget, ParameterTarget, SecretTarget
from sidecar.retry_policy import FallBack
from sidecar.secret import SecretBytes

EU = "eu-west-1"
A, B, C = (SecretTarget(EU, f"arn:aws:secretsmanager:{EU}:123456789012:secret:{n}-AbCdEf") for n in "abc")
BATCH = Call("secretsmanager", EU, "BatchGetSecretValue", (A, B, C))


def single(target: SecretTarget) -> Call:
    return Call("secretsmanager", EU, "GetSecretValue", (target,))


@pytest.mark.parametrize("why", ["denied", "throttled"])
def test_a_batch_that_fell_back_becomes_one_single_call_per_secret(why: str) -> None:
    assert follow_ups(BATCH, FallBack(why)) == (single(A), single(B), single(C))  # type: ignore[arg-type]


def test_only_items_with_transient_errors_get_a_single_call() -> None:
    answer = {
        A: Fetched(SecretBytes(b"x")),
        B: Failure("ThrottlingException", "b throttled"),
        C: Failure("ResourceNotFoundException", "c not found", not_found=True),
    }
    assert follow_ups(BATCH, answer) == (single(B),)
    assert follow_ups(BATCH, {**answer, A: Failure("InternalServiceError", "a failed")}) == (single(A), single(B))


def test_a_fully_answered_batch_needs_nothing_more() -> None:
    assert follow_ups(BATCH, {t: Fetched(SecretBytes(b"x")) for t in (A, B, C)}) == ()
    assert follow_ups(BATCH, {A: Failure("AccessDeniedException", "no"), B: Failure("DecryptionFailure", "kms")}) == ()


@pytest.mark.parametrize("call", [
    single(A),
    Call("ssm", EU, "GetParameters", (ParameterTarget(EU, "/p"),)),
    Call("s3", EU, "GetObject", (ObjectTarget(EU, "bucket", "key"),)),
])
def test_other_calls_have_no_follow_ups(call: Call) -> None:
    failed = {t: Failure("InternalServiceError", "failed") for t in call.targets}
    assert follow_ups(call, failed) == ()
    assert follow_ups(call, FallBack("throttled")) == ()
