"""Region failover end to end: the real process against one moto server that serves every region, behind the
fault proxy, which tells the regions apart by each request's SigV4 credential scope. The secret is a real
replica (``AddReplicaRegions``): its ARN in the failover region is the primary's with the region swapped."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from sidecar.retry_policy import MAX_ATTEMPTS
from tests.conftest import ACCOUNT, REGION, SecretValues, run_sidecar, sidecar_env
from tests.e2e.faultproxy import FaultProxy, json_error, only_in, reset, server_error
from tests.e2e.helpers import api_calls, assert_failed, assert_ok, full_state, secrets_json
from tests.refresh.test_refresh import Sidecar

FAILOVER = "us-east-1"
GET_SECRET = "secretsmanager.GetSecretValue"
BATCH_GET = "secretsmanager.BatchGetSecretValue"
VALUE = "replicated-db-pa55word"


def _env(proxy: FaultProxy, outdir: Path, *entries: dict[str, Any], **settings: str) -> dict[str, str]:
    return sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries),
                       SIDECAR_FAILOVER_REGION=FAILOVER, **settings)


def _replicated(aws: Any, secret_values: SecretValues, value: str = VALUE) -> str:
    created = aws.secretsmanager.create_secret(Name="multi/db", SecretString=secret_values.add(value),
                                               AddReplicaRegions=[{"Region": FAILOVER}])
    return str(created["ARN"])


def _by_region(proxy: FaultProxy, operation: str) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for request in proxy.seen_for(operation):
        seen.setdefault(str(request.region), []).append(request.action)
    return seen


def _source(outdir: Path, name: str) -> dict[str, Any]:
    manifest = json.loads((outdir / "..manifest.json").read_bytes())
    (entry,) = [e for e in manifest["entries"] if e["name"] == name]
    return dict(entry["source"])


@pytest.mark.parametrize("down", ["503", "connection reset"])
def test_a_dead_primary_is_served_by_the_replica_and_the_log_and_manifest_say_so(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues, down: str
) -> None:
    arn = _replicated(aws, secret_values)
    dead = server_error(GET_SECRET, 503) if down == "503" else reset(GET_SECRET)
    proxy.add(only_in(REGION, dead))
    # The replica is asked for by its own ARN: a request to the failover region naming the primary's is refused.
    wrong_arn = only_in(FAILOVER, json_error(GET_SECRET, "ValidationException", "the primary's ARN"))
    wrong_arn.request_contains = json.dumps(arn).encode()
    proxy.add(wrong_arn)

    result = run_sidecar(_env(proxy, outdir, {"name": "db", "valueFrom": arn}, SIDECAR_METRICS="emf"))

    done = assert_ok(result)
    print(f"FIGURE failover down={down.replace(' ', '_')} duration_ms={done['duration_ms']} "
          f"api_calls={done['api_calls']}")
    assert (outdir / "db").read_bytes() == VALUE.encode()
    (metrics,) = [e for e in result.events if e["event"] == "metrics"]
    assert (metrics["Failovers"], metrics["ApiCalls"], metrics["Retries"]) == (
        done["failovers"], done["api_calls"], done["retries"])
    # Every request to the primary was refused: the bytes can only have come from the replica.
    refused = "status 503" if down == "503" else "reset"
    assert _by_region(proxy, GET_SECRET) == {REGION: [refused] * MAX_ATTEMPTS, FAILOVER: ["forwarded"]}
    failover = result.event("failover")
    assert failover["level"] == "warning"
    assert (failover["region"], failover["failover_region"]) == (REGION, FAILOVER)
    assert failover["error"] == ("ServiceUnavailableException" if down == "503" else "ConnectionClosedError")
    assert failover["targets"] == [f"secret {arn}"]
    (served,) = [c for c in api_calls(result, "GetSecretValue") if c["region"] == FAILOVER]
    assert (served["outcome"], served["failover_from"]) == ("ok", REGION)
    assert result.event("file")["region"] == FAILOVER
    assert done["failovers"] == 1
    source = _source(outdir, "db")
    assert (source["region"], source["failoverRegion"], source["servedBy"]) == (REGION, FAILOVER, FAILOVER)


def test_a_flapping_primary_serves_within_its_retries_without_failing_over(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    arn = _replicated(aws, secret_values)
    proxy.add(only_in(REGION, server_error(GET_SECRET, 503, count=MAX_ATTEMPTS - 2)))

    result = run_sidecar(_env(proxy, outdir, {"name": "db", "valueFrom": arn}))

    done = assert_ok(result)
    assert (outdir / "db").read_bytes() == VALUE.encode()
    assert _by_region(proxy, GET_SECRET) == {REGION: ["status 503"] * (MAX_ATTEMPTS - 2) + ["forwarded"]}
    assert [e for e in result.events if e["event"] == "failover"] == []
    assert done["failovers"] == 0
    assert _source(outdir, "db")["servedBy"] == REGION
    assert result.event("file")["region"] == REGION


def test_access_denied_in_the_primary_never_fails_over(
    aws: Any, previous: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    arn = _replicated(aws, secret_values)
    proxy.add(only_in(REGION, json_error(GET_SECRET, "AccessDeniedException", "not authorized")))
    before = full_state(previous)

    result = run_sidecar(_env(proxy, previous, {"name": "db", "valueFrom": arn}))

    assert_failed(result, 3, "'db'", "access denied (AccessDeniedException)", arn)
    assert _by_region(proxy, GET_SECRET) == {REGION: ["status 400"]}
    assert [e for e in result.events if e["event"] == "failover"] == []
    assert full_state(previous) == before


def test_a_secret_missing_from_the_primary_is_not_found_even_when_the_failover_region_has_one(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues, moto: str
) -> None:
    """A secret of the same name exists in the failover region only: a failover would hide the mistake."""
    import boto3

    elsewhere = boto3.client("secretsmanager", region_name=FAILOVER, endpoint_url=moto,
                             aws_access_key_id="testing", aws_secret_access_key="testing")
    elsewhere.create_secret(Name="only/there", SecretString=secret_values.add("only-in-the-other-region"))
    partial = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:only/there"

    result = run_sidecar(_env(proxy, outdir, {"name": "db", "valueFrom": partial}))

    assert_failed(result, 3, "'db'", "was not found (ResourceNotFoundException)")
    assert _by_region(proxy, GET_SECRET) == {REGION: ["forwarded"]}
    assert [e for e in result.events if e["event"] == "failover"] == []
    assert not (outdir / "db").exists()


def test_both_regions_dead_fails_with_exit_3_within_the_timeout(
    aws: Any, previous: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    arn = _replicated(aws, secret_values)
    proxy.add(server_error(GET_SECRET, 503))  # every region
    before = full_state(previous)
    timeout = 6.0

    started = time.monotonic()
    result = run_sidecar(_env(proxy, previous, {"name": "db", "valueFrom": arn}, SIDECAR_TIMEOUT=f"{timeout:g}"))
    elapsed = time.monotonic() - started

    print(f"FIGURE failover both_dead exit={result.code} elapsed_s={elapsed:.2f} timeout_s={timeout:g} "
          f"requests={len(proxy.seen_for(GET_SECRET))}")
    assert_failed(result, 3, "'db'", "ServiceUnavailableException", f"in the failover region {FAILOVER} "
                  f"({REGION} was unavailable)")
    assert elapsed < timeout + 1.5
    seen = _by_region(proxy, GET_SECRET)
    assert set(seen) == {REGION, FAILOVER} and len(seen[REGION]) >= 2 and len(seen[FAILOVER]) >= 1
    assert result.event("failover")["failover_region"] == FAILOVER
    assert full_state(previous) == before


@pytest.mark.slow
def test_refresh_tries_the_primary_first_each_cycle_and_follows_it_back(
    aws: Any, tmp_path: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    arn = _replicated(aws, secret_values)
    dead = [proxy.add(only_in(REGION, server_error(op, 503))) for op in (GET_SECRET, BATCH_GET)]
    env = _env(proxy, tmp_path, {"name": "db", "valueFrom": arn}, SIDECAR_REFRESH_INTERVAL="1", SIDECAR_TIMEOUT="8")
    sidecar = Sidecar(env)
    try:
        sidecar.wait_for("refresh_started", timeout=30)
        assert (tmp_path / "db").read_bytes() == VALUE.encode()
        assert _source(tmp_path, "db")["servedBy"] == FAILOVER

        # A cycle's version check (one BatchGetSecretValue) goes to the primary first, then fails over like any
        # call.
        sidecar.wait_for("refresh_check", timeout=30)
        order = [(seen.region, seen.action) for seen in proxy.seen_for(BATCH_GET)]
        first_failover = order.index((FAILOVER, "forwarded"))
        assert first_failover >= 2 and set(order[:first_failover]) == {(REGION, "status 503")}
        failovers = [e for e in sidecar.events if e["event"] == "failover"]
        assert {e["region"] for e in failovers} == {REGION} and len(failovers) >= 2

        # The primary comes back and the secret rotates: the next cycle is served by the primary again, the
        # value with the check's answer.
        for rule in dead:
            proxy.retire(rule)
        aws.secretsmanager.put_secret_value(SecretId=arn, SecretString=secret_values.add("rotated-db-pa55word"))
        sidecar.wait_for("refreshed", timeout=30)
        assert (tmp_path / "db").read_bytes() == b"rotated-db-pa55word"
        assert _source(tmp_path, "db")["servedBy"] == REGION
        assert _by_region(proxy, BATCH_GET)[REGION][-1] == "forwarded"
    finally:
        assert sidecar.stop() == 0


def test_check_aws_asks_the_failover_region_too_and_notes_a_missing_replica(
    aws: Any, outdir: Path, secret_values: SecretValues, moto: str
) -> None:
    arn = _replicated(aws, secret_values)
    lone = aws.secretsmanager.create_secret(Name="multi/lone", SecretString=secret_values.add("not-replicated-1"))
    env = sidecar_env(moto, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_FAILOVER_REGION=FAILOVER,
                      SIDECAR_SECRETS=secrets_json({"name": "db", "valueFrom": arn},
                                                   {"name": "lone", "valueFrom": lone["ARN"]}))

    result = run_sidecar(env, "check", "--aws", "--json")

    assert result.code == 0, result.stdout + result.stderr  # both answer in their own region
    entries = {e["name"]: e for e in json.loads(result.stdout)["entries"]}
    assert (entries["db"]["verdict"], entries["lone"]["verdict"]) == ("ok", "ok")
    assert f"failover region {FAILOVER}: ok" in entries["db"]["notes"]
    (note,) = [n for n in entries["lone"]["notes"] if n.startswith(f"failover region {FAILOVER}")]
    assert note.startswith(f"failover region {FAILOVER}: missing: ")
    described = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    asked = {(e["region"], e["operation"]) for e in described if e.get("event") == "api_call"}
    assert asked == {(REGION, "DescribeSecret"), (FAILOVER, "DescribeSecret")}
