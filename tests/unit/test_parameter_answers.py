"""GetParameters answers map back to their requests, whether ``Name`` comes back as a name or an ARN."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sidecar import aws, aws_errors
from sidecar.outcomes import Checked, Failure, Fetched
from sidecar.plan import Call, make_check_plan, make_plan
from sidecar.references import ParameterTarget, parse_value_from

OTHER_ACCOUNT = "210987654321"


def _target(value_from: str) -> ParameterTarget:
    target = parse_value_from(value_from, "eu-west-1").target
    assert isinstance(target, ParameterTarget)
    return target


def _arn(name: str, account: str = "123456789012") -> str:
    return f"arn:aws:ssm:eu-west-1:{account}:parameter/{name.lstrip('/')}"


class FakeSsm:
    """Answers GetParameters from ``parameters`` (keyed by what is sent); records every request."""

    def __init__(self, answers: Mapping[str, Mapping[str, Any]], invalid: Sequence[str] = ()) -> None:
        self.answers = answers
        self.invalid = invalid
        self.requests: list[dict[str, Any]] = []
        self.regions: list[str] = []

    def get_parameters(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        found = [dict(self.answers[n]) for n in request["Names"] if n in self.answers]
        # AWS lists results alphabetically, not in request order.
        return {"Parameters": sorted(found, key=lambda p: p["Name"]),
                "InvalidParameters": [n for n in request["Names"] if n in self.invalid]}

    def ssm(self, region: str, role_arn: str | None = None) -> FakeSsm:
        """Stands in for the client factory too: the operations ask it for their region's client."""
        self.regions.append(region)
        return self


def _values(outcomes: Mapping[Any, Any]) -> dict[str, bytes | str]:
    return {t.request_name: o.value.reveal() if isinstance(o, Fetched) else o.code for t, o in outcomes.items()}


def test_answers_named_by_bare_name_or_by_arn_map_to_their_requests() -> None:
    shared = _target(_arn("/prod/db", OTHER_ACCOUNT))
    own = _target("/prod/api")
    pinned = _target(_arn("/prod/flags:2"))
    gone = _target(_arn("/prod/gone", OTHER_ACCOUNT))
    client = FakeSsm(
        {
            # AWS may answer an ARN request with the ARN as Name, or with the bare name plus an ARN field.
            shared.request_name: {"Name": shared.request_name, "Value": "shared", "Version": 4},
            own.request_name: {"Name": "/prod/api", "Value": "own", "Version": 1, "ARN": _arn("/prod/api")},
            pinned.request_name: {"Name": "/prod/flags", "Selector": ":2", "Value": "two", "Version": 2},
        },
        invalid=[gone.request_name],
    )

    outcomes = aws.perform(client, Call("ssm", "eu-west-1", "GetParameters", (shared, own, pinned, gone)), 100)

    assert client.requests == [{
        "Names": [shared.request_name, own.request_name, pinned.request_name, gone.request_name],
        "WithDecryption": True,
    }]
    assert shared.request_name == f"arn:aws:ssm:eu-west-1:{OTHER_ACCOUNT}:parameter/prod/db"
    assert _values(outcomes) == {
        shared.request_name: b"shared", "/prod/api": b"own", pinned.request_name: b"two",
        gone.request_name: "ParameterNotFound",
    }
    versions = {t.request_name: o.version for t, o in outcomes.items() if isinstance(o, Fetched)}
    assert versions == {shared.request_name: "4", "/prod/api": "1", pinned.request_name: "2"}


def test_an_answer_for_a_parameter_not_requested_is_not_taken_for_another() -> None:
    asked = _target("/prod/a")
    client = FakeSsm({asked.request_name: {"Name": "/prod/other", "Value": "x", "Version": 1}})

    outcomes = aws.perform(client, Call("ssm", "eu-west-1", "GetParameters", (asked,)), 100)

    failure = outcomes[asked]
    assert isinstance(failure, Failure) and failure.code == "MissingFromResponse"


def test_a_reference_to_secrets_manager_is_read_with_decryption_and_versioned_by_its_secret() -> None:
    """Answer shape from the SSM user guide, "Referencing AWS Secrets Manager secrets from Parameter Store
    parameters": Name is the reference without the selector, ARN the secret's, SourceResult GetSecretValue's."""
    reference = _target("/aws/reference/secretsmanager/s1-secret:AWSPREVIOUS")
    source = {"Name": "s1-secret", "VersionId": "aaabbbccc-1111-222-333-123456789", "SecretString": "pw",
              "VersionStages": ["AWSPREVIOUS"]}
    answer = {"Name": "/aws/reference/secretsmanager/s1-secret", "Selector": ":AWSPREVIOUS", "Value": "pw",
              "Type": "SecureString", "ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s1-secret-E18LRP",
              "SourceResult": json.dumps(source)}
    client = FakeSsm({reference.request_name: answer})

    (check,) = make_check_plan([reference])
    checked = aws.check(client, check, 1024)
    fetched = aws.perform(client, make_plan([reference])[0], 100)

    # Even the refresh check, which decrypts nothing else, must ask for decryption here.
    assert [r["WithDecryption"] for r in client.requests] == [True, True]
    assert checked == {reference: Checked("aaabbbccc-1111-222-333-123456789")}
    value = fetched[reference]
    assert isinstance(value, Fetched) and value.value.reveal() == b"pw"
    assert value.version == "aaabbbccc-1111-222-333-123456789"


def test_refresh_checks_map_answers_as_fetches_do_and_decrypt_nothing() -> None:
    shared = _target(_arn("/prod/db", OTHER_ACCOUNT))
    own = _target("/prod/db")
    reference = _target("/aws/reference/secretsmanager/db")
    client = FakeSsm({
        shared.request_name: {"Name": shared.request_name, "Version": 7},
        own.request_name: {"Name": "/prod/db", "Version": 3},
        reference.request_name: {"Name": reference.request_name, "Version": 0},
    })

    calls = make_check_plan([shared, own, reference])
    checked = {t: o for call in calls for t, o in aws.check(client, call, 1024).items()}

    assert checked == {shared: Checked("7"), own: Checked("3"), reference: Checked("0")}
    by_names = {tuple(r["Names"]): r["WithDecryption"] for r in client.requests}
    # The same name in this account and in another never share a call; only the reference decrypts.
    assert by_names == {(shared.request_name,): False, (own.request_name,): False,
                        (reference.request_name,): True}


def test_one_parameter_name_never_appears_twice_in_a_call() -> None:
    forms = [_target(v) for v in ("/a", "/a:1", "/a:live", _arn("/a"), _arn("/a", OTHER_ACCOUNT), "/b")]
    calls = make_plan(forms)
    assert sorted(len(c.targets) for c in calls) == [1, 1, 1, 1, 2]
    for call in calls:
        names = [t.base_name for t in call.targets if isinstance(t, ParameterTarget)]
        assert len(names) == len(set(names))


_NAMES = st.sampled_from(["/a", "/a/b", "c", "/aws/service/x/y", "/aws/reference/secretsmanager/s"])
_FORMS = st.builds(
    lambda name, selector, account: _target(
        (_arn(name, account) if account else name) + (f":{selector}" if selector else "")),
    _NAMES, st.sampled_from([None, "1", "live"]), st.sampled_from([None, "123456789012", OTHER_ACCOUNT]),
)


@given(st.lists(_FORMS, min_size=1, max_size=25), st.data())
def test_every_answer_shape_maps_back_to_its_own_request(targets: list[ParameterTarget], data: st.DataObject) -> None:
    """Whatever form each answer's Name takes (name or ARN, selector in Selector), every request gets its own
    value, through the planner's calls."""
    answers = {}
    for target in set(targets):
        bare = target.base_name
        name = data.draw(st.sampled_from([bare, _arn(bare, target.account or "123456789012")]))
        selector = target.name.partition(":")[2]
        answers[target.request_name] = {"Name": name, "Value": target.request_name, "Version": 1,
                                        **({"Selector": f":{selector}"} if selector else {})}
    client = FakeSsm(answers)

    outcomes = {t: o for call in make_plan(targets) for t, o in aws.perform(client, call, 10_000).items()}

    assert set(outcomes) == set(targets)
    for target, outcome in outcomes.items():
        assert isinstance(outcome, Fetched) and outcome.value.reveal() == target.request_name.encode()


def test_access_denied_on_a_reference_names_both_permissions() -> None:
    target = _target("/aws/reference/secretsmanager/db")
    failure = aws_errors.failure_for("AccessDeniedException", "", target, "GetParameters")
    assert failure.reason == (
        "access denied (AccessDeniedException): the task role lacks ssm:GetParameters (and "
        "secretsmanager:GetSecretValue on the secret it references) on parameter "
        "/aws/reference/secretsmanager/db in eu-west-1"
    )


def test_a_reference_to_secrets_manager_has_a_call_of_its_own() -> None:
    """moto answers a reference to a missing secret by failing the whole call (ParameterNotFound), and AWS's
    documentation does not say otherwise: alone, it can fail no other parameter."""
    references = [_target(f"/aws/reference/secretsmanager/s{i}") for i in range(3)]
    others = [_target(f"/p/{i}") for i in range(3)]
    for plan in (make_plan(references + others), make_check_plan(references + others)):
        assert sorted(len(c.targets) for c in plan) == [1, 1, 1, 3]
        assert all(len(c.targets) == 1 for c in plan if any(t in references for t in c.targets))
