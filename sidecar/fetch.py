"""Run a plan: calls on a bounded pool, retried as ``sidecar.retry_policy`` decides, one overall deadline.

The executor only: the policy decides retry, give up or fall back; the planner turns a fallen-back or partly
answered batch into follow-up calls (``plan.follow_ups``); ``sidecar.retrying`` runs tenacity. The clock
(in the ``Deadline``), the sleep and the jitter's random source are injected, so tests need no real time.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

from sidecar import aws, aws_errors
from sidecar.credentials import AssumedRole, resolve_credentials
from sidecar.deadline import Deadline, Sleep
from sidecar.errors import FetchError
from sidecar.outcomes import Checked, CheckOutcome, Failure, Fetched, FetchedTree, Outcome
from sidecar.plan import Call, follow_ups
from sidecar.references import Target
from sidecar.retry_policy import ErrorClass, FailOver, FallBack, primary_seconds
from sidecar.retrying import Stopped, retry_call
from sidecar.stopping import POLL_SECONDS, Stop

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

T = TypeVar("T")
R = TypeVar("R")
Perform = Callable[[aws.ClientFactory, Call, int], dict[Target, R]]  # R: an outcome type, Failure included


@dataclass
class Stats:
    """Counters shared by the worker threads."""

    api_calls: int = 0
    retries: int = 0
    throttled: int = 0  # attempts answered with a throttling error, whether retried, fallen back or given up
    failovers: int = 0  # calls made again in their failover region
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, *, api_calls: int = 0, retries: int = 0, throttled: int = 0, failovers: int = 0) -> None:
        with self._lock:
            self.api_calls += api_calls
            self.retries += retries
            self.throttled += throttled
            self.failovers += failovers


class Fetcher:
    def __init__(
        self, clients: aws.ClientFactory, deadline: Deadline, log: FilteringBoundLogger, *, concurrency: int,
        max_bytes: int, sleep: Sleep = time.sleep, rng: random.Random | None = None, stop: Stop | None = None,
        batch_denied: set[tuple[str, str | None]] | None = None,
    ) -> None:
        self._clients = clients
        self._stop = stop or Stop()  # SIGTERM: no new call starts, and the waits below end within POLL_SECONDS
        self._deadline = deadline
        self._log = log
        self._concurrency = concurrency
        self._max_bytes = max_bytes
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        # (region, role) where BatchGetSecretValue was denied; a long-running process shares one set between its
        # runs, so it warns once per region and role, and its refresh checks stop asking for the batch there.
        self.batch_denied: set[tuple[str, str | None]] = set() if batch_denied is None else batch_denied
        self._batch_denied_lock = threading.Lock()
        self.stats = Stats()

    def retrying(
        self, what: Callable[[], T], *, describe: dict[str, object], batch: bool = False, can_fail_over: bool = False,
    ) -> T | Stopped:
        """``what()`` retried as the policy decides, each retry counted and logged. A call that can fail over
        is held to its own region's share of the time left (``retry_policy.primary_seconds``)."""

        def on_retry(error: ErrorClass, attempt: int, sleep_s: float) -> None:
            self.stats.count(retries=1)
            self._log.warning("retry", **describe, attempt=attempt, error=error.code, sleep_s=round(sleep_s, 3))

        deadline = self._deadline
        if can_fail_over:
            deadline = Deadline(primary_seconds(deadline.remaining()), deadline.clock)
        return retry_call(what, batch=batch, deadline=deadline, sleep=self._sleep, rng=self._rng,
                          on_retry=on_retry, can_fail_over=can_fail_over)

    def resolve_credentials(self) -> None:
        """Resolve credentials once, before any thread needs them (``sidecar.credentials``)."""
        resolve_credentials(
            self._clients.session.get_credentials, deadline=self._deadline,
            attempts=lambda get: self.retrying(get, describe={"event_for": "credentials"}), stop=self._stop,
        )

    def resolve_roles(self, calls: Iterable[Call]) -> None:
        """Resolve each role's credentials for the regions it is used in, before any thread needs them: the
        first use calls sts:AssumeRole, a later one only when botocore would renew them (``sidecar.assumed_role``)."""
        for role_arn, region in sorted({(c.role_arn, c.region) for c in calls if c.role_arn is not None}):
            credentials = self._clients.role_credentials(role_arn, region)
            if not credentials.refresh_needed():
                continue  # more than botocore's advisory window left: no call to STS would be made
            describe: dict[str, object] = {"event_for": "assume_role", "role_arn": role_arn, "region": region}

            def attempts(get: Callable[[], object], describe: dict[str, object] = describe) -> object:
                return self.retrying(get, describe=describe)

            resolve_credentials(credentials.get_frozen_credentials, deadline=self._deadline, attempts=attempts,
                                stop=self._stop, role=AssumedRole(role_arn, region))

    # -- calls -----------------------------------------------------------------------------------------------

    def fetch(self, calls: tuple[Call, ...]) -> dict[Target, Outcome]:
        """Fetch the values the calls name."""
        return self.run(calls, aws.perform)

    def check(self, calls: tuple[Call, ...]) -> dict[Target, CheckOutcome]:
        """Ask for the current versions the calls name, not the values (refresh mode)."""
        return self.run(calls, aws.check)

    def run(self, calls: tuple[Call, ...], perform: Perform[R]) -> dict[Target, R | Failure]:
        """Run every call with ``perform``; a call may hand back follow-up calls (batch fallbacks), run in
        the same pool."""
        self._clients_for(calls)
        self.resolve_roles(calls)
        outcomes: dict[Target, R | Failure] = {}
        pool = ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="fetch")
        answered = False
        try:
            pending: set[Future[tuple[dict[Target, R | Failure], tuple[Call, ...]]]] = {
                pool.submit(self._run_call, call, perform) for call in calls
            }
            while pending:
                self._stop.check()  # after SIGTERM no new call starts: the pool is shut down below
                remaining = self._deadline.remaining()
                done, pending = wait(pending, timeout=min(remaining, POLL_SECONDS), return_when=FIRST_COMPLETED)
                if not done and remaining > POLL_SECONDS:
                    continue
                if not done:
                    raise FetchError(
                        # The deadline holds what was left of SIDECAR_TIMEOUT after start-up, not the setting.
                        f"the SIDECAR_TIMEOUT deadline passed with {len(pending)} API call(s) still unanswered "
                        f"after {self._deadline.seconds:.1f}s of fetching; {len(outcomes)} value(s) fetched"
                    )
                for future in done:
                    results, more = future.result()
                    outcomes.update(results)
                    self._clients_for(more)
                    self.resolve_roles(more)  # a failover region's calls need the role's credentials there
                    pending |= {pool.submit(self._run_call, call, perform) for call in more}
            answered = True
        finally:
            # Every call answered: wait for the idle workers to exit, so that no thread outlives the run. Else
            # (deadline, SIGTERM, a bug) the calls still running are abandoned: the process is about to exit.
            pool.shutdown(wait=answered, cancel_futures=True)
        return outcomes

    def _clients_for(self, calls: Iterable[Call]) -> None:
        for call in calls:  # botocore client creation is not thread-safe: the main thread creates them all
            self._clients.client(call.service, call.region, call.role_arn)

    def _run_call(self, call: Call, perform: Perform[R]) -> tuple[dict[Target, R | Failure], tuple[Call, ...]]:
        describe: dict[str, object] = {
            "service": call.service, "region": call.region, "operation": call.operation, "ids": len(call.targets),
        }
        if call.failed_over_from is not None:
            describe["failover_from"] = call.failed_over_from
        if call.role_arn is not None:
            describe["role_arn"] = call.role_arn
        attempt = 0
        clock = self._deadline.clock

        def attempt_once() -> dict[Target, R]:
            nonlocal attempt
            attempt += 1
            self.stats.count(api_calls=1)
            started = clock()
            try:
                result = perform(self._clients, call, self._max_bytes)
            except Exception as exc:
                error = aws_errors.classify(exc)
                if error.throttled:
                    self.stats.count(throttled=1)
                self._log.info("api_call", **describe, attempt=attempt, duration_ms=_ms(clock() - started),
                               outcome=error.code)
                raise
            self._log.info("api_call", **describe, attempt=attempt, duration_ms=_ms(clock() - started), outcome="ok")
            return result

        batch = call.operation == "BatchGetSecretValue"
        failover = call.failover_region is not None
        results = self.retrying(attempt_once, describe=describe, batch=batch, can_fail_over=failover)
        if not isinstance(results, Stopped):
            more = follow_ups(call, results)
            retried = {t for c in more for t in c.targets}
            return {t: _served(o, call) for t, o in results.items() if t not in retried}, more
        decision, code = results.decision, results.error_class.code
        if isinstance(decision, FailOver):
            self.stats.count(failovers=1)
            self._log.warning(
                "failover", targets=[t.describe() for t in call.targets], operation=call.operation,
                region=call.region, error=code, attempts=results.attempts, failover_region=call.failover_region,
                reason=f"{call.region} kept failing with {code}; reading the same from {call.failover_region}",
            )
            return {}, follow_ups(call, decision)
        if isinstance(decision, FallBack):
            if decision.why == "denied":
                self._warn_batch_denied(call.region, call.role_arn)
            else:
                self._log.info("batch_throttled", region=call.region, ids=len(call.targets),
                               reason="using GetSecretValue per secret for this batch")
            return {}, follow_ups(call, decision)
        if decision.why != "permanent":
            reason = f"{call.operation} kept failing with {code} after {results.attempts} attempt(s)"
            where = aws_errors.network_detail(results.error, call.service, call.region)
            return {t: _served(Failure(code, f"{reason} for {t.describe()}{where}"), call) for t in call.targets}, ()
        message = aws_errors.aws_message(results.error)
        return {t: _served(aws_errors.failure_for(code, message, t, call.operation), call) for t in call.targets}, ()

    def _warn_batch_denied(self, region: str, role_arn: str | None) -> None:
        """Once per region and role, however many of its batches are denied, in whichever threads."""
        with self._batch_denied_lock:
            if (region, role_arn) in self.batch_denied:
                return
            self.batch_denied.add((region, role_arn))
        who = f"the role {role_arn}" if role_arn else "the task role"
        self._log.warning(
            "batch_denied",
            region=region,
            reason=f"{who} lacks secretsmanager:BatchGetSecretValue; using GetSecretValue per secret "
            "(grant it, or set SIDECAR_SM_BATCH=never to silence this)",
        )


def _served(outcome: R, call: Call) -> R:
    """An outcome as the region of ``call`` gave it: a value records the region that served it. A failure
    in a failover region says so, and a secret that region does not have is not proof that the secret is
    gone (its own region could not be asked), so not even an optional entry is skipped for it."""
    if isinstance(outcome, Fetched | FetchedTree):
        return replace(outcome, region=call.region)
    if isinstance(outcome, Checked) and outcome.fetched is not None:  # a check that read the value
        return replace(outcome, fetched=replace(outcome.fetched, region=call.region))
    if isinstance(outcome, Failure) and call.failed_over_from is not None:
        note = f" in the failover region {call.region} ({call.failed_over_from} was unavailable)"
        return replace(outcome, reason=outcome.reason + note, not_found=False)
    return outcome


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
