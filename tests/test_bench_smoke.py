"""Keep the benchmark and the fleet simulation honest without timing anything: they run, they count what they
claim to count, and the simulation behaves as its model says. Performance itself is measured by `make bench`."""

from __future__ import annotations

import importlib.util
import inspect
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from sidecar.plan import MAX_BATCH_SECRET_IDS
from sidecar.retry_policy import BACKOFF_MAX_SECONDS, BACKOFF_MULTIPLIER_SECONDS, MAX_ATTEMPTS, MAX_THROTTLED_ATTEMPTS
from sidecar.settings.model import SM_BATCH_MODES

ROOT = Path(__file__).resolve().parent.parent
GENEROUS = {"BatchGetSecretValue": 1e6, "GetSecretValue": 1e6, "GetParameters": 1e6}
TIGHT = {"BatchGetSecretValue": 10.0, "GetSecretValue": 20.0, "GetParameters": 2.0}
TIGHT_BATCH = {**GENEROUS, "BatchGetSecretValue": 10.0}  # only the batch quota is short
ONE_CALL = 1e-9  # a bucket that lets its first call through and then throttles every one


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


def test_the_default_policy_is_the_sidecars(fleet: ModuleType) -> None:
    assert fleet.CURRENT.batch_falls_back
    assert fleet.CURRENT.throttled_attempts == MAX_THROTTLED_ATTEMPTS
    assert inspect.signature(fleet.simulate).parameters["policy"].default is fleet.CURRENT
    assert not fleet.PREVIOUS.batch_falls_back
    assert fleet.PREVIOUS.throttled_attempts == MAX_ATTEMPTS
    assert sorted(fleet.STRATEGIES) == sorted(SM_BATCH_MODES)  # the values of SIDECAR_SM_BATCH, nothing else


@pytest.mark.parametrize("policy", ["CURRENT", "PREVIOUS"])
@pytest.mark.parametrize("strategy", ["never", "auto", "always"])
@pytest.mark.parametrize(("secrets", "parameters"), [(5, 0), (25, 0), (3, 12)])
def test_generous_quota_every_task_succeeds_with_exactly_the_planned_calls(
    fleet: ModuleType, strategy: str, policy: str, secrets: int, parameters: int
) -> None:
    scenario = fleet.Scenario(tasks=30, secrets=secrets, parameters=parameters, window_s=1.0)
    result = fleet.simulate(scenario, strategy, quotas=GENEROUS, seed=7, policy=getattr(fleet, policy))
    assert result.failed == 0
    assert len(result.completion_s) == scenario.tasks
    assert sum(result.throttled.values()) == 0
    assert result.fell_back == 0
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


@pytest.mark.parametrize("strategy", ["auto", "always"])
def test_a_throttled_batch_goes_to_single_calls_at_once_and_no_task_fails(fleet: ModuleType, strategy: str) -> None:
    scenario = fleet.Scenario(tasks=60, secrets=25, window_s=1.0)
    result = fleet.simulate(scenario, strategy, quotas=TIGHT_BATCH, seed=7)
    assert result.throttled["BatchGetSecretValue"] > 0
    # Every throttled batch fell back, none was retried: each planned batch reached AWS exactly once.
    assert result.fell_back == result.throttled["BatchGetSecretValue"]
    assert result.calls["BatchGetSecretValue"] == result.planned_calls
    # Its secrets went to GetSecretValue, one call each (a batch holds 20 or 5 of the 25).
    assert 5 * result.fell_back <= result.calls["GetSecretValue"] <= 20 * result.fell_back
    assert result.failed == 0
    assert len(result.completion_s) == scenario.tasks


@pytest.mark.parametrize("strategy", ["auto", "always"])
def test_the_previous_policy_retried_the_batch_and_failed_tasks_where_the_sidecar_fails_none(
    fleet: ModuleType, strategy: str
) -> None:
    scenario = fleet.Scenario(tasks=60, secrets=25, window_s=1.0)
    previous = fleet.simulate(scenario, strategy, quotas=TIGHT_BATCH, seed=7, policy=fleet.PREVIOUS)
    assert previous.throttled["BatchGetSecretValue"] > 0
    assert previous.fell_back == 0
    assert previous.calls["GetSecretValue"] == 0
    assert previous.calls["BatchGetSecretValue"] > previous.planned_calls  # retries are calls too
    assert previous.failed_attempts > 0
    assert previous.failed + len(previous.completion_s) == scenario.tasks
    current = fleet.simulate(scenario, strategy, quotas=TIGHT_BATCH, seed=7)
    assert current.failed == 0


@pytest.mark.parametrize(("policy", "attempts"), [("CURRENT", MAX_THROTTLED_ATTEMPTS), ("PREVIOUS", MAX_ATTEMPTS)])
def test_a_throttled_single_call_stops_after_the_policys_attempts(
    fleet: ModuleType, policy: str, attempts: int
) -> None:
    # One task, two GetParameters calls; the bucket lets the first through and throttles the other for good.
    scenario = fleet.Scenario(tasks=1, secrets=0, parameters=20, deadline_s=10_000.0)
    result = fleet.simulate(scenario, "never", quotas={**GENEROUS, "GetParameters": ONE_CALL}, seed=7,
                            policy=getattr(fleet, policy))
    assert result.calls["GetParameters"] == 1 + attempts
    assert result.throttled["GetParameters"] == attempts
    assert (result.failed_attempts, result.failed_deadline) == (1, 0)


def test_a_throttled_single_call_stops_before_the_deadline(fleet: ModuleType) -> None:
    scenario = fleet.Scenario(tasks=1, secrets=0, parameters=20, deadline_s=5.0)
    result = fleet.simulate(scenario, "never", quotas={**GENEROUS, "GetParameters": ONE_CALL}, seed=7)
    assert 1 < result.calls["GetParameters"] < 1 + MAX_THROTTLED_ATTEMPTS
    assert (result.failed_attempts, result.failed_deadline) == (0, 1)


def test_more_attempts_for_throttling_turn_failed_tasks_into_slow_ones(fleet: ModuleType) -> None:
    scenario = fleet.Scenario(tasks=60, secrets=0, parameters=5, window_s=1.0)
    quotas = {**GENEROUS, "GetParameters": 10.0}
    previous = fleet.simulate(scenario, "never", quotas=quotas, seed=7, policy=fleet.PREVIOUS)
    current = fleet.simulate(scenario, "never", quotas=quotas, seed=7)
    assert previous.failed_attempts > 0
    assert current.failed == 0
    assert max(current.completion_s) > max(previous.completion_s)


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


@pytest.mark.slow
def test_feature_benchmark_smoke_run_checks_every_case_and_counts_its_calls() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "features.py"), "--smoke"],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    rows = {cells[1]: cells for cells in ([c.strip() for c in line.split("|")] for line in result.stdout.splitlines()
                                          if line.startswith("| ") and not line.startswith("| case"))}
    assert list(rows) == ["plain", "botocore floor", "jmesPath", "parametersByPath", "roleArn",
                          "failover, primary up", "metrics", "secrets only", "failover, primary down"]
    assert rows["plain"][3] == "1.00"
    calls = {label: cells[4] for label, cells in rows.items()}
    assert calls["plain"] == calls["botocore floor"] == "GetParameters 1, BatchGetSecretValue 1"
    assert "AssumeRole" in calls["roleArn"]  # the role's credentials come from one sts:AssumeRole
    assert "GetParametersByPath" in calls["parametersByPath"]


# --- refresh cost ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("secrets", [5, 20, 45])
def test_refresh_options_count_the_sidecars_own_check_plan(fleet: ModuleType, secrets: int) -> None:
    described, listed, batched, generation = fleet.refresh_options(secrets, 300.0)
    assert dict(described.calls_per_cycle) == {"DescribeSecret": secrets}
    assert dict(batched.calls_per_cycle) == {"BatchGetSecretValue": math.ceil(secrets / MAX_BATCH_SECRET_IDS)}
    assert dict(listed.calls_per_cycle) == {"ListSecrets": math.ceil(secrets / 10)}
    assert dict(generation.calls_per_cycle) == {"GetParameter": 1}
    assert (described.kms_per_cycle, batched.kms_per_cycle) == (0, secrets)  # only the batch reads values
    assert listed.notice_s == described.notice_s + 300 and generation.notice_s is None


def test_refresh_cost_is_arithmetic_over_an_hour_of_jittered_cycles(fleet: ModuleType) -> None:
    tasks, secrets, interval = 200, 20, 300.0
    described, listed, batched, generation = fleet.refresh_cost(tasks, secrets, interval, seed=3)
    cycles = described.calls_per_hour / secrets
    assert cycles == pytest.approx(tasks * 3600 / interval, rel=0.03)  # the jitter averages out
    assert batched.calls_per_hour == cycles == generation.calls_per_hour
    assert listed.calls_per_hour == 2 * cycles
    month = cycles * fleet.HOURS_PER_MONTH
    assert described.sm_dollars_per_month == pytest.approx(month * secrets * 0.05 / 10_000)
    assert batched.sm_dollars_per_month == pytest.approx(month * 0.05 / 10_000)
    assert batched.kms_dollars_per_month == pytest.approx(month * secrets * 0.03 / 10_000)
    assert generation.sm_dollars_per_month == 0 and generation.total_dollars_per_month == 0
    assert batched.total_dollars_per_month < described.total_dollars_per_month
    assert fleet.refresh_cost(tasks, secrets, interval, seed=3) == [described, listed, batched, generation]
