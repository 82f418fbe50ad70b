"""Throttling, which a fleet starting at once meets first: batches give way, single calls keep trying."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sidecar.retry_policy import MAX_ATTEMPTS
from tests.conftest import SecretValues, run_sidecar, sidecar_env
from tests.e2e.faultproxy import FaultProxy, json_error
from tests.e2e.helpers import api_calls, assert_ok, secrets_json

BATCH = "secretsmanager.BatchGetSecretValue"
SINGLE = "secretsmanager.GetSecretValue"


def _seed(aws: Any, secret_values: SecretValues, count: int) -> list[dict[str, str]]:
    entries = []
    for i in range(count):
        value = secret_values.add(f"throttle-value-{i:02d}")
        arn = aws.secretsmanager.create_secret(Name=f"throttle/s{i}", SecretString=value)["ARN"]
        entries.append({"name": f"s{i}", "valueFrom": arn})
    return entries


def test_a_throttled_batch_falls_back_to_single_calls_at_once(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    entries = _seed(aws, secret_values, 3)
    proxy.add(json_error(BATCH, "ThrottlingException", "Rate exceeded"))
    env = sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries),
                      SIDECAR_SM_BATCH="always")

    result = run_sidecar(env, guard=secret_values)

    assert_ok(result)
    assert {p.name: p.read_bytes() for p in outdir.iterdir() if not p.name.startswith("..")} == {
        f"s{i}": f"throttle-value-{i:02d}".encode() for i in range(3)
    }
    assert [(c["attempt"], c["outcome"]) for c in api_calls(result, "BatchGetSecretValue")] == [
        (1, "ThrottlingException")
    ]
    assert len(api_calls(result, "GetSecretValue")) == 3
    assert result.event("batch_throttled")["ids"] == 3
    assert [e for e in result.events if e["event"] == "retry"] == []
    assert [s.action for s in proxy.seen_for(BATCH)] == ["status 400"]


@pytest.mark.slow
def test_throttling_gets_more_attempts_than_other_transient_errors(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    entries = _seed(aws, secret_values, 1)
    proxy.add(json_error(SINGLE, "ThrottlingException", "Rate exceeded", count=8))
    env = sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries))

    result = run_sidecar(env, guard=secret_values)

    done = assert_ok(result)
    assert (outdir / "s0").read_bytes() == b"throttle-value-00"
    assert [c["outcome"] for c in api_calls(result)] == ["ThrottlingException"] * 8 + ["ok"]
    assert done["retries"] == 8


@pytest.mark.slow
def test_server_errors_stop_at_their_attempt_limit(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    entries = _seed(aws, secret_values, 1)
    proxy.add(json_error(SINGLE, "InternalServiceError", "oops", status=500))
    env = sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries))

    result = run_sidecar(env, guard=secret_values)

    assert result.code == 3
    assert len(api_calls(result)) == MAX_ATTEMPTS
    assert f"kept failing with InternalServiceError after {MAX_ATTEMPTS} attempt(s)" in result.final["reason"]
    assert not (outdir / "s0").exists()
