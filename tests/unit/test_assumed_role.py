"""A role's credentials: what AssumeRole is asked, when botocore renews them, and which clients use them.

STS is botocore's real client with its ``Stubber`` (the request is validated against STS's model); the clock
is injected into the credentials, so an hour passes in microseconds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
from botocore.exceptions import ClientError
from botocore.session import Session
from botocore.stub import Stubber
from structlog.testing import capture_logs

from sidecar.assumed_role import DURATION_SECONDS, SESSION_NAME, assume_role_credentials, role_session
from sidecar.aws import ClientFactory
from sidecar.deadline import Deadline
from sidecar.errors import FetchError
from sidecar.fetch import Fetcher
from sidecar.outcomes import Fetched
from sidecar.plan import Call
from sidecar.references import ParameterTarget
from sidecar.secret import SecretBytes

READER = "arn:aws:iam::111111111111:role/reader"
T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def sts() -> Iterator[tuple[Any, Stubber]]:
    session = Session()
    session.set_credentials("AKIDTASKROLE", "task-role-secret-key", "task-role-token")
    client = session.create_client("sts", region_name="eu-west-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _answer(stubber: Stubber, key: str, issued: datetime) -> None:
    expected = {"RoleArn": READER, "RoleSessionName": SESSION_NAME, "DurationSeconds": DURATION_SECONDS}
    credentials = {"AccessKeyId": key, "SecretAccessKey": f"secret-of-{key}", "SessionToken": f"token-of-{key}",
                   "Expiration": issued + timedelta(seconds=DURATION_SECONDS)}
    stubber.add_response("assume_role", {"Credentials": credentials}, expected)


def test_nothing_is_asked_of_sts_until_the_credentials_are_used(sts: tuple[Any, Stubber]) -> None:
    client, _ = sts
    assume_role_credentials(client, READER)  # the stubber has no answer: a call would fail the test


def test_assume_role_is_asked_once_then_again_only_in_the_last_fifteen_minutes(sts: tuple[Any, Stubber]) -> None:
    client, stubber = sts
    clock = Clock()
    credentials = assume_role_credentials(client, READER, clock)
    _answer(stubber, "ASIAFIRSTKEY0001", T0)
    assert credentials.get_frozen_credentials().access_key == "ASIAFIRSTKEY0001"
    clock.now = T0 + timedelta(minutes=44, seconds=59)  # 15 min 1 s left: botocore's advisory window not reached
    assert credentials.get_frozen_credentials().access_key == "ASIAFIRSTKEY0001"
    clock.now = T0 + timedelta(minutes=45, seconds=1)  # 14 min 59 s left: renewed before expiry
    _answer(stubber, "ASIASECONDKEY002", clock.now)
    frozen = credentials.get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == (
        "ASIASECONDKEY002", "secret-of-ASIASECONDKEY002", "token-of-ASIASECONDKEY002")


def test_a_failed_renewal_keeps_the_credentials_until_ten_minutes_are_left_then_fails(
    sts: tuple[Any, Stubber],
) -> None:
    client, stubber = sts
    clock = Clock()
    credentials = assume_role_credentials(client, READER, clock)
    _answer(stubber, "ASIAFIRSTKEY0001", T0)
    credentials.get_frozen_credentials()
    clock.now = T0 + timedelta(minutes=48)  # advisory: a failure leaves the current credentials in use
    stubber.add_client_error("assume_role", "Throttling", "Rate exceeded", 400)
    assert credentials.get_frozen_credentials().access_key == "ASIAFIRSTKEY0001"
    clock.now = T0 + timedelta(minutes=51)  # mandatory: the caller gets the error
    stubber.add_client_error("assume_role", "AccessDenied", "not authorized to perform: sts:AssumeRole", 403)
    with pytest.raises(ClientError, match="AccessDenied"):
        credentials.get_frozen_credentials()
    _answer(stubber, "ASIATHIRDKEY0003", clock.now)  # and the next use tries again
    assert credentials.get_frozen_credentials().access_key == "ASIATHIRDKEY0003"


def test_a_role_session_has_only_the_roles_credentials(sts: tuple[Any, Stubber]) -> None:
    client, _ = sts
    credentials = assume_role_credentials(client, READER)
    session = role_session(Session(), credentials)
    assert session.get_credentials() is credentials


@pytest.fixture
def factory(monkeypatch: pytest.MonkeyPatch) -> ClientFactory:
    for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_STS_REGIONAL_ENDPOINTS", "legacy")  # would send us-east-2 to sts.amazonaws.com
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTASKROLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "task-role-secret-key")
    return ClientFactory(concurrency=2)


def test_a_roles_clients_are_its_own_and_created_once_per_service_region_and_role(factory: ClientFactory) -> None:
    own = factory.client("secretsmanager", "eu-west-1")
    as_reader = factory.client("secretsmanager", "eu-west-1", READER)
    assert as_reader is not own
    assert factory.client("secretsmanager", "eu-west-1", READER) is as_reader
    assert factory.secretsmanager("eu-west-1", READER) is as_reader
    assert factory.role_credentials(READER, "eu-west-1") is factory.role_credentials(READER, "eu-west-1")
    assert factory.role_credentials(READER, "us-east-2") is not factory.role_credentials(READER, "eu-west-1")


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-2"])
def test_assume_role_goes_to_the_sts_endpoint_of_the_clients_region(factory: ClientFactory, region: str) -> None:
    factory.client("ssm", region, READER)
    assert factory.client("sts", region).meta.endpoint_url == f"https://sts.{region}.amazonaws.com"


# --- the fetcher resolves a role's credentials before its calls, as the run's policy says ---------------------


class Credentials:
    """Stands in for a role's refreshable credentials: answers as told, records when it is asked."""

    def __init__(self, answers: list[BaseException | None], *, needed: bool = True) -> None:
        self.answers = answers
        self.needed = needed
        self.asked: list[str] = []

    def refresh_needed(self) -> bool:
        return self.needed

    def get_frozen_credentials(self) -> object:
        self.asked.append(threading.current_thread().name)
        answer = self.answers.pop(0)
        if answer is not None:
            raise answer
        self.needed = False
        return object()


class Clients:
    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self.created: list[tuple[str, str, str | None]] = []

    def client(self, service: str, region: str, role_arn: str | None = None) -> object:
        self.created.append((service, region, role_arn))
        return object()

    def role_credentials(self, role_arn: str, region: str) -> Credentials:
        assert (role_arn, region) == (READER, "eu-west-1")
        return self.credentials


def _fetch(credentials: Credentials, performed: list[str]) -> tuple[dict[Any, Any], list[dict[str, Any]]]:
    target = ParameterTarget("eu-west-1", "/p", role_arn=READER)

    def perform(_clients: object, call: Call, _max_bytes: int) -> dict[Any, Any]:
        performed.append(f"{call.operation} as {call.role_arn} after {len(credentials.asked)} resolution(s)")
        return {target: Fetched(SecretBytes(b"v"))}

    with capture_logs() as logs:
        fetcher = Fetcher(Clients(credentials), Deadline(60), structlog.get_logger(),  # type: ignore[arg-type]
                          concurrency=1, max_bytes=10, sleep=lambda _: None)
        outcomes = fetcher.run((Call("ssm", "eu-west-1", "GetParameters", (target,), READER),), perform)
    return outcomes, logs


def _denied() -> ClientError:
    return ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized to perform: sts:AssumeRole"},
                        "ResponseMetadata": {"HTTPStatusCode": 403}}, "AssumeRole")


def test_a_roles_credentials_are_resolved_off_the_pool_before_its_first_call() -> None:
    credentials, performed = Credentials([None]), []
    outcomes, _ = _fetch(credentials, performed)
    assert performed == [f"GetParameters as {READER} after 1 resolution(s)"]
    assert credentials.asked == ["credentials"]  # the resolving thread, not a worker of the pool
    assert len(outcomes) == 1


def test_credentials_with_time_left_are_not_resolved_again() -> None:
    credentials, performed = Credentials([], needed=False), []
    _fetch(credentials, performed)
    assert (credentials.asked, len(performed)) == ([], 1)


def test_a_throttled_assume_role_is_retried_and_a_refused_one_is_one_fetch_error() -> None:
    throttled = ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"},
                             "ResponseMetadata": {"HTTPStatusCode": 400}}, "AssumeRole")
    credentials, performed = Credentials([throttled, None]), []
    _, logs = _fetch(credentials, performed)
    retries = [(e["event_for"], e["role_arn"], e["error"]) for e in logs if e["event"] == "retry"]
    assert retries == [("assume_role", READER, "Throttling")]
    assert len(performed) == 1
    with pytest.raises(FetchError) as caught:
        _fetch(Credentials([_denied()]), performed)
    assert caught.value.message == (
        f"could not assume role {READER}: access denied (AccessDenied): the task role needs sts:AssumeRole on "
        f"{READER}, and that role's trust policy must allow the task role to assume it "
        "(AWS: not authorized to perform: sts:AssumeRole)")
    assert len(performed) == 1  # nothing was called with credentials that could not be had
