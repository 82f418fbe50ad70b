"""The refresh check's plan (pure): how many calls a cycle makes, and which, for a given set of references."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.plan import MAX_BATCH_SECRET_IDS, MAX_GET_PARAMETERS_NAMES, is_immutable, make_check_plan
from sidecar.references import ObjectTarget, ParameterTarget, SecretTarget, Target
from tests.unit.test_plan import strategy, targets

ARN = "arn:aws:secretsmanager:{region}:123456789012:secret:app/s{i:03d}"
VERSION_ID = "9d4cb84b-ad69-40c0-a0ab-cead3EXAMPLE"


def current(count: int, region: str = "eu-west-1") -> list[Target]:
    return [SecretTarget(region, ARN.format(region=region, i=i)) for i in range(count)]


@pytest.mark.parametrize(("secrets", "calls"), [(5, 1), (20, 1), (21, 2), (500, 25)])
def test_awscurrent_secrets_cost_one_call_per_twenty(secrets: int, calls: int) -> None:
    plan = make_check_plan(current(secrets))
    assert len(plan) == calls == math.ceil(secrets / MAX_BATCH_SECRET_IDS)
    assert {c.operation for c in plan} == {"BatchGetSecretValue"}
    assert sorted(len(c.targets) for c in plan) == sorted(
        [MAX_BATCH_SECRET_IDS] * (secrets // MAX_BATCH_SECRET_IDS) + ([secrets % 20] if secrets % 20 else [])
    )


@pytest.mark.parametrize("secrets", [5, 500])
def test_sm_batch_never_checks_each_secret_with_describe_secret(secrets: int) -> None:
    plan = make_check_plan(current(secrets), "never")
    assert len(plan) == secrets
    assert Counter(c.operation for c in plan) == {"DescribeSecret": secrets}


@pytest.mark.parametrize("secrets", [5, 500])
def test_a_region_that_denied_the_batch_is_checked_with_get_secret_value_each(secrets: int) -> None:
    targets = current(secrets) + current(3, "us-east-1")
    plan = make_check_plan(targets, "auto", batch_denied={("eu-west-1", None)})
    assert Counter((c.region, c.operation) for c in plan) == {
        ("eu-west-1", "GetSecretValue"): secrets, ("us-east-1", "BatchGetSecretValue"): 1,
    }


def test_a_stage_pin_gets_its_own_describe_secret_and_a_version_pin_no_check() -> None:
    secret = ARN.format(region="eu-west-1", i=999)
    staged = [SecretTarget("eu-west-1", secret, "AWSPENDING"), SecretTarget("eu-west-1", secret, "STAGING")]
    pinned = SecretTarget("eu-west-1", secret, None, VERSION_ID)
    plan = make_check_plan([*current(25), *staged, pinned])
    assert Counter(c.operation for c in plan) == {"BatchGetSecretValue": 2, "DescribeSecret": 1}
    (described,) = (c for c in plan if c.operation == "DescribeSecret")
    assert set(described.targets) == set(staged)  # one call answers every stage of a secret
    assert pinned not in {t for c in plan for t in c.targets}


def test_a_mixed_task_costs_the_sum_of_its_sources() -> None:
    parameters = [ParameterTarget("eu-west-1", f"/app/p{i}") for i in range(12)]
    objects = [ObjectTarget("eu-west-1", "bucket", "a.conf"), ObjectTarget("eu-west-1", "bucket", "b", "v1")]
    plan = make_check_plan([*current(45), *parameters, *objects])
    assert Counter(c.operation for c in plan) == {"BatchGetSecretValue": 3, "GetParameters": 2, "HeadObject": 1}


@given(targets, strategy, st.sets(st.tuples(st.sampled_from(["eu-west-1", "us-east-1"]), st.none())))
def test_every_mutable_target_is_checked_exactly_once_within_the_limits(
    items: list[Target], sm_batch: str, denied: set[tuple[str, None]]
) -> None:
    plan = make_check_plan(items, sm_batch, denied)  # type: ignore[arg-type]
    checked = Counter(t for call in plan for t in call.targets)
    assert set(checked) == {t for t in items if not is_immutable(t)}
    assert all(count == 1 for count in checked.values())
    limits = {"BatchGetSecretValue": MAX_BATCH_SECRET_IDS, "GetParameters": MAX_GET_PARAMETERS_NAMES}
    for call in plan:
        assert {(t.service, t.region, t.role_arn) for t in call.targets} == {(call.service, call.region, call.role_arn)}
        if call.operation == "BatchGetSecretValue":
            assert (call.region, call.role_arn) not in denied and sm_batch != "never"
            assert all(isinstance(t, SecretTarget) and t.is_current for t in call.targets)
        if call.operation == "DescribeSecret":
            assert len({t.secret_id for t in call.targets if isinstance(t, SecretTarget)}) == 1
        else:
            assert 1 <= len(call.targets) <= limits.get(call.operation, 1)
