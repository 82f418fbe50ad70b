"""A fleet starting at once: tens of real sidecar processes against quotas on the batch operations."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SIDECAR, SecretValues, SidecarResult, sidecar_env, spawn
from tests.e2e.faultproxy import FaultProxy, quota
from tests.e2e.helpers import assert_ok
from tests.reliability.common import BATCH_GET, GET_PARAMETERS, GET_SECRET, MixedSet, figure, written

TASKS = 30
QUOTA_RATE = 5.0  # per second, per operation
QUOTA_BURST = 5
DEADLINE_SECONDS = 60


@pytest.mark.slow
def test_thirty_sidecars_at_once_under_batch_quotas_all_succeed(
    seeded_proxy: Callable[..., FaultProxy], mixed_set: Callable[..., MixedSet], tmp_path: Path,
    secret_values: SecretValues,
) -> None:
    """Thirty tasks of one service start together, each with the same ten secrets (five in Secrets Manager,
    batched, five in SSM), against quotas of 5/s (burst 5) on BatchGetSecretValue and GetParameters: every
    one writes its files inside its deadline."""
    data = mixed_set("fleet", secrets=5, parameters=5, objects=0)
    proxy = seeded_proxy(max_connections=512)
    proxy.add(quota(BATCH_GET, QUOTA_RATE, QUOTA_BURST))
    proxy.add(quota(GET_PARAMETERS, QUOTA_RATE, QUOTA_BURST))
    outs = [tmp_path / f"task-{index:02d}" for index in range(TASKS)]

    started = time.monotonic()
    processes = []
    for out in outs:
        out.mkdir()
        env = sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(out), SIDECAR_SECRETS=data.secrets,
                          SIDECAR_SM_BATCH="always", SIDECAR_TIMEOUT=str(DEADLINE_SECONDS))
        processes.append(spawn([SIDECAR], env))
    results: list[SidecarResult] = []
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=DEADLINE_SECONDS + 30)
        process.kill()
        code = process.wait()
        results.append(SidecarResult(code, process.stdout().decode(), process.stderr().decode()))
    last_done = time.monotonic() - started

    dones = [assert_ok(result) for result in results]
    for out in outs:
        assert written(out) == data.expected
    assert all(done["duration_ms"] < DEADLINE_SECONDS * 1000 for done in dones)
    counts = proxy.counts()
    assert counts[(BATCH_GET, "forwarded")] + sum(
        1 for r in results for e in r.events if e.get("event") == "batch_throttled") == TASKS
    assert counts[(GET_PARAMETERS, "forwarded")] == TASKS
    outcomes = Counter(e["outcome"] for r in results for e in r.events if e.get("event") == "api_call")
    assert set(outcomes) <= {"ok", "ThrottlingException"}, outcomes  # the proxy itself dropped nothing
    assert sum(counts.values()) == sum(done["api_calls"] for done in dones)
    durations = sorted(done["duration_ms"] / 1000 for done in dones)
    figure("fleet", tasks=TASKS, quota=f"{QUOTA_RATE:g}/s+{QUOTA_BURST}",
           batch_forwarded=counts[(BATCH_GET, "forwarded")], batch_throttled=counts[(BATCH_GET, "throttled")],
           single_calls=counts[(GET_SECRET, "forwarded")],
           parameters_throttled=counts[(GET_PARAMETERS, "throttled")],
           max_parameter_attempt=max(_max_attempt(r, "GetParameters") for r in results),
           api_calls=sum(done["api_calls"] for done in dones), retries=sum(done["retries"] for done in dones),
           median_s=round(durations[len(durations) // 2], 2), slowest_s=round(durations[-1], 2),
           last_exit_s=round(last_done, 2))


def _max_attempt(result: SidecarResult, operation: str) -> int:
    attempts: list[Any] = [e["attempt"] for e in result.events
                           if e.get("event") == "api_call" and e.get("operation") == operation]
    return max(attempts, default=0)
