from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from sidecar.plan import (
    MAX_BATCH_SECRET_IDS,
    MAX_GET_PARAMETERS_NAMES,
    Call,
    follow_ups,
    make_check_plan,
    make_plan,
    use_batch,
)
from sidecar.references import ObjectTarget, ParameterPathTarget, ParameterTarget, SecretTarget, Target
from sidecar.retry_policy import FallBack

REGIONS = st.sampled_from(["eu-west-1", "us-east-1"])
NAMES = st.text(alphabet="abcdef/", min_size=1, max_size=6)
READER = "arn:aws:iam::111111111111:role/reader"
AUDITOR = "arn:aws:iam::222222222222:role/team/auditor"
ROLES = st.sampled_from([None, None, READER, AUDITOR])
secrets = st.builds(
    SecretTarget,
    REGIONS,
    NAMES.map(lambda n: f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{n}"),
    st.sampled_from([None, None, "AWSPREVIOUS"]),
    st.sampled_from([None, None, "9d4cb84b-ad69-40c0-a0ab-cead3EXAMPLE"]),
    role_arn=ROLES,
)
parameters = st.builds(ParameterTarget, REGIONS, NAMES.map(lambda n: "/" + n), role_arn=ROLES)
objects = st.builds(ObjectTarget, REGIONS, st.just("bucket"), NAMES, st.sampled_from([None, "v1"]), role_arn=ROLES)
trees = st.builds(ParameterPathTarget, REGIONS, NAMES.map(lambda n: "/" + n), st.booleans(), role_arn=ROLES)
targets = st.lists(st.one_of(secrets, parameters, objects, trees), max_size=80)
strategy = st.sampled_from(["auto", "always", "never"])


@given(targets, strategy, st.integers(1, 16))
def test_every_target_is_fetched_exactly_once(items: list[Target], sm_batch: str, concurrency: int) -> None:
    calls = make_plan(items, sm_batch, concurrency)  # type: ignore[arg-type]
    planned = Counter(t for call in calls for t in call.targets)
    assert set(planned) == set(items)
    assert all(count == 1 for count in planned.values())


@given(targets, strategy, st.integers(1, 16))
def test_no_call_exceeds_its_api_limit_or_mixes_clients(items: list[Target], sm_batch: str, concurrency: int) -> None:
    for call in make_plan(items, sm_batch, concurrency):  # type: ignore[arg-type]
        limit = {"GetParameters": MAX_GET_PARAMETERS_NAMES, "BatchGetSecretValue": MAX_BATCH_SECRET_IDS}
        assert 1 <= len(call.targets) <= limit.get(call.operation, 1)
        assert {(t.service, t.region, t.role_arn) for t in call.targets} == {(call.service, call.region, call.role_arn)}
        if call.operation == "BatchGetSecretValue":
            assert all(isinstance(t, SecretTarget) and t.is_current for t in call.targets)


@given(targets)
def test_plans_are_deterministic(items: list[Target]) -> None:
    assert make_plan(items) == make_plan(list(reversed(items)))


def _secret(i: int, **pins: str) -> SecretTarget:
    return SecretTarget("eu-west-1", f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:s{i}", **pins)


def test_ssm_names_batch_by_ten() -> None:
    calls = make_plan([ParameterTarget("eu-west-1", f"/p/{i}") for i in range(23)])
    assert [len(c.targets) for c in calls] == [10, 10, 3]
    assert {c.operation for c in calls} == {"GetParameters"}


def test_secrets_batch_by_twenty_when_always() -> None:
    calls = make_plan([_secret(i) for i in range(45)], "always")
    assert [(c.operation, len(c.targets)) for c in calls] == [("BatchGetSecretValue", n) for n in (20, 20, 5)]


def test_pinned_secrets_never_batch() -> None:
    calls = make_plan([_secret(1, version_stage="AWSPREVIOUS"), _secret(2)], "always")
    assert sorted((c.operation, len(c.targets)) for c in calls) == [
        ("BatchGetSecretValue", 1),
        ("GetSecretValue", 1),
    ]


def test_auto_batches_only_beyond_one_round_of_the_pool() -> None:
    assert not use_batch(8, "auto", concurrency=8)
    assert use_batch(9, "auto", concurrency=8)
    assert not use_batch(100, "never", concurrency=8)
    assert use_batch(1, "always", concurrency=8)
    assert {c.operation for c in make_plan([_secret(i) for i in range(8)])} == {"GetSecretValue"}
    assert {c.operation for c in make_plan([_secret(i) for i in range(9)])} == {"BatchGetSecretValue"}


def test_duplicates_share_one_call() -> None:
    calls = make_plan([_secret(1), _secret(1), ParameterTarget("eu-west-1", "/a"), ParameterTarget("eu-west-1", "/a")])
    assert sum(len(c.targets) for c in calls) == 2


@given(st.lists(st.builds(ParameterTarget, REGIONS, st.sampled_from(["/a", "/a:1", "/a:2", "/a:live", "/b", "/c:3"])),
                max_size=40))
def test_no_getparameters_call_names_one_parameter_twice(items: list[ParameterTarget]) -> None:
    for call in make_plan(items):
        bases = [t.base_name for t in call.targets if isinstance(t, ParameterTarget)]
        assert len(bases) == len(set(bases))


def test_selectors_of_one_parameter_go_to_separate_calls() -> None:
    calls = make_plan([ParameterTarget("eu-west-1", n) for n in ("/a:1", "/a:2", "/b")])
    assert [sorted(t.name for t in c.targets) for c in calls] == [["/a:1", "/b"], ["/a:2"]]


# --- roles -------------------------------------------------------------------------------------------------


def test_one_secret_read_through_two_roles_and_the_task_role_is_three_fetches() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:shared/db"
    own, as_reader, as_auditor = (SecretTarget("eu-west-1", arn, role_arn=role) for role in (None, READER, AUDITOR))
    calls = make_plan([own, as_reader, as_auditor, SecretTarget("eu-west-1", arn, role_arn=READER)])
    assert [(c.operation, c.role_arn, c.targets) for c in calls] == [
        ("GetSecretValue", None, (own,)),
        ("GetSecretValue", READER, (as_reader,)),
        ("GetSecretValue", AUDITOR, (as_auditor,)),
    ]


def test_parameters_batch_per_role() -> None:
    names = [f"/p/{i}" for i in range(12)]
    calls = make_plan([ParameterTarget("eu-west-1", n, role_arn=role) for n in names for role in (None, READER)])
    assert [(c.role_arn, len(c.targets)) for c in calls] == [(None, 10), (None, 2), (READER, 10), (READER, 2)]
    assert all({t.role_arn for t in c.targets} == {c.role_arn} for c in calls)


def test_secret_batches_and_their_follow_ups_keep_their_role() -> None:
    targets = [_secret(i) for i in range(3)]
    as_reader = [SecretTarget(t.region, t.secret_id, role_arn=READER) for t in targets]
    calls = make_plan([*targets, *as_reader], "always")
    assert [(c.operation, c.role_arn, len(c.targets)) for c in calls] == [
        ("BatchGetSecretValue", None, 3), ("BatchGetSecretValue", READER, 3)]
    singles = follow_ups(calls[1], FallBack("denied"))
    assert singles == tuple(Call("secretsmanager", "eu-west-1", "GetSecretValue", (t,), READER) for t in as_reader)


def test_refresh_checks_are_made_with_the_role_that_reads() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:shared/db"
    secret, secret_as_reader = SecretTarget("eu-west-1", arn), SecretTarget("eu-west-1", arn, role_arn=READER)
    previous = SecretTarget("eu-west-1", arn, "AWSPREVIOUS", role_arn=READER)
    parameter = ParameterTarget("eu-west-1", "/p")
    parameter_as_reader = ParameterTarget("eu-west-1", "/p", role_arn=READER)
    obj = ObjectTarget("eu-west-1", "bucket", "key", role_arn=AUDITOR)
    calls = make_check_plan([secret, secret_as_reader, previous, parameter, parameter_as_reader, obj])
    assert sorted((c.operation, c.role_arn or "", c.targets) for c in calls) == sorted([
        ("BatchGetSecretValue", "", (secret,)),
        ("BatchGetSecretValue", READER, (secret_as_reader,)),
        ("DescribeSecret", READER, (previous,)),
        ("GetParameters", "", (parameter,)),
        ("GetParameters", READER, (parameter_as_reader,)),
        ("HeadObject", AUDITOR, (obj,)),
    ])
