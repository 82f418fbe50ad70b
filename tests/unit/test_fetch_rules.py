"""The fetch executor in-process, with a fake clock, sleep and API: the calls it makes, the sleeps it asks for,
the outcomes and the log events, under the retry policy and the batch fallbacks. No network, no real time."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog
from botocore import exceptions as bce
from structlog.testing import capture_logs

from sidecar.deadline import Deadline
from sidecar.errors import FetchError
from sidecar.fetch import Fetcher
from sidecar.outcomes import Failure, Fetched, Outcome
from sidecar.plan import Call, make_plan
from sidecar.references import ParameterTarget, SecretTarget, Target
from sidecar.retry_policy import MAX_ATTEMPTS, MAX_THROTTLED_ATTEMPTS, MIN_ATTEMPT_SECONDS
from sidecar.secret import SecretBytes

EU, US = "eu-west-1", "us-east-1"


def secret(name: str, region: str = EU) -> SecretTarget:
    return SecretTarget(region, f"arn:aws:secretsmanager:{region}:123456789012:secret:{name}-AbCdEf", None, None)


def error(code: str, status: int = 400) -> bce.ClientError:
    return bce.ClientError({"Error": {"Code": code, "Message": "injected"},
                            "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


def fetched(target: Target, region: str | None = None) -> Fetched:
    """The value the fake API answers for ``target``, as served by ``region`` (default: the target's own)."""
    return Fetched(SecretBytes(b"v-" + repr(target).encode()), "v1", region=region or target.region)


@dataclass
class FakeTime:
    """A clock that moves only when the executor sleeps or an API call takes time."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.now += seconds


Script = Callable[[Call, int], dict[Target, Outcome]]  # (call, its attempt number) -> answer, or raise


@dataclass(frozen=True)
class Attempt:
    operation: str
    targets: tuple[Target, ...]
    number: int  # 1 for a call's first attempt
    seconds_left: float  # on the deadline when it started


@dataclass
class FakeAPI:
    """Answers each call as the script says; records every attempt with the time left when it started."""

    time: FakeTime
    deadline: Deadline
    script: Script
    seconds_per_call: float = 0.0
    made: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def perform(self, _client: object, call: Call, _max_bytes: int) -> dict[Target, Outcome]:
        with self.lock:
            number = 1 + sum(1 for a in self.made if (a.operation, a.targets) == (call.operation, call.targets))
            self.made.append(Attempt(call.operation, call.targets, number, self.deadline.remaining()))
            self.time.now += self.seconds_per_call
        return self.script(call, number)

    def operations(self) -> list[tuple[str, int]]:
        return [(a.operation, len(a.targets)) for a in self.made]


class FakeClients:
    def __init__(self) -> None:
        self.created: list[tuple[str, str]] = []

    def client(self, service: str, region: str, role_arn: str | None = None) -> object:
        self.created.append((service, region))
        return object()


class Highest(random.Random):
    """Full jitter at the top of its window, so the waits are known: 0.2, 0.4, 0.8, 1.6, 3.2, 4, 4, ..."""

    def uniform(self, a: float, b: float) -> float:
        return b


@dataclass
class Run:
    outcomes: dict[Target, Any]
    api: FakeAPI
    time: FakeTime
    logs: list[dict[str, Any]]
    fetcher: Fetcher

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.logs if e["event"] == name]


@pytest.fixture
def run() -> Iterator[Callable[..., Run]]:
    def go(calls: tuple[Call, ...], script: Script, *, seconds: float = 1e6, concurrency: int = 1,
           seconds_per_call: float = 0.0, rng: random.Random | None = None) -> Run:
        time = FakeTime()
        deadline = Deadline(seconds, clock=time.clock)
        api = FakeAPI(time, deadline, script, seconds_per_call)
        with capture_logs() as logs:
            fetcher = Fetcher(FakeClients(), deadline, structlog.get_logger(),  # type: ignore[arg-type]
                              concurrency=concurrency, max_bytes=1024, sleep=time.sleep, rng=rng or Highest())
            outcomes = fetcher.run(calls, api.perform)
        assert fetch_threads() == []  # none outlives the run into another test
        return Run(outcomes, api, time, logs, fetcher)

    yield go


def fetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fetch")]


def single(target: SecretTarget) -> Call:
    return Call("secretsmanager", target.region, "GetSecretValue", (target,))


def batch(*targets: SecretTarget) -> Call:
    return Call("secretsmanager", targets[0].region, "BatchGetSecretValue", tuple(targets))


def always(exc: Exception) -> Script:
    def script(_call: Call, _attempt: int) -> dict[Target, Outcome]:
        raise exc

    return script


def singles_answer(batch_error: Exception | None = None) -> Script:
    """Batches fail with ``batch_error``; single calls answer."""

    def script(call: Call, _attempt: int) -> dict[Target, Outcome]:
        if call.operation == "BatchGetSecretValue" and batch_error is not None:
            raise batch_error
        return {t: fetched(t) for t in call.targets}

    return script


# --- which errors are retried, and how often ------------------------------------------------------------------


def test_a_server_error_is_retried_after_full_jitter_waits_until_the_attempts_run_out(run: Callable[..., Run]) -> None:
    target = secret("a")
    result = run((single(target),), always(error("InternalServiceError", 500)))

    assert len(result.api.made) == MAX_ATTEMPTS
    assert result.time.sleeps == [0.2, 0.4, 0.8, 1.6, 3.2]
    failure = result.outcomes[target]
    assert isinstance(failure, Failure)
    assert failure.code == "InternalServiceError"
    assert f"GetSecretValue kept failing with InternalServiceError after {MAX_ATTEMPTS} attempt(s)" in failure.reason
    assert [(e["attempt"], e["error"], e["sleep_s"]) for e in result.events("retry")] == [
        (1, "InternalServiceError", 0.2), (2, "InternalServiceError", 0.4), (3, "InternalServiceError", 0.8),
        (4, "InternalServiceError", 1.6), (5, "InternalServiceError", 3.2),
    ]
    assert [e["attempt"] for e in result.events("api_call")] == list(range(1, MAX_ATTEMPTS + 1))
    stats = result.fetcher.stats
    assert (stats.api_calls, stats.retries, stats.throttled) == (MAX_ATTEMPTS, MAX_ATTEMPTS - 1, 0)


def test_throttling_is_retried_up_to_its_own_limit(run: Callable[..., Run]) -> None:
    target = secret("a")
    result = run((single(target),), always(error("ThrottlingException")))

    assert len(result.api.made) == MAX_THROTTLED_ATTEMPTS
    assert len(result.time.sleeps) == MAX_THROTTLED_ATTEMPTS - 1
    assert max(result.time.sleeps) == 4.0
    assert f"after {MAX_THROTTLED_ATTEMPTS} attempt(s)" in result.outcomes[target].reason
    stats = result.fetcher.stats  # every throttled attempt counts: the retried ones and the one given up
    assert (stats.api_calls, stats.retries, stats.throttled) == (
        MAX_THROTTLED_ATTEMPTS, MAX_THROTTLED_ATTEMPTS - 1, MAX_THROTTLED_ATTEMPTS)


def test_a_network_error_is_retried_and_the_call_then_succeeds(run: Callable[..., Run]) -> None:
    target = secret("a")

    def script(call: Call, attempt: int) -> dict[Target, Outcome]:
        if attempt < 3:
            raise bce.ConnectionClosedError(endpoint_url="https://secretsmanager.eu-west-1.amazonaws.com")
        return {target: fetched(target)}

    result = run((single(target),), script)

    assert result.outcomes == {target: fetched(target)}
    assert result.time.sleeps == [0.2, 0.4]
    assert [e["outcome"] for e in result.events("api_call")] == ["ConnectionClosedError"] * 2 + ["ok"]


@pytest.mark.parametrize(("code", "fragment"), [
    ("AccessDeniedException", "access denied (AccessDeniedException)"),
    ("ResourceNotFoundException", "was not found (ResourceNotFoundException)"),
    ("ValidationException", "GetSecretValue failed for"),
])
def test_a_permanent_error_is_tried_once_and_explained(run: Callable[..., Run], code: str, fragment: str) -> None:
    target = secret("a")
    result = run((single(target),), always(error(code)))

    assert result.api.operations() == [("GetSecretValue", 1)]
    assert result.time.sleeps == []
    assert result.events("retry") == []
    assert fragment in result.outcomes[target].reason


def test_an_error_that_is_not_from_aws_is_a_bug_and_propagates(run: Callable[..., Run]) -> None:
    with pytest.raises(KeyError):
        run((single(secret("a")),), always(KeyError("bug")))


# --- the deadline ------------------------------------------------------------------------------------------------


def test_the_deadline_ends_retries_before_the_attempt_limit(run: Callable[..., Run]) -> None:
    """Each attempt takes 0.1 s of a 10 s deadline and the waits are 0.2, 0.4, 0.8, 1.6, 3.2, 4, ...: the sixth
    attempt starts at 6.7 s, and a seventh would start at 10.8 s, so throttling (40 attempts) stops at six."""
    target = secret("a")
    result = run((single(target),), always(error("ThrottlingException")), seconds=10.0, seconds_per_call=0.1)

    left_at_start = [a.seconds_left for a in result.api.made]
    assert left_at_start == pytest.approx([10.0, 9.7, 9.2, 8.3, 6.6, 3.3])
    assert all(left >= MIN_ATTEMPT_SECONDS for left in left_at_start)
    assert result.time.sleeps == [0.2, 0.4, 0.8, 1.6, 3.2]
    assert "ThrottlingException after 6 attempt(s)" in result.outcomes[target].reason


@pytest.mark.parametrize("seed", range(20))
def test_no_retry_starts_with_less_than_the_minimum_time_left(run: Callable[..., Run], seed: int) -> None:
    """Four throttled calls, one at a time, share a 7 s deadline. A call's first attempt is made whatever is
    left (it may well succeed in less than the minimum); its retries only with the minimum left."""
    targets = [secret(f"s{i}") for i in range(4)]
    result = run(tuple(single(t) for t in targets), always(error("ThrottlingException")), seconds=7.0,
                 seconds_per_call=0.05, rng=random.Random(seed))  # noqa: S311

    retries = [a for a in result.api.made if a.number > 1]
    assert len(retries) >= 4
    assert all(a.seconds_left >= MIN_ATTEMPT_SECONDS for a in retries)
    assert {a.targets[0] for a in result.api.made if a.number == 1} == set(targets)
    assert all(isinstance(result.outcomes[t], Failure) for t in targets)


def test_calls_still_unanswered_at_the_deadline_fail_the_run() -> None:
    release = threading.Event()

    def hang(_client: object, _call: Call, _max_bytes: int) -> dict[Target, Outcome]:
        release.wait(5)
        return {}

    fetcher = Fetcher(FakeClients(), Deadline(0.05), structlog.get_logger(),  # type: ignore[arg-type]
                      concurrency=2, max_bytes=1)
    try:
        with capture_logs(), pytest.raises(FetchError, match=r"deadline passed with 2 API call\(s\) still unanswered"):
            fetcher.run((single(secret("a")), single(secret("b"))), hang)
    finally:
        release.set()
        for thread in fetch_threads():  # the abandoned calls end here, not during the next test
            thread.join(10)


# --- batches: fallbacks to single calls ------------------------------------------------------------------------


def test_a_throttled_batch_goes_to_single_calls_at_once_without_retrying_the_batch(run: Callable[..., Run]) -> None:
    targets = [secret(f"s{i}") for i in range(3)]
    result = run((batch(*targets),), singles_answer(error("ThrottlingException")))

    assert result.api.operations() == [("BatchGetSecretValue", 3)] + [("GetSecretValue", 1)] * 3
    assert result.time.sleeps == []
    assert result.events("retry") == []
    assert [(e["region"], e["ids"]) for e in result.events("batch_throttled")] == [(EU, 3)]
    assert result.outcomes == {t: fetched(t) for t in targets}
    assert (result.fetcher.stats.throttled, result.fetcher.stats.retries) == (1, 0)  # fell back, not retried


def test_a_denied_batch_goes_to_single_calls_with_one_warning_per_region(run: Callable[..., Run]) -> None:
    targets = [secret(f"eu{i:02d}") for i in range(45)] + [secret(f"us{i}", US) for i in range(30)]
    calls = make_plan(targets, "always")
    assert [c.operation for c in calls] == ["BatchGetSecretValue"] * 5  # 20 + 20 + 5 in eu, 20 + 10 in us

    result = run(calls, singles_answer(error("AccessDeniedException")), concurrency=4)

    assert sorted(e["region"] for e in result.events("batch_denied")) == [EU, US]
    assert all(e["log_level"] == "warning" for e in result.events("batch_denied"))
    assert sorted(result.api.operations()) == [("BatchGetSecretValue", n) for n in (5, 10, 20, 20, 20)] + [
        ("GetSecretValue", 1)] * 75
    assert result.outcomes == {t: fetched(t) for t in targets}
    assert result.time.sleeps == []


def test_a_batch_with_transient_item_errors_retries_those_items_singly(run: Callable[..., Run]) -> None:
    ok, flaky, throttled, missing = secret("ok"), secret("flaky"), secret("throttled"), secret("missing")

    def script(call: Call, _attempt: int) -> dict[Target, Outcome]:
        if call.operation == "BatchGetSecretValue":
            return {
                ok: fetched(ok),
                flaky: Failure("InternalServiceError", "batch item failed"),
                throttled: Failure("ThrottlingException", "batch item throttled"),
                missing: Failure("ResourceNotFoundException", "missing was not found", not_found=True),
            }
        return {t: fetched(t) for t in call.targets}

    result = run((batch(ok, flaky, throttled, missing),), script)

    assert sorted(result.api.operations()) == [("BatchGetSecretValue", 4), ("GetSecretValue", 1),
                                               ("GetSecretValue", 1)]
    assert {a.targets[0] for a in result.api.made if a.operation == "GetSecretValue"} == {flaky, throttled}
    assert result.outcomes[ok] == fetched(ok)
    assert result.outcomes[flaky] == fetched(flaky)
    assert result.outcomes[throttled] == fetched(throttled)
    assert result.outcomes[missing] == Failure("ResourceNotFoundException", "missing was not found", not_found=True)


def test_a_batch_is_retried_as_a_batch_after_a_server_error(run: Callable[..., Run]) -> None:
    targets = [secret(f"s{i}") for i in range(2)]

    def script(call: Call, attempt: int) -> dict[Target, Outcome]:
        if attempt == 1:
            raise error("InternalFailure", 500)
        return {t: fetched(t) for t in call.targets}

    result = run((batch(*targets),), script)

    assert result.api.operations() == [("BatchGetSecretValue", 2)] * 2
    assert result.time.sleeps == [0.2]
    assert result.outcomes == {t: fetched(t) for t in targets}


def test_parameters_with_item_failures_get_no_follow_up_calls(run: Callable[..., Run]) -> None:
    parameter = ParameterTarget(EU, "/app/p")

    def script(call: Call, _attempt: int) -> dict[Target, Outcome]:
        return {parameter: Failure("InternalServiceError", "odd")}

    result = run((Call("ssm", EU, "GetParameters", (parameter,)),), script)

    assert result.api.operations() == [("GetParameters", 1)]
    assert result.outcomes == {parameter: Failure("InternalServiceError", "odd")}
