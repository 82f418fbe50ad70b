"""Run a plan: bounded concurrency, jittered retries of transient errors only, one overall deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_random_exponential
from tenacity.stop import stop_base

from sidecar import aws
from sidecar.errors import FetchError
from sidecar.outcomes import CheckOutcome, Failure, Outcome
from sidecar.plan import Call
from sidecar.references import SecretTarget, Target

MAX_ATTEMPTS: Final = 6  # for server errors, resets and timeouts
MAX_THROTTLED_ATTEMPTS: Final = 40  # throttling clears as a fleet's burst passes: the deadline ends it first
BACKOFF_MULTIPLIER_SECONDS: Final = 0.2
BACKOFF_MAX_SECONDS: Final = 4.0
MIN_ATTEMPT_SECONDS: Final = 0.5  # do not start an attempt that could not finish before the deadline

T = TypeVar("T")
R = TypeVar("R")
Perform = Callable[[Any, Call, int], dict[Target, R | Failure]]
Log = Any  # a structlog bound logger


class Deadline:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock())


@dataclass
class Stats:
    """Counters shared by the worker threads."""

    api_calls: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, *, api_calls: int = 0, retries: int = 0) -> None:
        with self._lock:
            self.api_calls += api_calls
            self.retries += retries


class Fetcher:
    def __init__(
        self, clients: aws.ClientFactory, deadline: Deadline, log: Log, *, concurrency: int, max_bytes: int
    ) -> None:
        self._clients = clients
        self._deadline = deadline
        self._log = log
        self._concurrency = concurrency
        self._max_bytes = max_bytes
        self._batch_denied: set[str] = set()  # regions where BatchGetSecretValue was denied
        self.stats = Stats()

    # -- retries ---------------------------------------------------------------------------------------------

    def retrying(
        self, what: Callable[[], T], *, describe: dict[str, object], retry_throttling: bool = True
    ) -> T:
        """Call ``what`` with tenacity's full-jitter exponential backoff until it succeeds, fails
        permanently, runs out of attempts, or the next attempt could not finish before the deadline.

        Throttling gets more attempts than other transient errors: at a fleet's start-up it is the quota,
        not a fault, and it passes. With ``retry_throttling`` false it is not retried at all (the caller has
        a cheaper way around it)."""

        def out_of_time(state: RetryCallState) -> bool:
            return self._deadline.remaining() - (state.upcoming_sleep or 0) < MIN_ATTEMPT_SECONDS

        def out_of_attempts(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            throttled = exc is not None and aws.error_code(exc)[0] in aws.THROTTLING_CODES
            return state.attempt_number >= (MAX_THROTTLED_ATTEMPTS if throttled else MAX_ATTEMPTS)

        def should_retry(exc: BaseException) -> bool:
            code, transient = aws.error_code(exc)
            return transient and (retry_throttling or code not in aws.THROTTLING_CODES)

        def log_retry(state: RetryCallState) -> None:
            self.stats.count(retries=1)
            exc = state.outcome.exception() if state.outcome else None
            code = aws.error_code(exc)[0] if exc else "unknown"
            self._log.warning("retry", **describe, attempt=state.attempt_number, error=code,
                              sleep_s=round(state.upcoming_sleep or 0, 3))

        retrying = Retrying(
            retry=retry_if_exception(should_retry),
            wait=wait_random_exponential(multiplier=BACKOFF_MULTIPLIER_SECONDS, max=BACKOFF_MAX_SECONDS),
            stop=stop_when(out_of_attempts) | stop_when(out_of_time),
            before_sleep=log_retry,
            reraise=True,
        )
        return retrying(what)

    # -- credentials -----------------------------------------------------------------------------------------

    def resolve_credentials(self) -> None:
        """Resolve credentials once, before any thread needs them, so a missing task role is one clear error.

        One attempt against the container endpoint can take seconds (botocore tries it three times, a second
        apart), so the resolution runs in a daemon thread and is given up when the deadline passes."""
        answer: list[Any] = []
        failure: list[BaseException] = []

        def resolve() -> None:
            try:
                answer.append(self.retrying(self._clients.session.get_credentials,
                                            describe={"event_for": "credentials"}))
            except BaseException as exc:  # handed to the waiting thread
                failure.append(exc)

        worker = threading.Thread(target=resolve, name="credentials", daemon=True)
        worker.start()
        worker.join(self._deadline.remaining())
        if worker.is_alive():
            raise FetchError(
                "could not obtain AWS credentials (the task role) before the SIDECAR_TIMEOUT deadline: the "
                "credentials endpoint did not answer in time"
            )
        try:
            if failure:
                raise failure[0]
            credentials = answer[0]
        except aws.AWS_ERRORS as exc:
            raise FetchError(
                f"could not obtain AWS credentials (the task role): {type(exc).__name__}: {aws.aws_message(exc)}"
            ) from None
        if credentials is None:
            raise FetchError(
                "no AWS credentials found: give the task a taskRoleArn (ECS then sets "
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI), or set AWS credentials for a local run"
            )

    # -- calls -----------------------------------------------------------------------------------------------

    def fetch(self, calls: tuple[Call, ...]) -> dict[Target, Outcome]:
        """Fetch the values the calls name."""
        return self._execute(calls, aws.perform)

    def check(self, calls: tuple[Call, ...]) -> dict[Target, CheckOutcome]:
        """Ask for the current versions the calls name, not the values (refresh mode)."""
        return self._execute(calls, aws.check)

    def _execute(self, calls: tuple[Call, ...], perform: Perform[R]) -> dict[Target, R | Failure]:
        """Run every call; a call may hand back follow-up calls (batch fallbacks), run in the same pool."""
        self._clients_for(calls)
        outcomes: dict[Target, R | Failure] = {}
        pool = ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="fetch")
        try:
            pending: set[Future[tuple[dict[Target, R | Failure], list[Call]]]] = {
                pool.submit(self._run_call, call, perform) for call in calls
            }
            while pending:
                done, pending = wait(pending, timeout=self._deadline.remaining(), return_when=FIRST_COMPLETED)
                if not done:
                    raise FetchError(
                        # The deadline holds what was left of SIDECAR_TIMEOUT after start-up, not the setting.
                        f"the SIDECAR_TIMEOUT deadline passed with {len(pending)} API call(s) still unanswered "
                        f"after {self._deadline.seconds:.1f}s of fetching; {len(outcomes)} value(s) fetched"
                    )
                for future in done:
                    results, follow_ups = future.result()
                    outcomes.update(results)
                    self._clients_for(follow_ups)
                    pending |= {pool.submit(self._run_call, call, perform) for call in follow_ups}
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return outcomes

    def _clients_for(self, calls: Iterable[Call]) -> None:
        for call in calls:  # botocore client creation is not thread-safe: the main thread creates them all
            self._clients.client(call.service, call.region)

    def _run_call(self, call: Call, perform: Perform[R]) -> tuple[dict[Target, R | Failure], list[Call]]:
        client = self._clients.client(call.service, call.region)
        describe: dict[str, object] = {
            "service": call.service, "region": call.region, "operation": call.operation, "ids": len(call.targets),
        }
        attempt = 0

        def attempt_once() -> dict[Target, R | Failure]:
            nonlocal attempt
            attempt += 1
            self.stats.count(api_calls=1)
            started = time.monotonic()
            try:
                result = perform(client, call, self._max_bytes)
            except Exception as exc:
                self._log.info("api_call", **describe, attempt=attempt, duration_ms=_ms_since(started),
                               outcome=aws.error_code(exc)[0])
                raise
            self._log.info("api_call", **describe, attempt=attempt, duration_ms=_ms_since(started), outcome="ok")
            return result

        batch = call.operation == "BatchGetSecretValue"
        try:
            # A throttled batch is not retried as a batch: its ~100/s quota is the scarce one at a fleet's
            # start-up, while GetSecretValue's is 100 times larger.
            results = self.retrying(attempt_once, describe=describe, retry_throttling=not batch)
        except aws.AWS_ERRORS as exc:  # anything else is a bug and surfaces as one (exit 1)
            code, transient = aws.error_code(exc)
            if batch and code in aws.ACCESS_DENIED_CODES:
                return {}, self._fall_back(call)
            if batch and code in aws.THROTTLING_CODES:
                self._log.info("batch_throttled", region=call.region, ids=len(call.targets),
                               reason="using GetSecretValue per secret for this batch")
                return {}, self._singles(call)
            if transient:
                reason = f"{call.operation} kept failing with {code} after {attempt} attempt(s)"
                where = aws.network_detail(exc, call.service, call.region)
                return {t: Failure(code, f"{reason} for {t.describe()}{where}") for t in call.targets}, []
            message = aws.aws_message(exc)
            return {t: aws.failure_for(code, message, t, call.operation) for t in call.targets}, []
        return self._retry_items_singly(call, results)

    def _fall_back(self, call: Call) -> list[Call]:
        if call.region not in self._batch_denied:
            self._batch_denied.add(call.region)
            self._log.warning(
                "batch_denied",
                region=call.region,
                reason="the task role lacks secretsmanager:BatchGetSecretValue; using GetSecretValue per secret "
                "(grant it, or set SIDECAR_SM_BATCH=never to silence this)",
            )
        return self._singles(call)

    @staticmethod
    def _singles(call: Call, targets: Iterable[Target] | None = None) -> list[Call]:
        """One GetSecretValue call for each of ``targets`` (default: all the batch's targets)."""
        chosen = call.targets if targets is None else targets
        return [Call(call.service, call.region, "GetSecretValue", (target,)) for target in chosen]

    def _retry_items_singly(
        self, call: Call, results: dict[Target, R | Failure]
    ) -> tuple[dict[Target, R | Failure], list[Call]]:
        """A batch can fail for single items with a transient code: those get their own retried call."""
        if call.operation != "BatchGetSecretValue":
            return results, []
        again = [
            t for t, o in results.items()
            if isinstance(o, Failure) and isinstance(t, SecretTarget) and o.code in aws.TRANSIENT_CODES
        ]
        kept = {t: o for t, o in results.items() if t not in again}
        return kept, self._singles(call, again)


class stop_when(stop_base):  # named like tenacity's own stop conditions
    """A tenacity stop condition from a predicate, so it composes with ``|``."""

    def __init__(self, predicate: Callable[[RetryCallState], bool]) -> None:
        self._predicate = predicate

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._predicate(retry_state)


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
