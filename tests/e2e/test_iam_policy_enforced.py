"""The generated policy is enough and every statement of it is needed: the real sidecar runs against a moto
server that enforces IAM, signed by an IAM user holding exactly that policy (with an assumed role: the role
holding its own generated policy), once and in refresh mode.

moto enforces IAM once ``/moto-api/reset-auth`` sets how many requests go unchecked (process-global, so this
module runs a moto server of its own in another process). What it checks, read from moto/core/authorization.py
and moto/iam/access_control.py, and so what these tests can prove:

- the action of every request (``secretsmanager:GetSecretValue``, ``ssm:GetParameters``, ``s3:GetObject``,
  ``s3:GetObjectVersion`` for a ``versionId``...): enforced;
- S3 resources: enforced, against ``arn:aws:s3:::BUCKET/KEY``;
- Secrets Manager and SSM resources: not enforced (moto authorises those requests against ``*``), so the
  policy is handed to moto with ``*`` in their statements, and the test checks separately that every resource
  of the policy matches the ARN moto gave the secret or parameter, with IAM's wildcard rules (``-??????``);
- per-secret ``GetSecretValue`` inside ``BatchGetSecretValue``: not enforced;
- conditions (``kms:ViaService``) and KMS on a service's behalf: not evaluated, so the ``kms:Decrypt``
  statement is left out here; parliament checks its shape (tests/lint/test_iam_policy_parliament.py).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import (
    ACCOUNT,
    DUMMY_CREDENTIALS,
    REGION,
    SIDECAR,
    SecretValues,
    run_captured,
    run_sidecar,
    sidecar_env,
)
from tests.e2e.helpers import assert_failed, assert_ok, secrets_json
from tests.iam_wildcards import iam_matches

BUCKET = "app-config-bucket"
NOT_ENFORCED_BY_MOTO = ("secretsmanager:", "ssm:")  # authorised against "*" whatever the policy's resource


@pytest.fixture(scope="module")
def enforcing_endpoint() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(  # not the sidecar: it prints no value, and must outlive each test
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _post(endpoint, "/moto-api/reset", b"")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def _post(endpoint: str, path: str, body: bytes) -> None:
    # text/plain: a form content type would hand moto an empty body
    request = urllib.request.Request(endpoint + path, data=body, method="POST",  # noqa: S310 - loopback
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


class Moto:
    """A moto server with empty state and IAM not enforced until ``enforce``."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        session = boto3.Session(region_name=REGION, aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
        self.secretsmanager = session.client("secretsmanager", endpoint_url=endpoint)
        self.ssm = session.client("ssm", endpoint_url=endpoint)
        self.s3 = session.client("s3", endpoint_url=endpoint)
        self.iam = session.client("iam", endpoint_url=endpoint)

    def enforce(self) -> None:
        _post(self.endpoint, "/moto-api/reset-auth", b"0")


@pytest.fixture
def moto_iam(enforcing_endpoint: str) -> Iterator[Moto]:
    _post(enforcing_endpoint, "/moto-api/reset-auth", b"inf")
    _post(enforcing_endpoint, "/moto-api/reset", b"")
    yield Moto(enforcing_endpoint)
    _post(enforcing_endpoint, "/moto-api/reset-auth", b"inf")


# --- the pieces -----------------------------------------------------------------------------------------------


def _seed(moto: Moto, secret_values: SecretValues) -> tuple[list[dict[str, str]], dict[str, str]]:
    """Entries of every kind, and the ARN moto gave each secret and parameter (what IAM evaluates)."""
    db = moto.secretsmanager.create_secret(
        Name="prod/db", SecretString=json.dumps({"password": secret_values.add("db-pa55-enforced")}))
    api = moto.secretsmanager.create_secret(Name="prod/api", SecretString=secret_values.add("api-k3y-enforced"))
    moto.ssm.put_parameter(Name="/prod/token", Value=secret_values.add("t0ken-enforced"), Type="SecureString")
    moto.ssm.put_parameter(Name="/prod/tree/a", Value=secret_values.add("tr33-enforced"), Type="SecureString")
    moto.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    moto.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    moto.s3.put_object(Bucket=BUCKET, Key="app/conf.json", Body=secret_values.add("c0nf-enforced").encode())
    pinned = moto.s3.put_object(Bucket=BUCKET, Key="app/cert.pem", Body=secret_values.add("c3rt-enforced").encode())
    partial_api = api["ARN"][: -len("-AbCdEf")]
    entries = [
        {"name": "db_password", "valueFrom": f"{db['ARN']}:password::"},
        {"name": "api_key", "valueFrom": partial_api},
        {"name": "token", "valueFrom": "/prod/token"},
        {"name": "tree", "parametersByPath": "/prod/tree"},
        {"name": "conf.json", "valueFrom": f"s3://{BUCKET}/app/conf.json"},
        {"name": "cert.pem", "valueFrom": f"s3://{BUCKET}/app/cert.pem?versionId={pinned['VersionId']}"},
    ]
    real = {
        "db": db["ARN"], "api": api["ARN"],
        "token": moto.ssm.get_parameter(Name="/prod/token")["Parameter"]["ARN"],
    }
    return entries, real


def _generate(env: dict[str, str]) -> dict[str, Any]:
    completed = run_captured([SIDECAR, "iam-policy", "--json", "--account", ACCOUNT], env)
    assert completed.returncode == 0, completed.stderr.decode()
    return dict(json.loads(completed.stdout))


def _as_moto_enforces(document: dict[str, Any]) -> dict[str, Any]:
    statements = []
    for statement in document["Statement"]:
        if statement["Action"].startswith("kms:"):
            continue  # moto makes no KMS call on a service's behalf
        widened = {"Resource": "*"} if statement["Action"].startswith(NOT_ENFORCED_BY_MOTO) else {}
        statements.append({**statement, **widened})
    return {**document, "Statement": statements}


def _user_with(moto: Moto, document: dict[str, Any], secret_values: SecretValues) -> dict[str, str]:
    moto.iam.create_user(UserName="sidecar-task")
    moto.iam.put_user_policy(UserName="sidecar-task", PolicyName="generated", PolicyDocument=json.dumps(document))
    key = moto.iam.create_access_key(UserName="sidecar-task")["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": str(secret_values.add(key["SecretAccessKey"]))}



def _resources(statement: dict[str, Any]) -> list[str]:
    resource = statement["Resource"]
    return [resource] if isinstance(resource, str) else list(resource)


def _by_action(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Action"]: s for s in document["Statement"]}


# --- the tests ------------------------------------------------------------------------------------------------


def test_the_generated_policy_is_enough_for_every_kind_of_reference(
    moto_iam: Moto, tmp_path: Path, secret_values: SecretValues
) -> None:
    entries, real = _seed(moto_iam, secret_values)
    env = sidecar_env(moto_iam.endpoint, SIDECAR_OUTPUT_DIR=str(tmp_path), SIDECAR_SECRETS=secrets_json(*entries),
                      SIDECAR_SM_BATCH="always")
    policy = _generate(env)
    assert policy["roles"] == {}
    granted = _by_action(policy["taskRole"])
    assert set(granted) == {"secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue",
                            "ssm:GetParameters", "ssm:GetParametersByPath", "s3:GetObject", "s3:GetObjectVersion"}
    # The resources IAM would evaluate are the ARNs moto gave: the complete one exactly, the partial one by
    # its six-character wildcard, and nothing else.
    secrets = _resources(granted["secretsmanager:GetSecretValue"])
    assert secrets == [real["api"][: -len("-AbCdEf")] + "-??????", real["db"]]
    assert all(any(iam_matches(r, real[name]) for r in secrets) for name in ("db", "api"))
    assert _resources(granted["ssm:GetParameters"]) == [real["token"]]
    assert _resources(granted["ssm:GetParametersByPath"]) == [real["token"].replace("/token", "/tree")]

    user = _user_with(moto_iam, _as_moto_enforces(policy["taskRole"]), secret_values)
    moto_iam.enforce()
    result = run_sidecar({**env, **user})

    assert_ok(result)
    assert not [e for e in result.events if e.get("event") == "batch_denied"]
    assert (tmp_path / "db_password").read_bytes() == b"db-pa55-enforced"
    assert (tmp_path / "cert.pem").read_bytes() == b"c3rt-enforced"
    assert (tmp_path / "tree" / "a").read_bytes() == b"tr33-enforced"


@pytest.mark.parametrize(("removed", "entry", "reason"), [
    ("secretsmanager:GetSecretValue", "db_password", "the task role lacks secretsmanager:GetSecretValue"),
    ("ssm:GetParameters", "token", "the task role lacks ssm:GetParameters"),
    ("ssm:GetParametersByPath", "tree", "the task role lacks ssm:GetParametersByPath"),
    ("s3:GetObject", "conf.json", "the task role lacks s3:GetObject"),
    ("s3:GetObjectVersion", "cert.pem", "the task role lacks s3:GetObjectVersion"),
])
def test_without_any_one_statement_the_run_fails_naming_the_denied_action(
    removed: str, entry: str, reason: str, moto_iam: Moto, tmp_path: Path, secret_values: SecretValues
) -> None:
    entries, _ = _seed(moto_iam, secret_values)
    env = sidecar_env(moto_iam.endpoint, SIDECAR_OUTPUT_DIR=str(tmp_path), SIDECAR_SECRETS=secrets_json(*entries),
                      SIDECAR_SM_BATCH="never")
    policy = _as_moto_enforces(_generate(env)["taskRole"])
    assert removed in _by_action(policy)
    policy["Statement"] = [s for s in policy["Statement"] if s["Action"] != removed]

    user = _user_with(moto_iam, policy, secret_values)
    moto_iam.enforce()
    result = run_sidecar({**env, **user})

    assert_failed(result, 3, repr(entry), "access denied", reason)
    assert list(tmp_path.iterdir()) == []


def test_without_the_batch_statement_the_sidecar_falls_back_to_single_reads(
    moto_iam: Moto, tmp_path: Path, secret_values: SecretValues
) -> None:
    entries, _ = _seed(moto_iam, secret_values)
    env = sidecar_env(moto_iam.endpoint, SIDECAR_OUTPUT_DIR=str(tmp_path), SIDECAR_SECRETS=secrets_json(*entries),
                      SIDECAR_SM_BATCH="always")
    policy = _as_moto_enforces(_generate(env)["taskRole"])
    policy["Statement"] = [s for s in policy["Statement"] if s["Action"] != "secretsmanager:BatchGetSecretValue"]

    user = _user_with(moto_iam, policy, secret_values)
    moto_iam.enforce()
    result = run_sidecar({**env, **user})

    assert_ok(result)
    assert result.event("batch_denied")["level"] == "warning"


def test_an_s3_statement_for_another_key_does_not_read_this_one(
    moto_iam: Moto, tmp_path: Path, secret_values: SecretValues
) -> None:
    """moto enforces S3 resources: the object's exact ARN is what makes the read pass."""
    entries, _ = _seed(moto_iam, secret_values)
    env = sidecar_env(moto_iam.endpoint, SIDECAR_OUTPUT_DIR=str(tmp_path), SIDECAR_SECRETS=secrets_json(*entries))
    policy = _as_moto_enforces(_generate(env)["taskRole"])
    for statement in policy["Statement"]:
        if statement["Action"] == "s3:GetObject":
            statement["Resource"] = f"arn:aws:s3:::{BUCKET}/app/other.json"

    user = _user_with(moto_iam, policy, secret_values)
    moto_iam.enforce()
    result = run_sidecar({**env, **user})

    assert_failed(result, 3, "'conf.json'", "the task role lacks s3:GetObject")


# --- an entry read with another role --------------------------------------------------------------------------

ROLE = f"arn:aws:iam::{ACCOUNT}:role/secrets-reader"  # moto checks a trust policy only in the caller's account


def _role_with(moto: Moto, document: dict[str, Any]) -> None:
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/sidecar-task"}}]}
    moto.iam.create_role(RoleName="secrets-reader", AssumeRolePolicyDocument=json.dumps(trust))
    moto.iam.put_role_policy(RoleName="secrets-reader", PolicyName="generated", PolicyDocument=json.dumps(document))


def _role_setup(moto: Moto, tmp_path: Path, secret_values: SecretValues) -> tuple[dict[str, str], dict[str, Any]]:
    mine = moto.secretsmanager.create_secret(Name="task/own", SecretString=secret_values.add("own-val-enforced"))
    theirs = moto.secretsmanager.create_secret(Name="role/read", SecretString=secret_values.add("role-val-enforced"))
    entries = [{"name": "own", "valueFrom": mine["ARN"]},
               {"name": "through_role", "valueFrom": theirs["ARN"], "roleArn": ROLE}]
    env = sidecar_env(moto.endpoint, SIDECAR_OUTPUT_DIR=str(tmp_path), SIDECAR_SECRETS=secrets_json(*entries))
    return env, _generate(env)


def test_a_roles_entries_are_allowed_by_the_roles_policy_and_the_task_role_only_assumes_it(
    moto_iam: Moto, tmp_path: Path, secret_values: SecretValues
) -> None:
    env, policy = _role_setup(moto_iam, tmp_path, secret_values)
    task = _by_action(policy["taskRole"])
    assert set(task) == {"sts:AssumeRole", "secretsmanager:GetSecretValue"}
    assert task["sts:AssumeRole"]["Resource"] == ROLE
    assert ":secret:task/own-" in task["secretsmanager:GetSecretValue"]["Resource"]
    assert list(policy["roles"]) == [ROLE]
    assert ":secret:role/read-" in _by_action(policy["roles"][ROLE])["secretsmanager:GetSecretValue"]["Resource"]

    _role_with(moto_iam, _as_moto_enforces(policy["roles"][ROLE]))
    user = _user_with(moto_iam, _as_moto_enforces(policy["taskRole"]), secret_values)
    moto_iam.enforce()
    result = run_sidecar({**env, **user})

    assert_ok(result)
    assert (tmp_path / "through_role").read_bytes() == b"role-val-enforced"


@pytest.mark.parametrize(("principal", "reason"), [
    ("taskRole", f"the task role needs sts:AssumeRole on {ROLE}"),
    ("role", f"the role {ROLE} lacks secretsmanager:GetSecretValue"),
])
def test_without_the_assume_role_or_the_roles_own_statement_the_run_fails(
    principal: str, reason: str, moto_iam: Moto, tmp_path: Path, secret_values: SecretValues
) -> None:
    env, policy = _role_setup(moto_iam, tmp_path, secret_values)
    task, role = _as_moto_enforces(policy["taskRole"]), _as_moto_enforces(policy["roles"][ROLE])
    removed = {"taskRole": "sts:AssumeRole", "role": "secretsmanager:GetSecretValue"}[principal]
    for document in (task if principal == "taskRole" else role,):
        document["Statement"] = [s for s in document["Statement"] if s["Action"] != removed]
    if not role["Statement"]:
        role["Statement"] = [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]

    _role_with(moto_iam, role)
    user = _user_with(moto_iam, task, secret_values)
    moto_iam.enforce()
    result = run_sidecar({**env, **user})

    assert_failed(result, 3, reason)


# --- refresh mode -------------------------------------------------------------------------------------------


def _refresh_setup(moto: Moto, tmp_path: Path, secret_values: SecretValues) -> tuple[dict[str, str], dict[str, Any]]:
    current = moto.secretsmanager.create_secret(Name="app/current", SecretString=secret_values.add("cur-v1-enforced"))
    staged = moto.secretsmanager.create_secret(Name="app/staged", SecretString=secret_values.add("old-v1-enforced"))
    moto.secretsmanager.put_secret_value(SecretId=staged["ARN"], SecretString=secret_values.add("new-v2-enforced"))
    moto.ssm.put_parameter(Name="/app/flag", Value=secret_values.add("fl4g-enforced"), Type="SecureString")
    entries = [{"name": "current", "valueFrom": current["ARN"][: -len("-AbCdEf")]},
               {"name": "previous", "valueFrom": f"{staged['ARN']}::AWSPREVIOUS:"},
               {"name": "flag", "valueFrom": "/app/flag"}]
    env = sidecar_env(moto.endpoint, SIDECAR_OUTPUT_DIR=str(tmp_path), SIDECAR_SECRETS=secrets_json(*entries),
                      SIDECAR_REFRESH_INTERVAL="1")
    return env, _as_moto_enforces(_generate(env)["taskRole"])


@pytest.mark.slow
@pytest.mark.parametrize("removed", [None, "secretsmanager:DescribeSecret"])
def test_refresh_checks_are_allowed_by_the_generated_policy_and_need_its_describe_secret(
    removed: str | None, moto_iam: Moto, tmp_path: Path, secret_values: SecretValues
) -> None:
    """A refresh cycle checks an AWSCURRENT secret in a batch and a stage-pinned one with DescribeSecret."""
    from tests.refresh.test_refresh import Sidecar

    env, policy = _refresh_setup(moto_iam, tmp_path, secret_values)
    granted = _by_action(policy)
    assert {"secretsmanager:BatchGetSecretValue", "secretsmanager:DescribeSecret"} <= set(granted)
    policy["Statement"] = [s for s in policy["Statement"] if s["Action"] != removed]
    user = _user_with(moto_iam, policy, secret_values)
    moto_iam.enforce()

    sidecar = Sidecar({**env, **user})
    try:
        if removed is None:
            sidecar.wait_for("refresh_check", count=2)
            assert not [e for e in sidecar.events if e["event"] in ("refresh_failed", "batch_denied")]
        else:
            failed = sidecar.wait_for("refresh_failed")
            assert f"the task role lacks {removed}" in failed["reason"]
        assert (tmp_path / "previous").read_bytes() == b"old-v1-enforced"
    finally:
        assert sidecar.stop() == 0
