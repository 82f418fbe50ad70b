"""SIDECAR_TIMEOUT lasts to the last file: a set too large to write in time fails, leaving the directory as it
was, instead of finishing after the deadline."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REGION, SecretValues, run_sidecar, sidecar_env
from tests.e2e.helpers import assert_failed, full_state

KEYS = 30_000
TIMEOUT_SECONDS = 3.0
SLACK_SECONDS = 3.0  # process start-up and exit on a loaded machine


@pytest.mark.slow
def test_a_30000_key_expand_stops_at_the_deadline(aws: Any, previous: Path, secret_values: SecretValues) -> None:
    aws.s3.create_bucket(Bucket="many-keys", CreateBucketConfiguration={"LocationConstraint": REGION})
    document = {f"k{i:05d}": "v" for i in range(KEYS)}
    aws.s3.put_object(Bucket="many-keys", Key="set.json", Body=json.dumps(document).encode())
    env = sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(previous), SIDECAR_TIMEOUT=str(TIMEOUT_SECONDS),
                      SIDECAR_SECRETS=json.dumps([{"name": "set", "valueFrom": "s3://many-keys/set.json",
                                                   "expand": True}]))
    before = full_state(previous)

    started = time.monotonic()
    result = run_sidecar(env, guard=secret_values)
    elapsed = time.monotonic() - started

    if result.code == 0:  # a machine fast enough to write 30,000 files in time: then it did so in time
        assert result.final["duration_ms"] <= TIMEOUT_SECONDS * 1000, result.final
        return
    failed = assert_failed(result, result.code, "the SIDECAR_TIMEOUT deadline passed")
    assert failed["exit_code"] in (3, 4)
    assert elapsed < TIMEOUT_SECONDS + SLACK_SECONDS, f"{elapsed:.1f}s for a {TIMEOUT_SECONDS}s deadline"
    assert full_state(previous) == before
