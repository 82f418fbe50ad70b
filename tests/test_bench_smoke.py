"""Keep the benchmark and the fleet simulation honest without timing anything: they run, they count what they
claim to count, and the simulation behaves as its model says. Performance itself is measured by `make bench`."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from sidecar.fetch import BACKOFF_MAX_SECONDS, BACKOFF_MULTIPLIER_SECONDS

ROOT = Path(__file__).resolve().parent.parent
GENEROUS = {"BatchGetSecretValue": 1e6, "GetSecretValue": 1e6, "GetParameters": 1e6}
TIGHT = {"BatchGetSecretValue": 10.0, "GetSecretValue": 20.0, "GetParameters": 2.0}


@pytest.fixture(scope="module")
def fleet() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_fleet", ROOT / "bench" / "fleet.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_backoff_window_is_the_sidecars_full_jitter_window(fleet: ModuleType) -> None:
    for attempt in range(1, 10):
        expected = min(BACKOFF_MAX_SECONDS, BACKOFF_MULTIPLIER_SECONDS * 2 ** (attempt - 1))
        assert fleet.backoff_window(attempt) == pytest.approx(expected)


@pytest.mark.parametrize("strategy", ["never", "auto", "always", "split"])
@pytest.mark.parametrize(("secrets", "parameters"), [(5, 0), (25, 0), (3, 12)])
def test_generous_quota_every_task_succeeds_with_exactly_the_planned_calls(
    fleet: ModuleType, strategy: str, secrets: int, parameters: int
) -> None:
    scenario = fleet.Scenario(tasks=30, secrets=secrets, parameters=parameters, window_s=1.0)
    result = fleet.simulate(scenario, strategy, quotas=GENEROUS, seed=7)
    assert result.failed == 0
    assert len(result.completion_s) == scenario.tasks
    assert sum(result.throttled.values()) == 0
    planned = fleet.plan(secrets, parameters, strategy)
    assert result.planned_calls == len(planned) * scenario.tasks
    assert sum(result.calls.values()) == result.planned_calls
    for operation in {c.operation for c in planned}:
        assert result.calls[operation] == sum(c.operation == operation for c in planned) * scenario.tasks
    # Nothing waits: every task is done after start-up plus one round trip per round of the worker pool.
    rounds = -(-len(planned) // scenario.concurrency)
    assert max(result.completion_s) == pytest.approx(scenario.startup_s + rounds * scenario.rtt_s)


def test_the_planner_decides_the_calls(fleet: ModuleType) -> None:
    assert {c.operation for c in fleet.plan(5, 0, "auto")} == {"GetSecretValue"}
    assert {c.operation for c in fleet.plan(25, 0, "auto")} == {"BatchGetSecretValue"}
    assert len(fleet.plan(25, 0, "always")) == 2
    assert len(fleet.plan(25, 0, "never")) == 25
    assert [c.operation for c in fleet.plan(0, 25, "never")] == ["GetParameters"] * 3


def test_tight_quota_throttles_and_the_retry_policy_gives_up(fleet: ModuleType) -> None:
    scenario = fleet.Scenario(tasks=60, secrets=25, window_s=1.0)
    result = fleet.simulate(scenario, "always", quotas=TIGHT, seed=7)
    assert result.throttled["BatchGetSecretValue"] > 0
    assert sum(result.calls.values()) > result.planned_calls  # retries are calls too
    assert result.failed > 0
    assert result.failed + len(result.completion_s) == scenario.tasks
    # Retried until the deadline instead of six attempts, the same fleet gets through.
    patient = fleet.simulate(scenario, "always", quotas=TIGHT, seed=7, max_attempts=10_000)
    assert patient.failed == 0


def test_split_falls_back_to_single_calls_when_the_batch_is_throttled(fleet: ModuleType) -> None:
    scenario = fleet.Scenario(tasks=60, secrets=25, window_s=1.0)
    result = fleet.simulate(scenario, "split", quotas={**TIGHT, "GetSecretValue": 1e6}, seed=7)
    assert result.throttled["BatchGetSecretValue"] > 0
    assert result.calls["GetSecretValue"] > 0
    assert result.failed == 0


def test_the_simulation_is_deterministic(fleet: ModuleType) -> None:
    scenario = fleet.Scenario(tasks=40, secrets=10, window_s=1.0)
    first = fleet.simulate(scenario, "auto", quotas=TIGHT, seed=3)
    again = fleet.simulate(scenario, "auto", quotas=TIGHT, seed=3)
    assert (first.calls, first.throttled, first.completion_s) == (again.calls, again.throttled, again.completion_s)


@pytest.mark.slow
def test_benchmark_smoke_run_prints_every_row(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    rows = [line for line in result.stdout.splitlines() if line.startswith("| 0 ms | 1 |")]
    assert [row.split("|")[3].strip() for row in rows] == ["secrets-sidecar", "boto3 naive", "botocore floor"]
    for row in rows:
        cells = [c.strip() for c in row.split("|")]
        assert float(cells[4]) > 0  # wall ms
        assert float(cells[6]) <= float(cells[4])  # fastest run, no slower than the median
        assert float(cells[7]) > 0  # peak RSS MiB
        assert cells[9].startswith("1 (")  # one API call for one secret, counted at the proxy
    assert (tmp_path / "performance-results.md").read_text().count("| 0 ms | 1 |") == 3
