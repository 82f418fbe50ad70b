"""Faults moto cannot produce, injected by a proxy in front of it: denied, undecryptable, throttled, down, stuck."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from sidecar.retry_policy import MAX_ATTEMPTS
from tests.conftest import REGION, SecretValues, run_sidecar, sidecar_env
from tests.e2e.faultproxy import FaultProxy, json_error, latency, rewrite, s3_error, stall
from tests.e2e.helpers import api_calls, assert_failed, assert_ok, full_state, secrets_json
from tests.retry_bounds import deadline_for_all_attempts

GET_SECRET = "secretsmanager.GetSecretValue"
BATCH_GET = "secretsmanager.BatchGetSecretValue"
GET_PARAMETERS = "AmazonSSM.GetParameters"


def _env(proxy: FaultProxy, outdir: Path, *entries: dict[str, Any], **settings: str) -> dict[str, str]:
    return sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries), **settings)


def _retries(result: Any) -> list[dict[str, Any]]:
    return [e for e in result.events if e.get("event") == "retry"]


def _secret(aws: Any, secret_values: SecretValues, name: str = "fault/db", value: str = "fault-secret-value") -> str:
    return aws.secretsmanager.create_secret(Name=name, SecretString=secret_values.add(value))["ARN"]


def test_access_denied_is_not_retried_and_names_the_permission_and_arn(
    aws: Any, previous: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    arn = _secret(aws, secret_values)
    proxy.add(json_error(GET_SECRET, "AccessDeniedException",
                         f"User: arn:aws:sts::123456789012:assumed-role/app-task/abc is not authorized to perform: "
                         f"secretsmanager:GetSecretValue on resource: {arn} because no identity-based policy "
                         "allows it"))
    before = full_state(previous)

    result = run_sidecar(_env(proxy, previous, {"name": "db", "valueFrom": arn}), guard=secret_values)

    failed = assert_failed(result, 3, "'db'", "access denied (AccessDeniedException)",
                           "task role lacks secretsmanager:GetSecretValue", arn)
    assert failed["error"] == "fetch_error"
    calls = api_calls(result, "GetSecretValue")
    assert [(c["attempt"], c["outcome"]) for c in calls] == [(1, "AccessDeniedException")]
    assert _retries(result) == []
    assert len(proxy.seen_for(GET_SECRET)) == 1
    assert full_state(previous) == before


def test_decryption_failure_names_kms_decrypt(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    arn = _secret(aws, secret_values)
    proxy.add(json_error(GET_SECRET, "DecryptionFailure",
                         "Secrets Manager can't decrypt the protected secret text using the provided KMS key."))

    result = run_sidecar(_env(proxy, outdir, {"name": "db", "valueFrom": arn}), guard=secret_values)

    assert_failed(result, 3, "'db'", "KMS could not decrypt", "(DecryptionFailure)", "kms:Decrypt", arn)
    assert len(api_calls(result)) == 1
    assert _retries(result) == []
    assert len(proxy.seen_for(GET_SECRET)) == 1
    assert sorted(os.listdir(outdir)) == []


@pytest.mark.parametrize("service", ["ssm", "s3"])
def test_access_denied_on_parameters_and_objects(
    service: str, aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    if service == "ssm":
        aws.ssm.put_parameter(Name="/fault/p", Value=secret_values.add("fault-param-value"), Type="SecureString")
        proxy.add(json_error(GET_PARAMETERS, "AccessDeniedException", "not authorized to perform: ssm:GetParameters"))
        entry, permission, what = {"name": "p", "valueFrom": "/fault/p"}, "ssm:GetParameters", "/fault/p"
    else:
        aws.s3.create_bucket(Bucket="fault-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
        aws.s3.put_object(Bucket="fault-bucket", Key="cert.pem", Body=secret_values.add(b"fault-object-body"))
        proxy.add(s3_error("GET", "/fault-bucket/cert.pem", "AccessDenied", "Access Denied"))
        entry, permission, what = ({"name": "cert", "valueFrom": "s3://fault-bucket/cert.pem"}, "s3:GetObject",
                                   "s3://fault-bucket/cert.pem")

    result = run_sidecar(_env(proxy, outdir, entry), guard=secret_values)

    assert_failed(result, 3, "access denied", f"task role lacks {permission}", what)
    assert [c["attempt"] for c in api_calls(result)] == [1]
    assert os.listdir(outdir) == []


def test_batch_denied_falls_back_to_single_calls_with_one_warning(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    arns = [_secret(aws, secret_values, f"fault/s{i:02d}", f"fallback-value-{i:02d}") for i in range(21)]
    proxy.add(json_error(BATCH_GET, "AccessDeniedException", "not authorized to perform: "
                                                             "secretsmanager:BatchGetSecretValue"))
    entries = [{"name": f"s{i:02d}", "valueFrom": arn} for i, arn in enumerate(arns)]

    result = run_sidecar(_env(proxy, outdir, *entries, SIDECAR_SM_BATCH="always"), guard=secret_values)

    assert_ok(result)
    warnings = [e for e in result.events if e.get("event") == "batch_denied"]
    assert len(warnings) == 1
    assert warnings[0]["level"] == "warning" and warnings[0]["region"] == REGION
    assert "secretsmanager:BatchGetSecretValue" in warnings[0]["reason"]
    batches = api_calls(result, "BatchGetSecretValue")
    assert sorted((c["ids"], c["outcome"]) for c in batches) == [(1, "AccessDeniedException"),
                                                                 (20, "AccessDeniedException")]
    singles = api_calls(result, "GetSecretValue")
    assert len(singles) == 21 and {c["outcome"] for c in singles} == {"ok"}
    for index in range(21):
        assert (outdir / f"s{index:02d}").read_bytes() == f"fallback-value-{index:02d}".encode()


def test_throttling_is_retried_then_succeeds(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/fault/p", Value=secret_values.add("throttled-value"), Type="SecureString")
    proxy.add(json_error(GET_PARAMETERS, "ThrottlingException", "Rate exceeded", count=2))

    result = run_sidecar(_env(proxy, outdir, {"name": "p", "valueFrom": "/fault/p"}), guard=secret_values)

    done = assert_ok(result)
    assert (outdir / "p").read_bytes() == b"throttled-value"
    calls = api_calls(result, "GetParameters")
    assert [(c["attempt"], c["outcome"]) for c in calls] == [
        (1, "ThrottlingException"), (2, "ThrottlingException"), (3, "ok")]
    retries = _retries(result)
    assert [(r["attempt"], r["error"], r["operation"], r["service"]) for r in retries] == [
        (1, "ThrottlingException", "GetParameters", "ssm"), (2, "ThrottlingException", "GetParameters", "ssm")]
    assert all(r["level"] == "warning" and r["sleep_s"] >= 0 for r in retries)
    assert (done["retries"], done["api_calls"]) == (2, 3)
    assert [s.action for s in proxy.seen_for(GET_PARAMETERS)] == ["status 400", "status 400", "forwarded"]


def test_latency_is_tolerated_and_measured(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/fault/slow", Value=secret_values.add("slow-but-fine"), Type="String")
    proxy.add(latency(GET_PARAMETERS, 0.4))

    result = run_sidecar(_env(proxy, outdir, {"name": "slow", "valueFrom": "/fault/slow"}), guard=secret_values)

    assert_ok(result)
    (call,) = api_calls(result)
    assert call["duration_ms"] >= 400
    assert (outdir / "slow").read_bytes() == b"slow-but-fine"


@pytest.mark.slow
def test_persistent_503_fails_with_the_code_before_the_deadline(
    aws: Any, previous: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    arn = _secret(aws, secret_values)
    proxy.add(json_error(GET_SECRET, "ServiceUnavailableException", "The service is unavailable", status=503))
    before = full_state(previous)
    timeout = deadline_for_all_attempts()

    started = time.monotonic()
    result = run_sidecar(_env(proxy, previous, {"name": "db", "valueFrom": arn}, SIDECAR_TIMEOUT=str(timeout)),
                         guard=secret_values)
    elapsed = time.monotonic() - started

    failed = assert_failed(result, 3, "'db'", "GetSecretValue kept failing with ServiceUnavailableException", arn)
    assert elapsed < timeout
    calls = api_calls(result)
    attempts = len(calls)
    assert attempts == MAX_ATTEMPTS
    assert f"after {attempts} attempt(s)" in failed["reason"]
    assert [c["attempt"] for c in calls] == list(range(1, attempts + 1))
    assert len(_retries(result)) == attempts - 1
    assert len(proxy.seen_for(GET_SECRET)) == attempts
    assert full_state(previous) == before


@pytest.mark.slow
def test_a_stall_past_the_deadline_fails_naming_it(
    aws: Any, previous: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    arn = _secret(aws, secret_values)
    proxy.add(stall(GET_SECRET))
    before = full_state(previous)

    started = time.monotonic()
    result = run_sidecar(_env(proxy, previous, {"name": "db", "valueFrom": arn}, SIDECAR_TIMEOUT="2"),
                         guard=secret_values, timeout=30)
    elapsed = time.monotonic() - started

    assert_failed(result, 3, "the SIDECAR_TIMEOUT deadline passed", "1 API call(s) still unanswered")
    assert elapsed < 2 + 3
    assert proxy.seen_for(GET_SECRET) and {s.action for s in proxy.seen_for(GET_SECRET)} == {"stalled"}
    assert full_state(previous) == before


def _throttle_one_batch_item(secret_id_fragment: str) -> Any:
    """A BatchGetSecretValue answer in which AWS throttled one item: it moves from SecretValues to Errors."""

    def transform(request: bytes, response: bytes) -> bytes:
        document = json.loads(response)
        requested = [i for i in json.loads(request)["SecretIdList"] if secret_id_fragment in i]
        document["SecretValues"] = [v for v in document["SecretValues"] if secret_id_fragment not in v["ARN"]]
        document["Errors"] = [
            {"SecretId": requested[0], "ErrorCode": "ThrottlingException", "Message": "Rate exceeded"}]
        return json.dumps(document).encode()

    return transform


def test_a_throttled_batch_item_is_fetched_again_on_its_own(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    arns = [_secret(aws, secret_values, f"fault/item{i}", f"batch-item-value-{i}") for i in range(3)]
    proxy.add(rewrite(BATCH_GET, _throttle_one_batch_item("fault/item1")))
    entries = [{"name": f"item{i}", "valueFrom": arn} for i, arn in enumerate(arns)]

    result = run_sidecar(_env(proxy, outdir, *entries, SIDECAR_SM_BATCH="always"), guard=secret_values)

    assert_ok(result)
    assert [(c["operation"], c["ids"]) for c in api_calls(result)] == [
        ("BatchGetSecretValue", 3), ("GetSecretValue", 1)]
    for index in range(3):
        assert (outdir / f"item{index}").read_bytes() == f"batch-item-value-{index}".encode()
    (single,) = proxy.seen_for(GET_SECRET)
    assert single.action == "forwarded"


def test_optional_only_forgives_not_found_not_access_denied(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    arn = _secret(aws, secret_values)
    proxy.add(json_error(GET_SECRET, "AccessDeniedException", "not authorized"))

    result = run_sidecar(_env(proxy, outdir, {"name": "db", "valueFrom": arn, "optional": True}),
                         guard=secret_values)

    assert_failed(result, 3, "'db'", "access denied")
    assert [e for e in result.events if e["event"] == "optional_skipped"] == []
    assert os.listdir(outdir) == []
