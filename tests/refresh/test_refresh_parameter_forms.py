"""Refresh checks map GetParameters answers as fetches do: a parameter referenced by ARN, answered under
its ARN, is seen to change and is fetched again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SecretValues, sidecar_env
from tests.e2e.faultproxy import FaultProxy, rewrite
from tests.e2e.helpers import parameter_arn
from tests.refresh.test_refresh import Sidecar, sidecars, start

pytestmark = pytest.mark.slow
__all__ = ["sidecars"]  # the fixture, used by name


def test_a_parameter_referenced_by_arn_is_refreshed(
    moto: str, aws: Any, tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    aws.ssm.put_parameter(Name="/app/shared", Value=secret_values.add("shared-one-111"), Type="SecureString")
    arn = parameter_arn("/app/shared")
    requests: list[dict[str, Any]] = []

    def answer_under_the_arn(request: bytes, response: bytes) -> bytes:
        # AWS may name an answer by the ARN it was asked for; moto uses the bare name.
        asked, answer = json.loads(request), json.loads(response)
        requests.append(asked)
        if asked["Names"] == [arn]:
            for parameter in answer["Parameters"]:
                parameter["Name"] = arn
        return json.dumps(answer).encode()

    with FaultProxy(moto) as proxy:
        proxy.add(rewrite("AmazonSSM.GetParameters", answer_under_the_arn))
        secrets = [{"name": "by_arn", "valueFrom": arn}, {"name": "by_name", "valueFrom": "/app/shared"}]
        sidecar = start(sidecars, sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(tmp_path),
                                              SIDECAR_SECRETS=json.dumps(secrets), SIDECAR_REFRESH_INTERVAL="1"))
        sidecar.wait_for("refresh_started")
        assert (tmp_path / "by_arn").read_bytes() == b"shared-one-111"
        sidecar.wait_for("refresh_check")

        aws.ssm.put_parameter(Name="/app/shared", Value=secret_values.add("shared-two-222"), Type="SecureString",
                              Overwrite=True)
        refreshed = sidecar.wait_for("refreshed", timeout=10)

        assert len(refreshed["changed"]) == 2
        assert (tmp_path / "by_arn").read_bytes() == b"shared-two-222"
        assert (tmp_path / "by_name").read_bytes() == b"shared-two-222"
        assert sidecar.stop() == 0
    checks = [r for r in requests if r["WithDecryption"] is False]
    assert {tuple(r["Names"]) for r in checks} == {(arn,), ("/app/shared",)}  # never together: one name per call
