"""Region failover in-process: which errors fail over and which never do (the pure policy), the calls the
planner makes in the failover region, the executor's share of the deadline, and the configuration's rules.
No network, no real time."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import structlog
from botocore import exceptions as bce
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from sidecar import aws_errors
from sidecar.aws import answered_parameter
from sidecar.cli import main
from sidecar.config import load_settings
from sidecar.deadline import Deadline
from sidecar.errors import ConfigError
from sidecar.fetch import Fetcher
from sidecar.outcomes import Failure, Fetched, Outcome
from sidecar.plan import Call, follow_ups, make_check_plan, make_plan
from sidecar.preflight import Verdict, in_failover_region, with_failover_notes
from sidecar.references import ObjectTarget, ParameterTarget, SecretTarget, Target, in_region
from sidecar.retry_policy import (
    MAX_ATTEMPTS,
    MIN_ATTEMPT_SECONDS,
    PRIMARY_SHARE,
    ErrorClass,
    FailOver,
    FallBack,
    GiveUp,
    Retry,
    classify_code,
    decide,
    primary_seconds,
)
from sidecar.run import check_regions
from tests.unit.test_fetch_rules import Attempt, FakeAPI, FakeClients, FakeTime, Highest, Script, error, fetched

EU, US, DE = "eu-west-1", "us-east-1", "eu-central-1"
ARN = f"arn:aws:secretsmanager:{EU}:123456789012:secret:prod/db-AbCdEf"
PLENTY = 1e9

REGIONAL = [
    classify_code("InternalServiceError", 500),
    classify_code("ServiceUnavailableException", 503),
    classify_code("SomeNewServerFault", 502),
    classify_code("ThrottlingException", 400),
    classify_code("SlowDown", 503),
    aws_errors.classify(bce.EndpointConnectionError(endpoint_url="https://x")),
    aws_errors.classify(bce.ConnectionClosedError(endpoint_url="https://x")),
    aws_errors.classify(bce.ReadTimeoutError(endpoint_url="https://x")),
    aws_errors.classify(bce.ConnectTimeoutError(endpoint_url="https://x")),
]
NEVER = [
    classify_code("AccessDeniedException", 400),
    classify_code("AccessDenied", 403),
    classify_code("AccessDenied", 500),  # a permanent code stays permanent whatever the status
    classify_code("ResourceNotFoundException", 400),
    classify_code("ParameterNotFound", 400),
    classify_code("DecryptionFailure", 400),
    classify_code("KMSAccessDeniedException", 400),
    classify_code("ValidationException", 400),
    classify_code("InvalidRequestException", 400),
    classify_code("InvalidParameterException", 400),
    aws_errors.classify(bce.CredentialRetrievalError(provider="p", error_msg="e")),  # no region answers then
    aws_errors.classify(bce.NoCredentialsError()),
    aws_errors.classify(bce.ParamValidationError(report="r")),
]


# --- the policy: which errors fail over ------------------------------------------------------------------------


@pytest.mark.parametrize("err", REGIONAL, ids=lambda e: e.code)
def test_a_regional_error_fails_over_once_its_attempts_run_out(err: ErrorClass) -> None:
    limit = MAX_ATTEMPTS if not err.throttled else 40
    before = decide(err, attempt=limit - 1, batch=False, seconds_left=PLENTY, backoff_seconds=0.1, can_fail_over=True)
    last = decide(err, attempt=limit, batch=False, seconds_left=PLENTY, backoff_seconds=0.1, can_fail_over=True)
    assert (before, last) == (Retry(0.1), FailOver("attempts"))
    assert decide(err, attempt=limit, batch=False, seconds_left=PLENTY, backoff_seconds=0.1) == GiveUp("attempts")


@pytest.mark.parametrize("err", REGIONAL, ids=lambda e: e.code)
def test_a_regional_error_fails_over_when_its_share_of_the_deadline_is_spent(err: ErrorClass) -> None:
    left = MIN_ATTEMPT_SECONDS + 1.0
    assert decide(err, attempt=1, batch=False, seconds_left=left, backoff_seconds=1.0,
                  can_fail_over=True) == Retry(1.0)
    assert decide(err, attempt=1, batch=False, seconds_left=left - 0.01, backoff_seconds=1.0,
                  can_fail_over=True) == FailOver("deadline")


@pytest.mark.parametrize("err", NEVER, ids=lambda e: e.code)
def test_denied_not_found_decryption_and_client_errors_never_fail_over(err: ErrorClass) -> None:
    for attempt in (1, MAX_ATTEMPTS, 40):
        for left in (0.0, PLENTY):
            decision = decide(err, attempt=attempt, batch=False, seconds_left=left, backoff_seconds=0.1,
                              can_fail_over=True)
            assert not isinstance(decision, FailOver), (err, decision)


@given(code=st.sampled_from([e.code for e in NEVER] + ["AccessDeniedException", "NoSuchKey", "NoSuchBucket"]),
       status=st.sampled_from([400, 403, 404, 500, 503]), attempt=st.integers(1, 60),
       left=st.floats(0, 100), batch=st.booleans())
def test_no_permanent_code_fails_over_whatever_its_status(code: str, status: int, attempt: int, left: float,
                                                         batch: bool) -> None:
    err = classify_code(code, status)
    if err.transient:  # a code this test does not know as permanent, answered with a 5xx: not its concern
        return
    decision = decide(err, attempt=attempt, batch=batch, seconds_left=left, backoff_seconds=0.1, can_fail_over=True)
    assert isinstance(decision, GiveUp | FallBack)


def test_a_batch_still_falls_back_to_single_calls_before_any_failover() -> None:
    throttled, denied = classify_code("ThrottlingException", 400), classify_code("AccessDeniedException", 400)
    for err, why in ((throttled, "throttled"), (denied, "denied")):
        assert decide(err, attempt=1, batch=True, seconds_left=PLENTY, backoff_seconds=0.1,
                      can_fail_over=True) == FallBack(why)  # type: ignore[arg-type]


def test_the_primary_gets_its_share_of_what_is_left() -> None:
    assert PRIMARY_SHARE == 0.5
    assert primary_seconds(60.0) == 30.0
    assert primary_seconds(0.0) == 0.0


# --- the planner ---------------------------------------------------------------------------------------------


def secret(name: str, failover: str | None = US) -> SecretTarget:
    return SecretTarget(EU, f"arn:aws:secretsmanager:{EU}:123456789012:secret:{name}-AbCdEf", failover_region=failover)


def test_a_call_holds_targets_of_one_failover_region() -> None:
    a, b, c = secret("a"), secret("b", None), secret("c", DE)
    calls = make_plan([a, b, c], "always", 8)
    assert {(call.failover_region, call.targets) for call in calls} == {(US, (a,)), (None, (b,)), (DE, (c,))}
    assert all(call.operation == "BatchGetSecretValue" and call.region == EU for call in calls)
    checks = make_check_plan([a, b, c])
    assert {(call.operation, call.failover_region) for call in checks} == {
        ("BatchGetSecretValue", US), ("BatchGetSecretValue", None), ("BatchGetSecretValue", DE)}
    described = make_check_plan([a, b, c], "never")
    assert {(call.operation, call.failover_region) for call in described} == {
        ("DescribeSecret", US), ("DescribeSecret", None), ("DescribeSecret", DE)}


def test_a_failover_is_the_same_call_in_the_failover_region_and_fails_over_no_further() -> None:
    a, b = secret("a"), secret("b")
    call = Call("secretsmanager", EU, "BatchGetSecretValue", (a, b), failover_region=US)
    assert follow_ups(call, FailOver("attempts")) == (
        Call("secretsmanager", US, "BatchGetSecretValue", (a, b), failed_over_from=EU),)
    # The single calls a batch falls back to keep its failover region.
    assert follow_ups(call, FallBack("throttled")) == (
        Call("secretsmanager", EU, "GetSecretValue", (a,), failover_region=US),
        Call("secretsmanager", EU, "GetSecretValue", (b,), failover_region=US))


def test_an_arn_names_the_replica_by_its_region_and_a_name_stays_a_name() -> None:
    target = SecretTarget(EU, ARN)
    assert target.secret_id_in(US) == f"arn:aws:secretsmanager:{US}:123456789012:secret:prod/db-AbCdEf"
    assert target.secret_id_in(EU) == ARN
    assert in_region("prod/db", US) == "prod/db"
    cn = "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/p"
    assert in_region(cn, "cn-northwest-1") == "arn:aws-cn:ssm:cn-northwest-1:123456789012:parameter/p"
    parameter = ParameterTarget(EU, "/prod/p", "123456789012", failover_region=US)
    assert parameter.request_name_in(US) == f"arn:aws:ssm:{US}:123456789012:parameter/prod/p"
    assert answered_parameter([parameter], f"arn:aws:ssm:{US}:123456789012:parameter/prod/p", US) is parameter
    assert ParameterTarget(EU, "/prod/p").request_name_in(US) == "/prod/p"


# --- the executor --------------------------------------------------------------------------------------------


@dataclass
class RegionalAPI(FakeAPI):
    """The fake API, recording the region of each attempt as well."""

    regions: list[str] = field(default_factory=list)

    def perform(self, clients: object, call: Call, max_bytes: int) -> dict[Target, Outcome]:
        with self.lock:
            self.regions.append(call.region)
        return super().perform(clients, call, max_bytes)

    def attempts_in(self, region: str) -> list[Attempt]:
        return [a for a, where in zip(self.made, self.regions, strict=True) if where == region]


def go(calls: tuple[Call, ...], script: Script, *, seconds: float = 1e6,
       seconds_per_call: float = 0.0) -> tuple[dict[Target, Any], RegionalAPI, list[dict[str, Any]], Fetcher]:
    time = FakeTime()
    deadline = Deadline(seconds, clock=time.clock)
    api = RegionalAPI(time, deadline, script, seconds_per_call)
    with capture_logs() as logs:
        fetcher = Fetcher(FakeClients(), deadline, structlog.get_logger(),  # type: ignore[arg-type]
                          concurrency=1, max_bytes=1024, sleep=time.sleep, rng=Highest())
        outcomes = fetcher.run(calls, api.perform)
    return outcomes, api, logs, fetcher


def primary_down(exc: Exception, *, failover_exc: Exception | None = None) -> Script:
    def script(call: Call, _attempt: int) -> dict[Target, Outcome]:
        if call.region == EU:
            raise exc
        if failover_exc is not None:
            raise failover_exc
        return {t: Fetched(fetched(t).value, "v1") for t in call.targets}

    return script


def single(target: SecretTarget) -> Call:
    return Call("secretsmanager", EU, "GetSecretValue", (target,), failover_region=target.failover_region)


@pytest.mark.parametrize("exc", [error("ServiceUnavailableException", 503), error("InternalServiceError", 500),
                                 bce.EndpointConnectionError(endpoint_url="https://secretsmanager.eu-west-1")])
def test_a_dead_primary_is_served_by_the_failover_region(exc: Exception) -> None:
    target = secret("a")
    outcomes, api, logs, fetcher = go((single(target),), primary_down(exc))

    assert api.regions == [EU] * MAX_ATTEMPTS + [US]
    assert outcomes == {target: fetched(target, US)}
    (failover,) = [e for e in logs if e["event"] == "failover"]
    code = aws_errors.classify(exc).code
    assert failover["log_level"] == "warning"
    assert (failover["region"], failover["failover_region"], failover["error"]) == (EU, US, code)
    assert failover["targets"] == [target.describe()]
    assert fetcher.stats.failovers == 1
    served = [e for e in logs if e["event"] == "api_call" and e["region"] == US]
    assert [(e["failover_from"], e["outcome"]) for e in served] == [(EU, "ok")]


def test_a_flapping_primary_that_answers_within_its_retries_serves_the_value() -> None:
    target = secret("a")

    def script(call: Call, attempt: int) -> dict[Target, Outcome]:
        if attempt < MAX_ATTEMPTS:
            raise error("ServiceUnavailableException", 503)
        return {target: fetched(target)}

    outcomes, api, logs, fetcher = go((single(target),), script)
    assert api.regions == [EU] * MAX_ATTEMPTS
    assert outcomes == {target: fetched(target, EU)}
    assert [e for e in logs if e["event"] == "failover"] == []
    assert fetcher.stats.failovers == 0


@pytest.mark.parametrize(("code", "fragment"), [
    ("AccessDeniedException", "access denied"), ("ResourceNotFoundException", "was not found"),
    ("DecryptionFailure", "KMS could not decrypt"), ("ValidationException", "GetSecretValue failed"),
])
def test_a_client_error_in_the_primary_is_reported_and_never_fails_over(code: str, fragment: str) -> None:
    target = secret("a")
    outcomes, api, logs, _ = go((single(target),), primary_down(error(code)))
    assert api.regions == [EU]
    assert fragment in outcomes[target].reason and "failover" not in outcomes[target].reason
    assert [e for e in logs if e["event"] == "failover"] == []


def test_throttling_fails_over_when_it_outlasts_the_primarys_share_of_the_deadline() -> None:
    """40 throttled attempts would outlast a 20 s deadline: the primary stops within its 10 s and the failover
    region starts with the other half still left."""
    target = secret("a")
    outcomes, api, logs, _ = go((single(target),), primary_down(error("ThrottlingException")), seconds=20.0,
                                seconds_per_call=0.1)
    primary = api.attempts_in(EU)
    assert 1 < len(primary) < 40
    assert 20.0 - primary[-1].seconds_left <= 20.0 * PRIMARY_SHARE
    (failover_attempt,) = api.attempts_in(US)
    assert failover_attempt.seconds_left >= 20.0 * (1 - PRIMARY_SHARE) - 0.1
    assert [e["error"] for e in logs if e["event"] == "failover"] == ["ThrottlingException"]
    assert outcomes == {target: fetched(target, US)}


def test_both_regions_down_is_a_failure_naming_both_within_the_deadline() -> None:
    target = secret("a")
    outcomes, api, _, _ = go((single(target),), primary_down(
        error("ServiceUnavailableException", 503), failover_exc=error("InternalServiceError", 500)),
        seconds=12.0, seconds_per_call=0.1)
    failure = outcomes[target]
    assert isinstance(failure, Failure)
    assert failure.code == "InternalServiceError"
    assert f"in the failover region {US} ({EU} was unavailable)" in failure.reason
    assert all(a.seconds_left > 0 for a in api.made)


def test_a_secret_missing_from_the_failover_region_fails_even_an_optional_entry() -> None:
    """The primary could not be asked, so the replica's not-found is no proof that the secret is gone."""
    target = secret("a")
    outcomes, _, _, _ = go((single(target),), primary_down(
        error("ServiceUnavailableException", 503), failover_exc=error("ResourceNotFoundException")))
    failure = outcomes[target]
    assert isinstance(failure, Failure) and not failure.not_found
    assert "was not found" in failure.reason and f"failover region {US}" in failure.reason


def test_a_call_without_a_failover_region_gives_up_as_before() -> None:
    target = secret("a", None)
    outcomes, api, logs, _ = go((single(target),), primary_down(error("ServiceUnavailableException", 503)))
    assert api.regions == [EU] * MAX_ATTEMPTS
    assert "kept failing with ServiceUnavailableException" in outcomes[target].reason
    assert [e for e in logs if e["event"] == "failover"] == []


# --- configuration -----------------------------------------------------------------------------------------------

BASE = {"AWS_REGION": EU}


def load(*entries: dict[str, object], **env: str):  # type: ignore[no-untyped-def]
    return load_settings({}, {**BASE, "SIDECAR_SECRETS": json.dumps(list(entries)), **env},
                         process_uid=1000, process_gid=1000)


def config_error(*entries: dict[str, object], **env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        check_regions(load(*entries, **env))
    return caught.value.message


def targets(settings: Any) -> dict[str, Target]:
    return {entry.name: entry.references[0].target for entry in settings.entries}


def test_the_global_failover_region_applies_to_secrets_manager_only() -> None:
    settings = load({"name": "sm", "valueFrom": ARN}, {"name": "ssm", "valueFrom": "/p/a"},
                    {"name": "s3", "valueFrom": "s3://bucket/key"}, SIDECAR_FAILOVER_REGION=US)
    found = targets(settings)
    assert (found["sm"].failover_region, found["ssm"].failover_region, found["s3"].failover_region) == (US, None, None)
    assert settings.failover_region == US


def test_an_entry_names_its_own_failover_region_for_a_secret_or_a_parameter() -> None:
    settings = load({"name": "sm", "valueFrom": ARN, "failoverRegion": DE},
                    {"name": "ssm", "valueFrom": "/p/a", "failoverRegion": DE},
                    {"name": "t", "template": "{{ a }}", "inputs": {"a": ARN}, "failoverRegion": DE},
                    SIDECAR_FAILOVER_REGION=US)
    found = targets(settings)
    assert (found["sm"].failover_region, found["ssm"].failover_region, found["t"].failover_region) == (DE, DE, DE)


@pytest.mark.parametrize(("entry", "env", "fragment"), [
    ({"valueFrom": "s3://bucket/key", "failoverRegion": US}, {},
     "failoverRegion does not apply to object s3://bucket/key"),
    ({"template": "{{ a }}", "inputs": {"a": "s3://bucket/key"}, "failoverRegion": US}, {},
     "input 'a': failoverRegion does not apply"),
    ({"valueFrom": ARN, "failoverRegion": EU}, {}, f"the failover region {EU} is the region of secret {ARN} itself"),
    ({"valueFrom": ARN}, {"SIDECAR_FAILOVER_REGION": EU}, f"the failover region {EU} is the region of secret"),
    ({"valueFrom": "/p/a", "failoverRegion": ""}, {}, "failoverRegion: must be a region name"),
    ({"valueFrom": ARN, "failoverRegion": "us-east-l"}, {},
     "failover region 'us-east-l' is not a known AWS region (secret arn:aws:secretsmanager:eu-west-1:123456789012:"
     "secret:prod/db-AbCdEf); did you mean us-east-1?"),
    ({"valueFrom": "/p/a"}, {"SIDECAR_FAILOVER_REGION": "us-esat-1"},
     "SIDECAR_FAILOVER_REGION: 'us-esat-1' is not a known AWS region; did you mean us-east-1?"),
])
def test_a_bad_failover_region_is_a_precise_configuration_error(entry: dict[str, object], env: dict[str, str],
                                                               fragment: str) -> None:
    assert fragment in config_error({"name": "e", **entry}, **env)


def test_an_s3_object_never_gets_a_failover_region() -> None:
    assert ObjectTarget(EU, "bucket", "key").failover_region is None


def _check(*args: str, **env: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["check", *args], {**BASE, **env})
    structlog.reset_defaults()
    return code, out.getvalue()


def test_check_shows_each_calls_failover_region() -> None:
    entries = json.dumps([{"name": "db", "valueFrom": ARN}, {"name": "api", "valueFrom": "/p/api"},
                          {"name": "cfg", "valueFrom": "/p/cfg", "failoverRegion": DE}])
    code, text = _check(SIDECAR_SECRETS=entries, SIDECAR_FAILOVER_REGION=US)
    assert code == 0, text
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("call")]
    assert sorted(lines) == sorted([
        f"call  secretsmanager GetSecretValue in {EU} (failover {US}): secret {ARN}",
        f"call  ssm GetParameters in {EU}: parameter /p/api in {EU}",
        f"call  ssm GetParameters in {EU} (failover {DE}): parameter /p/cfg in {EU}",
    ])
    code, text = _check("--json", SIDECAR_SECRETS=entries, SIDECAR_FAILOVER_REGION=US)
    assert code == 0
    assert sorted((c["operation"], c["failoverRegion"] or "-") for c in json.loads(text)["calls"]) == [
        ("GetParameters", "-"), ("GetParameters", DE), ("GetSecretValue", US)]


def test_check_refuses_a_mistyped_failover_region_with_exit_2() -> None:
    code, text = _check(SIDECAR_SECRETS=json.dumps([{"name": "db", "valueFrom": ARN}]),
                        SIDECAR_FAILOVER_REGION="us-east-l")
    assert code == 2, text


# --- check --aws: the failover region is asked too ---------------------------------------------------------------


def test_preflight_asks_a_replica_by_its_arn_in_the_failover_region() -> None:
    target = SecretTarget(EU, ARN, "AWSPREVIOUS", failover_region=US)
    assert in_failover_region(target) == SecretTarget(US, ARN.replace(EU, US), "AWSPREVIOUS")
    parameter = ParameterTarget(EU, "/p/a", failover_region=DE)
    assert in_failover_region(parameter) == ParameterTarget(DE, "/p/a")
    assert in_failover_region(SecretTarget(EU, ARN)) is None


def test_preflight_notes_what_the_failover_region_answered_without_changing_the_verdict() -> None:
    replicated, lone, plain = secret("a"), secret("b"), secret("c", None)
    verdicts = {t: Verdict("ok", f"{t.describe()} exists") for t in (replicated, lone, plain)}
    noted = with_failover_notes(verdicts, {
        replicated: Verdict("ok", "exists"),
        lone: Verdict("missing", "secret b-AbCdEf was not found in us-east-1"),
    })
    assert noted[replicated] == replace(verdicts[replicated], notes=(f"failover region {US}: ok",))
    assert noted[lone].kind == "ok"
    assert noted[lone].notes == (f"failover region {US}: missing: secret b-AbCdEf was not found in us-east-1",)
    assert noted[plain] == verdicts[plain]
