"""The fault proxy's own features, each through a real sidecar run where it can be: TCP resets, S3 SlowDown,
500/503 with AWS bodies, seeded probabilities, token-bucket quotas, and its per-operation counts."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.conftest import SecretValues, run_sidecar, sidecar_env
from tests.e2e.faultproxy import (
    FaultProxy,
    Rule,
    TokenBucket,
    _State,
    quota,
    reset,
    s3_server_error,
    server_error,
    share,
    slow_down,
    throttle,
)
from tests.e2e.helpers import api_calls, assert_ok
from tests.reliability.common import BATCH_GET, GET_PARAMETERS, GET_SECRET, S3_GET, MixedSet, figure, written


def test_every_new_fault_is_retried_and_counted(
    seeded_proxy: Callable[..., FaultProxy], mixed_set: Callable[..., MixedSet], outdir: Path,
    secret_values: SecretValues,
) -> None:
    """Resets on SSM, 500 then 503 on Secrets Manager, SlowDown then 500 then a reset on one S3 object: every
    call is retried until it succeeds, and the proxy counted each answer."""
    data = mixed_set("newfaults", secrets=2, parameters=3, objects=2)
    proxy = seeded_proxy()
    proxy.add(reset(GET_PARAMETERS, count=2))
    proxy.add(server_error(GET_SECRET, 500, count=1))
    proxy.add(server_error(GET_SECRET, 503, count=1))
    target = f"/{data.bucket}/obj/000.bin"
    proxy.add(slow_down("GET", target, count=1))
    proxy.add(s3_server_error("GET", target, 500, count=1))
    proxy.add(reset(method="GET", path_prefix=target, count=1))

    result = run_sidecar(sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=data.secrets),
                         guard=secret_values)

    done = assert_ok(result)
    assert written(outdir) == data.expected
    counts = proxy.counts()
    assert counts[(GET_PARAMETERS, "reset")] == 2 and counts[(GET_PARAMETERS, "forwarded")] == 1
    assert counts[(GET_SECRET, "status 500")] == 1 and counts[(GET_SECRET, "status 503")] == 1
    assert counts[(GET_SECRET, "forwarded")] == 2
    assert counts[(S3_GET, "status 503")] == 1 and counts[(S3_GET, "status 500")] == 1
    assert counts[(S3_GET, "reset")] == 1 and counts[(S3_GET, "forwarded")] == 2
    assert sum(counts.values()) == done["api_calls"] == 2 + 1 + 2 + 2 + 4 + 1
    outcomes = Counter(c["outcome"] for c in api_calls(result))
    assert outcomes["SlowDown"] == 1 and outcomes["InternalError"] == 1
    assert outcomes["InternalFailure"] == 1 and outcomes["ServiceUnavailableException"] == 1
    connection_errors = {c["outcome"] for c in api_calls(result)} - {
        "ok", "SlowDown", "InternalError", "InternalFailure", "ServiceUnavailableException"}
    assert len(connection_errors) >= 1  # botocore's name for a reset connection
    assert sum(outcomes[c] for c in connection_errors) == 3
    figure("reset_outcome", names=",".join(sorted(connection_errors)))


def test_a_token_bucket_quota_throttles_past_its_burst(
    seeded_proxy: Callable[..., FaultProxy], mixed_set: Callable[..., MixedSet], outdir: Path,
    secret_values: SecretValues,
) -> None:
    """30 parameters are three GetParameters calls sent at once; a quota with a burst of 2 throttles the third
    (ThrottlingException, HTTP 400) and the sidecar's retry gets through."""
    data = mixed_set("quota", secrets=0, parameters=30, objects=0)
    proxy = seeded_proxy()
    proxy.add(quota(GET_PARAMETERS, rate=0.5, burst=2))

    result = run_sidecar(sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=data.secrets),
                         guard=secret_values)

    assert_ok(result)
    assert written(outdir) == data.expected
    counts = proxy.counts()
    assert counts[(GET_PARAMETERS, "forwarded")] == 3
    assert counts[(GET_PARAMETERS, "throttled")] >= 1
    throttled = [c for c in api_calls(result) if c["outcome"] == "ThrottlingException"]
    assert len(throttled) == counts[(GET_PARAMETERS, "throttled")]


def test_token_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=5, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.2  # one token
    assert [bucket.take(), bucket.take()] == [True, False]
    now[0] += 10  # refills to the burst, no further
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def _decisions(seed: int, bodies: list[bytes], rules: list[Rule]) -> list[str]:
    state = _State("127.0.0.1", 1, rules=rules, seed=seed)
    picked = [state.pick("AmazonSSM.GetParameters", "POST", "/", body) for body in bodies]
    return [json.loads(rule.body)["__type"] if rule else "forwarded" for rule in picked]


def test_probabilities_are_seeded_per_request_and_shared_evenly() -> None:
    """The same seed gives the same decision for the same request, whatever else arrived in between; ``share``
    spreads 40 % evenly over its rules."""
    bodies = [json.dumps({"Names": [f"/p/{i}"]}).encode() for i in range(4000)]

    def rules() -> list[Rule]:
        return share([throttle(GET_PARAMETERS), server_error(GET_PARAMETERS, 500),
                      server_error(GET_PARAMETERS, 503)], 0.4)

    first = _decisions(7, bodies, rules())
    assert _decisions(7, list(reversed(bodies)), rules()) == list(reversed(first))
    assert _decisions(8, bodies, rules()) != first
    shares = Counter(first)
    for code in ("ThrottlingException", "InternalFailure", "ServiceUnavailableException"):
        assert 0.10 < shares[code] / len(bodies) < 0.167, shares
    # The same request again is a new draw: a retry is not doomed to repeat its fault.
    again = _decisions(7, [bodies[0]] * 200, rules())
    assert len(set(again)) > 1


def test_counts_cover_every_request(
    seeded_proxy: Callable[..., FaultProxy], mixed_set: Callable[..., MixedSet], outdir: Path,
    secret_values: SecretValues,
) -> None:
    data = mixed_set("counts", secrets=9, parameters=2, objects=1)  # 9 secrets: one BatchGetSecretValue
    proxy = seeded_proxy()

    result = run_sidecar(sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=data.secrets),
                         guard=secret_values)

    done = assert_ok(result)
    assert proxy.counts() == Counter({(BATCH_GET, "forwarded"): 1, (GET_PARAMETERS, "forwarded"): 1,
                                      (S3_GET, "forwarded"): 1})
    assert done["api_calls"] == 3
