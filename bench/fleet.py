"""Fleet start-up: many tasks start at once and share one account's API quotas. Which batching strategy wins?

    .venv/bin/python bench/fleet.py            the matrix and the sweep; writes docs/fleet-results.md and docs/fleet.png
    .venv/bin/python bench/fleet.py --quick    the matrix and the refresh cost, printed

Also what refresh mode's check cycle costs a fleet, per way of checking (``refresh_cost``, below the start-up
model): calls, dollars and quota shares are arithmetic over the sidecar's own check planner and jittered delay.

A discrete-event simulation, not processes. What is real: the project's planner (``sidecar.plan.make_plan`` on
real references, with ``sm_batch`` auto/always/never and the concurrency), its throttling policy
(``sidecar.retry_policy``: a throttled BatchGetSecretValue is not retried but hands its secrets to one GetSecretValue
each, run by the same workers; any other throttled call gets MAX_THROTTLED_ATTEMPTS attempts with full-jitter
exponential backoff, BACKOFF_MULTIPLIER_SECONDS doubling up to BACKOFF_MAX_SECONDS, the window computed by
tenacity's own ``wait_exponential``; no attempt that could not finish MIN_ATTEMPT_SECONDS before the deadline)
and the deadline (60 s from process start). What is modelled:

- each task starts at a uniformly random moment of the start window, spends ``startup_s`` starting the process,
  then runs its plan with ``concurrency`` workers; a call holds its worker through its retries and back-off sleeps,
  as the sidecar's thread pool does;
- every attempt takes one round trip (``rtt_s``) and reaches AWS half-way through it, where one token bucket per
  operation (per account and region) lets it through or throttles it (``ThrottlingException``); throttling is
  the only error modelled, so MAX_ATTEMPTS (server errors, resets, timeouts) never applies to the current policy;
- buckets refill at the quota's rate and hold one second of it (the burst size AWS uses is not published);
- a task succeeds when every call succeeded; it fails when a call runs out of attempts or of time. As in the
  sidecar, the other calls of a failing task still run (and still spend quota).

``PREVIOUS`` is the sidecar's previous policy, kept for comparison: a throttled BatchGetSecretValue was retried
as a batch, and throttling got MAX_ATTEMPTS attempts like any other transient error.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tenacity import wait_exponential  # noqa: E402

from sidecar.plan import Call, make_check_plan, make_plan  # noqa: E402
from sidecar.references import parse_value_from  # noqa: E402
from sidecar.refresh import JITTER, next_delay  # noqa: E402
from sidecar.retry_policy import (  # noqa: E402
    BACKOFF_MAX_SECONDS,
    BACKOFF_MULTIPLIER_SECONDS,
    MAX_ATTEMPTS,
    MAX_THROTTLED_ATTEMPTS,
    MIN_ATTEMPT_SECONDS,
)

REGION = "eu-west-1"
ACCOUNT = "123456789012"
DEADLINE_SECONDS = 60.0  # SIDECAR_TIMEOUT's default
CONCURRENCY = 8  # SIDECAR_CONCURRENCY's default
QUOTAS: Mapping[str, float] = {  # requests per second per account and region
    "BatchGetSecretValue": 100.0,
    "GetSecretValue": 10_000.0,
    "GetParameters": 40.0,
}
STRATEGIES = ("never", "auto", "always")  # SIDECAR_SM_BATCH
_WINDOW = wait_exponential(multiplier=BACKOFF_MULTIPLIER_SECONDS, max=BACKOFF_MAX_SECONDS)


def backoff_window(attempt_number: int) -> float:
    """The upper end of the full-jitter sleep after failed attempt ``attempt_number``, as tenacity computes it
    for ``wait_random_exponential`` (which then sleeps uniformly between 0 and this)."""
    return float(_WINDOW(SimpleNamespace(attempt_number=attempt_number)))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Policy:
    """What a sidecar does when a call is throttled."""

    name: str
    batch_falls_back: bool  # a throttled BatchGetSecretValue hands its secrets to GetSecretValue, not retried
    throttled_attempts: int  # attempts of a throttled call, within the deadline


CURRENT = Policy("current", batch_falls_back=True, throttled_attempts=MAX_THROTTLED_ATTEMPTS)  # sidecar.retry_policy
PREVIOUS = Policy("previous", batch_falls_back=False, throttled_attempts=MAX_ATTEMPTS)  # for comparison only
POLICIES = (CURRENT, PREVIOUS)


@dataclass(frozen=True)
class Scenario:
    tasks: int
    secrets: int  # Secrets Manager secrets per task, all AWSCURRENT
    parameters: int = 0  # SSM parameters per task
    window_s: float = 10.0  # every task starts within this many seconds
    rtt_s: float = 0.025
    startup_s: float = 0.3  # process start to the first API call
    deadline_s: float = DEADLINE_SECONDS
    concurrency: int = CONCURRENCY


@dataclass
class Result:
    scenario: Scenario
    strategy: str
    policy: Policy
    planned_calls: int  # the planner's calls for the whole fleet
    calls: Counter[str] = field(default_factory=Counter)  # attempts that reached AWS, by operation
    throttled: Counter[str] = field(default_factory=Counter)
    fell_back: int = 0  # throttled batches whose secrets went to GetSecretValue
    completion_s: list[float] = field(default_factory=list)  # per successful task, from its start
    failed_attempts: int = 0  # tasks with a call that ran out of attempts
    failed_deadline: int = 0  # tasks with a call that ran out of time
    last_done_s: float = 0.0  # from the first task's start until the last task has its secrets (or failed)

    @property
    def failed(self) -> int:
        return self.failed_attempts + self.failed_deadline

    def percentile(self, q: float) -> float:
        if not self.completion_s:
            return math.nan
        ordered = sorted(self.completion_s)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def plan(secrets: int, parameters: int, strategy: str, concurrency: int = CONCURRENCY) -> tuple[Call, ...]:
    """The sidecar's own plan for a task with that many secrets and parameters."""
    references = [f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:app/secret-{i:03d}-AbCdEf"
                  for i in range(secrets)]
    references += [f"/app/parameter-{i:03d}" for i in range(parameters)]
    targets = [parse_value_from(r, REGION).target for r in references]
    return make_plan(targets, strategy, concurrency)  # type: ignore[arg-type]


class _Bucket:
    def __init__(self, rate: float, burst_s: float = 1.0) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * burst_s)
        self.tokens = self.capacity
        self.last = 0.0

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class _Task:
    started: float
    queue: list[Call]
    in_flight: int = 0
    failed: str | None = None


def simulate(  # noqa: PLR0915 - one event loop and its handlers
    scenario: Scenario, strategy: str, quotas: Mapping[str, float] = QUOTAS, seed: int = 1,
    policy: Policy = CURRENT,
) -> Result:
    """One fleet start-up; deterministic for a given seed. The default policy is the sidecar's; the others
    answer what the previous policy, or another retry budget, would change."""
    rng = random.Random(seed)  # noqa: S311 - a seeded simulation, not cryptography
    calls = plan(scenario.secrets, scenario.parameters, strategy, scenario.concurrency)
    result = Result(scenario, strategy, policy, planned_calls=len(calls) * scenario.tasks)
    buckets = {op: _Bucket(rate) for op, rate in quotas.items()}
    events: list[tuple[float, int, Callable[..., None], tuple[object, ...]]] = []
    sequence = 0

    def at(when: float, action: Callable[..., None], *args: object) -> None:
        nonlocal sequence
        sequence += 1
        heapq.heappush(events, (when, sequence, action, args))

    def start_task(now: float, task: _Task) -> None:
        fill_workers(now, task)

    def fill_workers(now: float, task: _Task) -> None:
        while task.queue and task.in_flight < scenario.concurrency:
            call = task.queue.pop(0)
            task.in_flight += 1
            attempt(now, task, call, 1)

    def attempt(now: float, task: _Task, call: Call, number: int) -> None:
        at(now + scenario.rtt_s / 2, arrive, task, call, number)

    def arrive(now: float, task: _Task, call: Call, number: int) -> None:
        result.calls[call.operation] += 1
        bucket = buckets.get(call.operation)
        if bucket is None or bucket.take(now):
            at(now + scenario.rtt_s / 2, call_done, task)
            return
        result.throttled[call.operation] += 1
        at(now + scenario.rtt_s / 2, throttled, task, call, number)

    def throttled(now: float, task: _Task, call: Call, number: int) -> None:
        if policy.batch_falls_back and call.operation == "BatchGetSecretValue":
            # Not retried: its secrets join the task's queue, one GetSecretValue each, as the sidecar's
            # follow-up calls join its pool's queue; the batch's worker is free at once.
            result.fell_back += 1
            task.queue += [Call(call.service, call.region, "GetSecretValue", (t,)) for t in call.targets]
            call_done(now, task)
            return
        sleep = rng.uniform(0, backoff_window(number))  # tenacity draws the sleep before its stop checks
        remaining = task.started + scenario.deadline_s - now
        if number >= policy.throttled_attempts:
            task.failed = task.failed or "attempts"
            call_done(now, task)
        elif remaining - sleep < MIN_ATTEMPT_SECONDS:
            task.failed = task.failed or "deadline"
            call_done(now, task)
        else:
            at(now + sleep, attempt, task, call, number + 1)

    def call_done(now: float, task: _Task) -> None:
        task.in_flight -= 1
        fill_workers(now, task)
        if task.in_flight or task.queue:
            return
        result.last_done_s = max(result.last_done_s, now)
        if task.failed == "attempts":
            result.failed_attempts += 1
        elif task.failed == "deadline" or now - task.started > scenario.deadline_s:
            result.failed_deadline += 1
        else:
            result.completion_s.append(now - task.started)

    starts = sorted(rng.uniform(0, scenario.window_s) for _ in range(scenario.tasks))
    for started in starts:
        at(started + scenario.startup_s, start_task, _Task(started, list(calls)))
    while events:
        now, _, action, args = heapq.heappop(events)
        action(now, *args)
    result.last_done_s -= starts[0] if starts else 0.0
    return result


# --- what a refresh cycle costs -----------------------------------------------------------------------------
#
# Refresh mode checks every interval. For each way of checking AWSCURRENT secrets: the calls a fleet makes per
# hour (from the sidecar's own check planner where the sidecar implements the option), dollars per month, the
# share of each API's quota at the fleet's busiest second (tasks cycle on the sidecar's own jittered delay,
# ``refresh.next_delay``), and how late a rotation can be noticed. Sources, checked when written:
# - $0.05 per 10,000 Secrets Manager API calls: https://aws.amazon.com/secrets-manager/pricing/ (the page does
#   not single out BatchGetSecretValue: one call is counted as one call);
# - $0.03 per 10,000 KMS requests, charged for AWS managed keys too: https://aws.amazon.com/kms/pricing/;
#   Secrets Manager decrypts a secret's data key with KMS to return its value (User Guide, "Secret encryption
#   and decryption"); whether it caches data keys between reads is not documented, so one Decrypt per value
#   read is counted: an upper bound;
# - quotas per account and region: BatchGetSecretValue 100/s, DescribeSecret and GetSecretValue 10,000/s
#   combined (Secrets Manager User Guide, quotas; a 2025 announcement gives DescribeSecret 40,000/s of its own),
#   ListSecrets 100/s (2022 announcement); Parameter Store's standard throughput (no charge) as the fleet model
#   above, 40/s;
# - ListSecrets "might not reflect changes from the last five minutes" (botocore's model, API reference).

SM_DOLLARS_PER_10K_CALLS = 0.05
KMS_DOLLARS_PER_10K_REQUESTS = 0.03
HOURS_PER_MONTH = 730
LIST_SECRETS_LAG_S = 300.0  # ListSecrets "might not reflect changes from the last five minutes"
MAX_LIST_FILTER_VALUES = 10  # botocore: FilterValuesStringList max 10
REFRESH_QUOTAS: Mapping[str, float] = {
    "BatchGetSecretValue": 100.0,
    "DescribeSecret": 10_000.0,  # combined with GetSecretValue
    "ListSecrets": 100.0,
    "GetParameter": 40.0,  # standard throughput
}


@dataclass(frozen=True)
class RefreshOption:
    name: str
    calls_per_cycle: Mapping[str, int]  # per task
    kms_per_cycle: int  # values read, each a KMS Decrypt at most
    notice: str  # how late a rotation can reach the files, at worst
    notice_s: float | None  # the same in seconds, None when AWS bounds it nowhere
    shipped: str


@dataclass(frozen=True)
class RefreshCost:
    option: RefreshOption
    calls_per_hour: int  # Secrets Manager and SSM calls of the whole fleet
    sm_dollars_per_month: float
    kms_dollars_per_month: float
    peak_share: Mapping[str, float]  # the busiest second's calls over the quota, per API

    @property
    def total_dollars_per_month(self) -> float:
        return self.sm_dollars_per_month + self.kms_dollars_per_month


def refresh_options(secrets: int, interval_s: float) -> tuple[RefreshOption, ...]:
    """The four ways to check ``secrets`` AWSCURRENT secrets; (a) and (c) are counted from the sidecar's planner."""
    targets = [parse_value_from(f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:app/s{i:03d}-AbCdEf",
                                REGION).target for i in range(secrets)]
    described = Counter(c.operation for c in make_check_plan(targets, "never"))
    batched = Counter(c.operation for c in make_check_plan(targets))
    worst = interval_s * (1 + JITTER)
    return (
        RefreshOption("(a) DescribeSecret per secret", described, 0, f"{worst:.0f} s, then a GetSecretValue",
                      worst, "SIDECAR_SM_BATCH=never"),
        RefreshOption("(b) ListSecrets, name filter", {"ListSecrets": math.ceil(secrets / MAX_LIST_FILTER_VALUES)}, 0,
                      f"{worst + LIST_SECRETS_LAG_S:.0f} s (listing lags up to 300 s)", worst + LIST_SECRETS_LAG_S,
                      "no: can miss a rotation for an interval"),
        RefreshOption("(c) BatchGetSecretValue, 20 ids", batched, secrets, f"{worst:.0f} s, value in the answer",
                      worst, "the default"),
        RefreshOption("(d) generation parameter + EventBridge", {"GetParameter": 1}, 0,
                      f"{worst:.0f} s + event delivery (best effort)", None, "no: documented as a recipe"),
    )


def refresh_cost(tasks: int, secrets: int, interval_s: float, seed: int = 1) -> list[RefreshCost]:
    """Every option for a fleet of ``tasks`` tasks checking ``secrets`` secrets every ``interval_s``: an hour of
    cycles on the sidecar's jittered delay (``refresh.next_delay``), counted per second for the peak."""
    rng = random.Random(seed)  # noqa: S311 - a seeded simulation, not cryptography
    cycle_starts: list[int] = []
    for _ in range(tasks):
        now = rng.uniform(0, interval_s)
        while now < 3600:
            cycle_starts.append(int(now))
            now += next_delay(interval_s, 0, rng)
    busiest = max(Counter(cycle_starts).values())  # cycles begun in the busiest second
    costs = []
    for option in refresh_options(secrets, interval_s):
        calls_per_hour = len(cycle_starts) * sum(option.calls_per_cycle.values())
        sm_calls = len(cycle_starts) * sum(n for op, n in option.calls_per_cycle.items() if op != "GetParameter")
        costs.append(RefreshCost(
            option, calls_per_hour,
            sm_dollars_per_month=sm_calls * HOURS_PER_MONTH / 10_000 * SM_DOLLARS_PER_10K_CALLS,
            kms_dollars_per_month=len(cycle_starts) * option.kms_per_cycle * HOURS_PER_MONTH / 10_000
            * KMS_DOLLARS_PER_10K_REQUESTS,
            peak_share={op: busiest * n / REFRESH_QUOTAS[op] for op, n in option.calls_per_cycle.items()},
        ))
    return costs


def refresh_table(costs: list[RefreshCost]) -> str:
    base = costs[0]
    rows = [
        "| option | calls per cycle per task | fleet calls per hour | x (a) | Secrets Manager $ per month | x (a) | "
        "KMS $ per month (at most) | total $ (at most) | x (a) | busiest second, share of the API's quota | "
        "rotation noticed within | shipped |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for c in costs:
        per_cycle = ", ".join(f"{n} {op}" for op, n in sorted(c.option.calls_per_cycle.items()))
        share = ", ".join(f"{op} {100 * s:.1f} %" for op, s in sorted(c.peak_share.items()))
        dollars_ratio = c.sm_dollars_per_month / base.sm_dollars_per_month
        rows.append(
            f"| {c.option.name} | {per_cycle} | {c.calls_per_hour:,} | {c.calls_per_hour / base.calls_per_hour:.2f} | "
            f"{c.sm_dollars_per_month:,.2f} | {dollars_ratio:.2f} | {c.kms_dollars_per_month:,.2f} | "
            f"{c.total_dollars_per_month:,.2f} | {c.total_dollars_per_month / base.total_dollars_per_month:.2f} | "
            f"{share} | "
            f"{c.option.notice} | {c.option.shipped} |"
        )
    return "\n".join(rows)


REFRESH_FLEET = (1000, 20, 300.0)  # tasks, secrets per task, SIDECAR_REFRESH_INTERVAL


# --- the report -------------------------------------------------------------------------------------------

MATRIX = [
    Scenario(tasks=500, secrets=5),
    Scenario(tasks=500, secrets=25),
    Scenario(tasks=2000, secrets=5),
    Scenario(tasks=2000, secrets=25),
    Scenario(tasks=2000, secrets=10),
    Scenario(tasks=500, secrets=5, parameters=5),
]
RETRY_BUDGET = [  # fleets whose single calls are throttled, with the current policy and several budgets
    (Scenario(tasks=500, secrets=5, parameters=5), "auto"),
    (Scenario(tasks=1000, secrets=5, parameters=5), "auto"),
    (Scenario(tasks=1500, secrets=5, parameters=5), "auto"),
    (Scenario(tasks=2000, secrets=5, parameters=5), "auto"),
    (Scenario(tasks=8000, secrets=25), "auto"),
]
UNTIL_DEADLINE = 10_000  # attempts: in effect, only the deadline stops retrying
BUDGETS = (MAX_ATTEMPTS, MAX_THROTTLED_ATTEMPTS, UNTIL_DEADLINE)
SWEEP_TASKS = (100, 250, 500, 1000, 2000, 4000, 8000)
SWEEP_SECRETS = (5, 10, 25)
RUNS = [(strategy, policy) for policy in POLICIES for strategy in STRATEGIES]


def label(strategy: str, policy: Policy) -> str:
    return strategy if policy is CURRENT else f"{strategy} (previous policy)"


def _ops(counter: Counter[str]) -> str:
    short = {"BatchGetSecretValue": "Batch", "GetSecretValue": "Get", "GetParameters": "Params"}
    return " ".join(f"{short.get(op, op)} {n}" for op, n in sorted(counter.items())) or "0"


def _what(s: Scenario) -> str:
    return f"{s.secrets} SM" + (f" + {s.parameters} SSM" if s.parameters else "")


def table(results: Iterable[Result]) -> str:
    rows = [
        "| tasks in 10 s | secrets per task | strategy | plan calls per task | task done p50 s | p99 s | max s | "
        "last task done s | calls made | throttled | batches to GetSecretValue | failed tasks |",
        "|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        s = r.scenario
        per_task: Counter[str] = Counter(c.operation for c in plan(s.secrets, s.parameters, r.strategy, s.concurrency))
        failed = f"{r.failed}" + (f" ({r.failed_attempts} attempts, {r.failed_deadline} deadline)" if r.failed else "")
        rows.append(
            f"| {s.tasks} | {_what(s)} | {label(r.strategy, r.policy)} | {_ops(per_task)} | "
            f"{r.percentile(0.5):.2f} | {r.percentile(0.99):.2f} | {r.percentile(1.0):.2f} | {r.last_done_s:.1f} | "
            f"{sum(r.calls.values())} | {sum(r.throttled.values())} | {r.fell_back} | {failed} |"
        )
    return "\n".join(rows)


def retry_budget_table(seed: int) -> str:
    rows = ["| tasks in 10 s | secrets per task | strategy | attempts when throttled | task done p50 s | p99 s | "
            "max s | throttled | failed tasks |", "|---:|---|---|---|---:|---:|---:|---:|---:|"]
    for scenario, strategy in RETRY_BUDGET:
        for attempts in BUDGETS:
            r = simulate(scenario, strategy, seed=seed, policy=replace(CURRENT, throttled_attempts=attempts))
            name = {MAX_ATTEMPTS: f"{attempts} (the previous budget)",
                    MAX_THROTTLED_ATTEMPTS: f"{attempts} (the sidecar's)"}.get(attempts, "until the deadline")
            failed = f"{r.failed}" + (f" ({r.failed_attempts} attempts, {r.failed_deadline} deadline)"
                                      if r.failed else "")
            rows.append(f"| {scenario.tasks} | {_what(scenario)} | {strategy} | {name} | {r.percentile(0.5):.2f} | "
                        f"{r.percentile(0.99):.2f} | {r.percentile(1.0):.2f} | {sum(r.throttled.values())} | "
                        f"{failed} |")
    return "\n".join(rows)


def plot_sweep(sweep: dict[tuple[int, int, str, str], Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    lines = [  # auto coincides with never or always: hollow squares keep it visible on top of them
        ("never", CURRENT, {"color": "#2ca02c", "linestyle": "-", "marker": "o", "linewidth": 2}),
        ("always", CURRENT, {"color": "#d62728", "linestyle": "-", "marker": "o", "linewidth": 2}),
        ("auto", CURRENT, {"color": "#1f77b4", "linestyle": "--", "marker": "s", "markersize": 10,
                           "fillstyle": "none", "linewidth": 2}),
        ("always", PREVIOUS, {"color": "#ff9896", "linestyle": ":", "marker": "^", "markersize": 7}),
        ("auto", PREVIOUS, {"color": "#9467bd", "linestyle": ":", "marker": "v", "markersize": 7}),
    ]
    fig, axes = plt.subplots(2, len(SWEEP_SECRETS), figsize=(5 * len(SWEEP_SECRETS), 7.5), sharex=True)
    for col, secrets in enumerate(SWEEP_SECRETS):
        for strategy, policy, style in lines:
            runs = [sweep[(tasks, secrets, strategy, policy.name)] for tasks in SWEEP_TASKS]
            name = label(strategy, policy)
            axes[0][col].plot(SWEEP_TASKS, [r.percentile(0.99) for r in runs], label=name, **style)
            axes[1][col].plot(SWEEP_TASKS, [100 * r.failed / r.scenario.tasks for r in runs], label=name, **style)
        axes[0][col].set_yscale("log")
        axes[0][col].yaxis.set_major_locator(FixedLocator([0.3, 0.5, 1, 2, 5, 10, 20]))
        axes[0][col].yaxis.set_major_formatter(ScalarFormatter())
        axes[0][col].yaxis.set_minor_formatter(NullFormatter())
        axes[0][col].set_title(f"{secrets} Secrets Manager secrets per task")
        axes[0][col].set_ylabel("p99 task time to secrets, s (successful tasks)")
        axes[1][col].set_ylabel("tasks failed, %")
        axes[1][col].set_ylim(-3, 100)
        axes[1][col].set_xlabel("tasks starting within 10 s (one account and region)")
        for row in axes:
            row[col].set_xscale("log")
            row[col].grid(True, which="both", alpha=0.3)
            row[col].legend(fontsize=8)
    fig.suptitle("Fleet start-up against BatchGetSecretValue 100/s and GetSecretValue 10,000/s "
                 "(25 ms round trip, 60 s deadline)\nsidecar's policy: a throttled batch goes to GetSecretValue at "
                 f"once, throttled calls get {MAX_THROTTLED_ATTEMPTS} attempts; previous policy: the batch was "
                 f"retried, {MAX_ATTEMPTS} attempts", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="the matrix and the refresh cost only, printed; no files written")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where fleet-results.md and fleet.png go")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.monotonic()
    matrix = [simulate(s, strategy, seed=args.seed, policy=policy) for s in MATRIX for strategy, policy in RUNS]
    print(table(matrix))
    refresh_tasks, refresh_secrets, refresh_interval = REFRESH_FLEET
    refresh = refresh_table(refresh_cost(refresh_tasks, refresh_secrets, refresh_interval, seed=args.seed))
    print(f"\nRefresh cost: {refresh_tasks} tasks x {refresh_secrets} secrets, {refresh_interval:g} s interval\n")
    print(refresh)
    if args.quick:
        return 0
    sweep = {(tasks, secrets, strategy, policy.name): simulate(Scenario(tasks=tasks, secrets=secrets), strategy,
                                                               seed=args.seed, policy=policy)
             for tasks in SWEEP_TASKS for secrets in SWEEP_SECRETS for strategy, policy in RUNS}
    sweep_rows = ["| tasks in 10 s | secrets | " + " | ".join(f"{label(s, p)}: p99 s / failed" for s, p in RUNS)
                  + " |", "|---:|---:|" + "---|" * len(RUNS)]
    for secrets in SWEEP_SECRETS:
        for tasks in SWEEP_TASKS:
            cells = [f"{sweep[(tasks, secrets, s, p.name)].percentile(0.99):.2f} / "
                     f"{sweep[(tasks, secrets, s, p.name)].failed}" for s, p in RUNS]
            sweep_rows.append(f"| {tasks} | {secrets} | " + " | ".join(cells) + " |")
    print()
    print("\n".join(sweep_rows))
    budget = retry_budget_table(args.seed)
    print()
    print(budget)
    args.out.mkdir(parents=True, exist_ok=True)
    plot_sweep(sweep, args.out / "fleet.png")
    elapsed = time.monotonic() - started
    (args.out / "fleet-results.md").write_text("\n".join([
        "# Fleet start-up simulation results",
        "",
        f"Generated by `bench/fleet.py` (seed {args.seed}, {elapsed:.0f} s); the discussion is in "
        "[performance.md](performance.md#fleet-start-up).",
        "",
        f"Quotas per second: {', '.join(f'{op} {rate:g}' for op, rate in QUOTAS.items())}; buckets hold one "
        f"second of quota. Round trip 25 ms, process start-up 0.3 s, concurrency {CONCURRENCY}, "
        f"back-off window {BACKOFF_MULTIPLIER_SECONDS:g} s doubling to {BACKOFF_MAX_SECONDS:g} s, deadline "
        f"{DEADLINE_SECONDS:g} s. The sidecar's policy: a throttled BatchGetSecretValue is not retried, its secrets "
        f"go to GetSecretValue at once (counted in \"batches to GetSecretValue\"); other throttled calls get "
        f"{MAX_THROTTLED_ATTEMPTS} attempts. The previous policy, shown for comparison: throttled batches were "
        f"retried as batches, and throttling got {MAX_ATTEMPTS} attempts. Task times are from the task's start; "
        "\"last task done\" is from the first task's start; \"failed tasks\" says whether a call ran out of "
        "attempts or of time.",
        "",
        table(matrix),
        "",
        "## Sweep (plotted in fleet.png)",
        "",
        "\n".join(sweep_rows),
        "",
        "## Refresh cost",
        "",
        f"{refresh_tasks:,} tasks in refresh mode, {refresh_secrets} Secrets Manager secrets each (all "
        f"`AWSCURRENT`), `SIDECAR_REFRESH_INTERVAL={refresh_interval:g}`: an hour of cycles on the sidecar's "
        f"jittered delay. ${SM_DOLLARS_PER_10K_CALLS:g} per 10,000 Secrets Manager calls, "
        f"${KMS_DOLLARS_PER_10K_REQUESTS:g} per 10,000 KMS requests (one per value read: an upper bound), "
        f"{HOURS_PER_MONTH} hours a month; quotas per second: "
        f"{', '.join(f'{op} {rate:g}' for op, rate in REFRESH_QUOTAS.items())}. Sources and the reasoning: "
        "[operations.md](operations.md#what-refresh-costs).",
        "",
        refresh,
        "",
        "## Retry budget",
        "",
        "The current policy with other numbers of attempts for a throttled call, on fleets whose single calls are "
        "throttled (SSM GetParameters at 40/s; GetSecretValue itself at 8,000 tasks of 25 secrets).",
        "",
        budget,
        "",
    ]))
    print(f"\nwrote {args.out / 'fleet-results.md'} and {args.out / 'fleet.png'} in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
