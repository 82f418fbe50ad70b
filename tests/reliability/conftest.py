"""Fixtures for the reliability tests: the end-to-end fixtures (output directories, the previous set, the fault
proxy), a proxy with a chosen seed, and a set of secrets mixed across Secrets Manager, SSM and S3."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from tests.conftest import REGION, SecretValues
from tests.e2e.conftest import _previous_template, open_outdir, outdir, previous, proxy  # noqa: F401 - fixtures
from tests.e2e.faultproxy import FaultProxy
from tests.reliability.common import MixedSet


@pytest.fixture
def seeded_proxy(moto: str) -> Iterator[Callable[..., FaultProxy]]:
    """``seeded_proxy(seed, max_connections=...)``: a running fault proxy on the freshly reset moto server."""
    with ExitStack() as stack:
        def start(seed: int = 0, **options: Any) -> FaultProxy:
            return stack.enter_context(FaultProxy(moto, seed=seed, **options))

        yield start


@pytest.fixture
def mixed_set(aws: Any, secret_values: SecretValues) -> Callable[..., MixedSet]:
    """``mixed_set(prefix, secrets=12, parameters=12, objects=6)``: seed that many values and return the
    entries and the files a run must write."""

    def seed(prefix: str = "rel", *, secrets: int = 12, parameters: int = 12, objects: int = 6,
             object_bytes: int = 2048) -> MixedSet:
        entries: list[dict[str, Any]] = []
        expected: dict[str, tuple[bytes, str]] = {}
        bucket = f"{prefix}-bucket".lower()
        if objects:
            aws.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        for index in range(secrets):
            value = f"{prefix}-sm-value-{index:03d}-Zq8"
            arn = aws.secretsmanager.create_secret(Name=f"{prefix}/sm/{index:03d}",
                                                   SecretString=secret_values.add(value))["ARN"]
            mode = "0440" if index % 2 else "0400"
            entries.append({"name": f"sm/s{index:03d}", "valueFrom": arn, "mode": mode})
            expected[f"sm/s{index:03d}"] = (value.encode(), mode)
        for index in range(parameters):
            value = f"{prefix}-ssm-value-{index:03d}-Yx7"
            aws.ssm.put_parameter(Name=f"/{prefix}/ssm/{index:03d}", Value=secret_values.add(value),
                                  Type="SecureString")
            mode = "0404" if index % 3 == 0 else "0400"
            entries.append({"name": f"ssm/p{index:03d}", "valueFrom": f"/{prefix}/ssm/{index:03d}", "mode": mode})
            expected[f"ssm/p{index:03d}"] = (value.encode(), mode)
        for index in range(objects):
            body = (f"{prefix}-s3-object-{index:03d}-".encode() * (object_bytes // 20 + 1))[:object_bytes]
            aws.s3.put_object(Bucket=bucket, Key=f"obj/{index:03d}.bin", Body=secret_values.add(body))
            entries.append({"name": f"s3/o{index:03d}", "valueFrom": f"s3://{bucket}/obj/{index:03d}.bin"})
            expected[f"s3/o{index:03d}"] = (body, "0400")
        return MixedSet(entries, expected, bucket)

    return seed
