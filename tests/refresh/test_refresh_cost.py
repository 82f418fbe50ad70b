"""What a refresh cycle costs, end to end: the real process against the moto server over HTTP, each API call
counted from its ``api_call`` log event. ``AWSCURRENT`` secrets are checked twenty to a BatchGetSecretValue,
whose answer carries the new value, so a rotation is committed without a second call."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SecretValues, sidecar_env
from tests.e2e.faultproxy import FaultProxy, json_error
from tests.refresh.test_refresh import Sidecar, sidecars, start

__all__ = ["sidecars"]  # the fixture, imported for the tests below

pytestmark = pytest.mark.slow


def seed_secrets(aws: Any, secret_values: SecretValues, count: int, prefix: str = "cost") -> list[str]:
    return [
        aws.secretsmanager.create_secret(
            Name=f"{prefix}/s{i:03d}", SecretString=secret_values.add(f"v1-{prefix}-{i:03d}")
        )["ARN"]
        for i in range(count)
    ]


def env_for(endpoint: str, out: Path, arns: list[str], **extra: str) -> dict[str, str]:
    entries = [{"name": f"s{i:03d}", "valueFrom": arn} for i, arn in enumerate(arns)]
    return sidecar_env(endpoint, SIDECAR_OUTPUT_DIR=str(out), SIDECAR_SECRETS=json.dumps(entries),
                       SIDECAR_REFRESH_INTERVAL="1", **extra)


def cycles(sidecar: Sidecar) -> list[list[dict[str, Any]]]:
    """The ``api_call`` events of each check cycle: those after ``refresh_started`` up to each ``refresh_check``
    (with a commit's calls, if any, counted in the cycle that follows its check)."""
    started = next(i for i, e in enumerate(sidecar.events) if e["event"] == "refresh_started")
    found: list[list[dict[str, Any]]] = [[]]
    for event in sidecar.events[started:]:
        if event["event"] == "api_call":
            found[-1].append(event)
        elif event["event"] == "refresh_check":
            found.append([])
    return found[:-1]


@pytest.mark.parametrize("count", [5, 45])
def test_a_cycle_makes_one_call_per_twenty_secrets(
    count: int, moto: str, aws: Any, tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    sidecar = start(sidecars, env_for(moto, tmp_path, seed_secrets(aws, secret_values, count)))
    started = sidecar.wait_for("refresh_started")
    expected = math.ceil(count / 20)
    assert started["check_calls_per_cycle"] == expected
    sidecar.wait_for("refresh_check", count=3)
    sidecar.stop()
    checked = cycles(sidecar)[:3]
    assert [len(calls) for calls in checked] == [expected] * 3
    assert {(e["operation"], e["outcome"]) for calls in checked for e in calls} == {("BatchGetSecretValue", "ok")}
    assert sorted(e["ids"] for e in checked[0]) == sorted([20] * (count // 20) + ([count % 20] if count % 20 else []))
    assert [e["api_calls"] for e in sidecar.events if e["event"] == "refresh_check"][:3] == [expected] * 3


def test_a_rotation_is_committed_from_the_check_itself(
    moto: str, aws: Any, tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    arns = seed_secrets(aws, secret_values, 3, prefix="rot")
    sidecar = start(sidecars, env_for(moto, tmp_path, arns))
    sidecar.wait_for("refresh_started")
    assert (tmp_path / "s001").read_bytes() == b"v1-rot-001"
    sidecar.wait_for("refresh_check")

    aws.secretsmanager.put_secret_value(SecretId=arns[1], SecretString=secret_values.add("v2-rot-001"))
    refreshed = sidecar.wait_for("refreshed", timeout=10)
    assert refreshed["changed"] == [f"secret {arns[1]}"]
    assert refreshed["api_calls"] == 1  # the check's one BatchGetSecretValue: no second call for the value
    assert [(tmp_path / f"s{i:03d}").read_bytes() for i in range(3)] == [b"v1-rot-000", b"v2-rot-001", b"v1-rot-002"]
    manifest = json.loads((tmp_path / "..manifest.json").read_bytes())
    described = {e["name"]: e["source"]["versionId"] for e in manifest["entries"]}
    current = aws.secretsmanager.describe_secret(SecretId=arns[1])["VersionIdsToStages"]
    assert described["s001"] == next(v for v, stages in current.items() if "AWSCURRENT" in stages)
    assert sidecar.stop() == 0
    after_start = sidecar.events[next(i for i, e in enumerate(sidecar.events) if e["event"] == "refresh_started"):]
    assert {e["operation"] for e in after_start if e["event"] == "api_call"} == {"BatchGetSecretValue"}


def test_a_pinned_stage_is_checked_on_its_own_and_its_change_detected(
    moto: str, aws: Any, tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    arns = seed_secrets(aws, secret_values, 2, prefix="pin")
    aws.secretsmanager.put_secret_value(SecretId=arns[0], SecretString=secret_values.add("staged-one"),
                                        VersionStages=["STAGING"])
    entries = [{"name": "current", "valueFrom": arns[1]}, {"name": "staged", "valueFrom": f"{arns[0]}::STAGING:"}]
    env = sidecar_env(moto, SIDECAR_OUTPUT_DIR=str(tmp_path), SIDECAR_SECRETS=json.dumps(entries),
                      SIDECAR_REFRESH_INTERVAL="1")
    sidecar = start(sidecars, env)
    started = sidecar.wait_for("refresh_started")
    assert started["check_calls_per_cycle"] == 2  # one batch for AWSCURRENT, one DescribeSecret for the stage
    assert (tmp_path / "staged").read_bytes() == b"staged-one"
    sidecar.wait_for("refresh_check")

    aws.secretsmanager.put_secret_value(SecretId=arns[0], SecretString=secret_values.add("staged-two"),
                                        VersionStages=["STAGING"])
    refreshed = sidecar.wait_for("refreshed", timeout=10)
    assert refreshed["changed"] == [f"secret {arns[0]} (stage STAGING)"]
    assert (tmp_path / "staged").read_bytes() == b"staged-two"
    assert (tmp_path / "current").read_bytes() == b"v1-pin-001"
    sidecar.stop()
    after_start = sidecar.events[next(i for i, e in enumerate(sidecar.events) if e["event"] == "refresh_started"):]
    operations = sorted({e["operation"] for e in after_start if e["event"] == "api_call"})
    assert operations == ["BatchGetSecretValue", "DescribeSecret", "GetSecretValue"]  # the stage's value is fetched


def test_a_denied_batch_falls_back_to_one_call_per_secret_with_one_warning(
    moto: str, aws: Any, tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    arns = seed_secrets(aws, secret_values, 3, prefix="deny")
    with FaultProxy(moto) as proxy:
        proxy.add(json_error("secretsmanager.BatchGetSecretValue", "AccessDeniedException",
                             "not authorized to perform: secretsmanager:BatchGetSecretValue"))
        sidecar = start(sidecars, env_for(proxy.url, tmp_path, arns))
        sidecar.wait_for("refresh_check", count=2)
        aws.secretsmanager.put_secret_value(SecretId=arns[2], SecretString=secret_values.add("v2-deny-002"))
        sidecar.wait_for("refreshed", timeout=10)
        sidecar.wait_for("refresh_check", count=checks_so_far(sidecar) + 1)
        sidecar.stop()
    assert (tmp_path / "s002").read_bytes() == b"v2-deny-002"
    warnings = [e for e in sidecar.events if e["event"] == "batch_denied"]
    assert len(warnings) == 1 and warnings[0]["region"] == "eu-west-1"
    first, *later = cycles(sidecar)
    assert sorted((e["operation"], e["outcome"]) for e in first) == [
        ("BatchGetSecretValue", "AccessDeniedException"), *[("GetSecretValue", "ok")] * 3]
    assert later and all(sorted(e["operation"] for e in calls) == ["GetSecretValue"] * 3 for calls in later)
    assert len(proxy.seen_for("secretsmanager.BatchGetSecretValue")) == 1  # asked once, never again


def checks_so_far(sidecar: Sidecar) -> int:
    return sum(1 for e in sidecar.events if e["event"] == "refresh_check")


def test_sm_batch_never_checks_with_describe_secret_which_reads_no_value(
    moto: str, aws: Any, tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    arns = seed_secrets(aws, secret_values, 3, prefix="never")
    sidecar = start(sidecars, env_for(moto, tmp_path, arns, SIDECAR_SM_BATCH="never"))
    assert sidecar.wait_for("refresh_started")["check_calls_per_cycle"] == 3
    sidecar.wait_for("refresh_check")
    aws.secretsmanager.put_secret_value(SecretId=arns[0], SecretString=secret_values.add("v2-never-000"))
    refreshed = sidecar.wait_for("refreshed", timeout=10)
    assert refreshed["api_calls"] == 4  # three DescribeSecret, then the changed one's GetSecretValue
    assert (tmp_path / "s000").read_bytes() == b"v2-never-000"
    sidecar.stop()
    assert {e["operation"] for e in cycles(sidecar)[0]} == {"DescribeSecret"}
