"""A role's credentials: what AssumeRole is asked, when botocore renews them, and which clients use them.

STS is botocore's real client with its ``Stubber`` (the request is validated against STS's model); the clock
is injected into the credentials, so an hour passes in microseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.session import Session
from botocore.stub import Stubber

from sidecar.assumed_role import DURATION_SECONDS, SESSION_NAME, assume_role_credentials, role_session
from sidecar.aws import ClientFactory

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
