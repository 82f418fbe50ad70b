"""Another account's secrets through an assumed role: the real ``secrets-sidecar`` against moto over HTTP.

moto takes the account of an AssumeRole answer from the role's ARN and registers the access key it returns in
that account (moto/sts/models.py ``_create_access_key``); every later request signed with that key is served
from that account (moto/core/responses.py ``get_current_account``, moto/iam/models.py ``get_account_id_from``).
The dummy keys of the default environment belong to moto's default account, 123456789012. So one moto server
holds three accounts, and the same parameter name can hold a different value in each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import ACCOUNT, DUMMY_CREDENTIALS, REGION, SecretValues, run_sidecar, sidecar_env
from tests.e2e.faultproxy import FaultProxy, Rule, query_error
from tests.e2e.helpers import api_calls, assert_failed, assert_ok, full_state, secrets_json

READER = "arn:aws:iam::111111111111:role/reader"
AUDITOR = "arn:aws:iam::222222222222:role/team/auditor"
DENIED = (
    f"User: arn:aws:sts::{ACCOUNT}:assumed-role/my-app-task/0123456789abcdef is not authorized to perform: "
    f"sts:AssumeRole on resource: {READER}"
)


class Account:
    """Seeding clients signed with credentials of a role in another account (or the default one)."""

    def __init__(self, endpoint: str, role_arn: str | None = None) -> None:
        keys = {"aws_access_key_id": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
        if role_arn is not None:
            sts = boto3.client("sts", region_name=REGION, endpoint_url=endpoint, **keys)
            credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName="seed")["Credentials"]
            keys = {"aws_access_key_id": credentials["AccessKeyId"],
                    "aws_secret_access_key": credentials["SecretAccessKey"],
                    "aws_session_token": credentials["SessionToken"]}  # type: ignore[dict-item]
        session = boto3.Session(region_name=REGION, **keys)
        self.secretsmanager = session.client("secretsmanager", endpoint_url=endpoint)
        self.ssm = session.client("ssm", endpoint_url=endpoint)
        self.sts = session.client("sts", endpoint_url=endpoint)

    def parameter(self, name: str, value: str | bytes) -> None:
        self.ssm.put_parameter(Name=name, Value=value, Type="SecureString")

    def secret(self, name: str, value: str | bytes) -> str:
        return str(self.secretsmanager.create_secret(Name=name, SecretString=value)["ARN"])


@pytest.fixture
def accounts(moto: str) -> dict[str | None, Account]:
    return {role: Account(moto, role) for role in (None, READER, AUDITOR)}


def _env(endpoint: str, outdir: Path, *entries: dict[str, Any], **settings: str) -> dict[str, str]:
    return sidecar_env(endpoint, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries), **settings)


def test_the_seeding_reaches_three_accounts(accounts: dict[str | None, Account]) -> None:
    """The premise of this file: moto answers each role's requests from the role's account."""
    assert [accounts[role].sts.get_caller_identity()["Account"] for role in (None, READER, AUDITOR)] == [
        ACCOUNT, "111111111111", "222222222222"]


def test_an_entrys_role_reads_the_roles_account_and_not_the_tasks(
    accounts: dict[str | None, Account], moto: str, outdir: Path, secret_values: SecretValues,
) -> None:
    for role, value in ((None, "task-account-value"), (READER, "reader-account-value")):
        accounts[role].parameter("/shared/api-key", str(secret_values.add(value)))
    arn = accounts[READER].secret("shared/db", str(secret_values.add("reader-account-db-pa55")))
    accounts[None].secret("shared/db", str(secret_values.add("task-account-db-pa55")))
    assert ":111111111111:secret:shared/db-" in arn
    result = run_sidecar(_env(
        moto, outdir,
        {"name": "mine", "valueFrom": "/shared/api-key"},
        {"name": "theirs", "valueFrom": "/shared/api-key", "roleArn": READER},
        {"name": "db", "valueFrom": arn, "roleArn": READER},
    ))
    assert_ok(result)
    assert (outdir / "mine").read_bytes() == b"task-account-value"
    assert (outdir / "theirs").read_bytes() == b"reader-account-value"
    assert (outdir / "db").read_bytes() == b"reader-account-db-pa55"
    # The same name through two sets of credentials is two fetches, each with its own client.
    assert sorted((c["operation"], c.get("role_arn", "")) for c in api_calls(result)) == [
        ("GetParameters", ""), ("GetParameters", READER), ("GetSecretValue", READER)]
    manifest = json.loads((outdir / "..manifest.json").read_bytes())
    assert {e["name"]: e["source"].get("roleArn") for e in manifest["entries"]} == {
        "mine": None, "theirs": READER, "db": READER}


def test_the_global_role_and_an_entrys_own_role_in_one_run(
    accounts: dict[str | None, Account], moto: str, outdir: Path, secret_values: SecretValues,
) -> None:
    for role in (None, READER, AUDITOR):
        accounts[role].parameter("/shared/api-key", str(secret_values.add(f"api-key-of-{role or 'the-task'}")))
        accounts[role].parameter("/shared/db-host", str(secret_values.add(f"host-of-{role or 'the-task'}")))
    result = run_sidecar(_env(
        moto, outdir,
        {"name": "global", "valueFrom": "/shared/api-key"},
        {"name": "own", "valueFrom": "/shared/api-key", "roleArn": AUDITOR},
        {"name": "url", "template": "{{ host }}/{{ key }}", "roleArn": AUDITOR,
         "inputs": {"host": "/shared/db-host", "key": "/shared/api-key"}},
        SIDECAR_ROLE_ARN=READER, SIDECAR_SECRET_short="/shared/db-host",
    ))
    assert_ok(result)
    assert (outdir / "global").read_bytes() == f"api-key-of-{READER}".encode()
    assert (outdir / "own").read_bytes() == f"api-key-of-{AUDITOR}".encode()
    assert (outdir / "url").read_bytes() == f"host-of-{AUDITOR}/api-key-of-{AUDITOR}".encode()
    assert (outdir / "short").read_bytes() == f"host-of-{READER}".encode()  # the global role reads shorthands too
    # One GetParameters per role: the auditor's two names (an entry's and a template's) share one call.
    assert sorted((c["operation"], c["ids"], c.get("role_arn")) for c in api_calls(result)) == [
        ("GetParameters", 2, READER), ("GetParameters", 2, AUDITOR)]


def test_a_refused_assume_role_is_exit_3_naming_the_role_and_the_permission(
    accounts: dict[str | None, Account], moto: str, proxy: FaultProxy, previous: Path, secret_values: SecretValues,
) -> None:
    accounts[READER].parameter("/shared/api-key", str(secret_values.add("never-read-value")))
    proxy.add(query_error("sts.AssumeRole", "AccessDenied", DENIED))
    before = full_state(previous)
    result = run_sidecar(_env(proxy.url, previous, {"name": "api_key", "valueFrom": "/shared/api-key"},
                              SIDECAR_ROLE_ARN=READER))
    failed = assert_failed(result, 3)
    assert failed["reason"] == (
        f"could not assume role {READER}: access denied (AccessDenied): the task role needs sts:AssumeRole on "
        f"{READER}, and that role's trust policy must allow the task role to assume it (AWS: {DENIED})"
    )
    assert full_state(previous) == before
    # Refused is permanent: asked once, and nothing was read with any other credentials instead.
    assert [s.operation for s in proxy.seen] == ["sts.AssumeRole"]
    assert api_calls(result) == []


def test_a_throttled_assume_role_is_retried_by_the_run_policy(
    accounts: dict[str | None, Account], moto: str, proxy: FaultProxy, outdir: Path, secret_values: SecretValues,
) -> None:
    accounts[READER].parameter("/shared/api-key", str(secret_values.add("value-after-throttling")))
    proxy.add(query_error("sts.AssumeRole", "Throttling", "Rate exceeded", status=400, count=2))
    result = run_sidecar(_env(proxy.url, outdir, {"name": "api_key", "valueFrom": "/shared/api-key"},
                              SIDECAR_ROLE_ARN=READER))
    assert_ok(result)
    assert (outdir / "api_key").read_bytes() == b"value-after-throttling"
    retries = [e for e in result.events if e["event"] == "retry"]
    assert [(e["event_for"], e["role_arn"], e["region"], e["attempt"]) for e in retries] == [
        ("assume_role", READER, REGION, 1), ("assume_role", READER, REGION, 2)]
    assert [s.action for s in proxy.seen if s.operation == "sts.AssumeRole"] == ["status 400", "status 400",
                                                                                  "forwarded"]


def test_an_answer_that_does_not_parse_is_retried_and_never_quoted(
    accounts: dict[str | None, Account], moto: str, proxy: FaultProxy, previous: Path, secret_values: SecretValues,
) -> None:
    """botocore's parser error quotes the whole answer, here an assumed role's secret key cut off mid-way: the run
    retries it like a network fault, then fails with one line that quotes nothing of it."""
    accounts[READER].parameter("/shared/api-key", str(secret_values.add("never-read-either")))
    key = str(secret_values.add("wJalrXUtnFEMI-cut-off-secret-key"))
    garbled = f"<AssumeRoleResponse><AssumeRoleResult><Credentials><SecretAccessKey>{key}".encode()
    proxy.add(Rule(operation="sts.AssumeRole", status=200, body=garbled, content_type="text/xml"))
    before = full_state(previous)
    result = run_sidecar(_env(proxy.url, previous, {"name": "api_key", "valueFrom": "/shared/api-key"},
                              SIDECAR_ROLE_ARN=READER, SIDECAR_TIMEOUT="8"))
    failed = assert_failed(result, 3)
    assert "ResponseParserError" in failed["reason"]
    assert READER in failed["reason"]
    assert "Traceback" not in result.stdout + result.stderr
    assert full_state(previous) == before
    assert len([s for s in proxy.seen if s.operation == "sts.AssumeRole"]) > 1  # retried, as the parser suggests


def test_a_role_arn_of_the_wrong_shape_is_exit_2_before_any_call(moto: str, proxy: FaultProxy, outdir: Path) -> None:
    user = "arn:aws:iam::111111111111:user/reader"
    result = run_sidecar(_env(proxy.url, outdir, {"name": "a", "valueFrom": "/shared/api-key", "roleArn": user}))
    failed = assert_failed(result, 2)
    assert failed["reason"] == (f"SIDECAR_SECRETS[0] ('a'): roleArn: {user!r} names an IAM user, not a role; "
                                "expected arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME")
    assert (proxy.seen, list(outdir.iterdir())) == ([], [])
