"""The least-privilege policy: each action exactly where the planner makes its call, on exactly its resources."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.aws_errors import PERMISSION, failure_for
from sidecar.cli import main
from sidecar.errors import ConfigError
from sidecar.iam_policy import SECRET_SUFFIX, Scope, policies, required_calls, secret_resources
from sidecar.iam_policy_command import iam_policy_command
from sidecar.plan import Operation
from sidecar.references import ObjectTarget, ParameterTarget, Reference, SecretTarget, Target
from sidecar.settings.load import settings_from
from sidecar.settings.model import Entry, Settings
from tests.iam_wildcards import iam_matches

ACCOUNT = "123456789012"
OTHER = "210987654321"
SM = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def settings(*value_froms: str, **env: str) -> Settings:
    entries = [{"name": f"e{i}", "valueFrom": v} for i, v in enumerate(value_froms)]
    environ = {"AWS_REGION": "eu-west-1", "SIDECAR_SECRETS": json.dumps(entries), **env}
    return settings_from({}, environ, {}, process_uid=1000, process_gid=1000)


def statements(*value_froms: str, scope: Scope | None = None, **env: str) -> dict[str, dict[str, Any]]:
    document = policies([settings(*value_froms, **env)], scope or Scope(ACCOUNT)).task_role
    assert document["Version"] == "2012-10-17"
    return {s["Action"]: s for s in document["Statement"]}


def resources(statement: dict[str, Any]) -> list[str]:
    resource = statement["Resource"]
    return [resource] if isinstance(resource, str) else list(resource)


def test_every_operation_the_planner_can_make_has_its_action() -> None:
    assert set(get_args(Operation)) <= set(PERMISSION)


def test_a_complete_secret_arn_is_granted_exactly_and_a_partial_one_with_the_six_character_wildcard() -> None:
    granted = statements(f"{SM}prod/db-AbCdEf:password::", f"{SM}prod/api")
    assert resources(granted["secretsmanager:GetSecretValue"]) == [f"{SM}prod/api-??????", f"{SM}prod/db-AbCdEf"]
    # Secrets Manager takes an id ending in a hyphen and six characters as a complete ARN: so does the policy.
    assert secret_resources(f"{SM}my-secret") == (f"{SM}my-secret",)
    assert secret_resources(f"{SM}my-secrets") == (f"{SM}my-secrets-??????",)


def test_run_once_without_batching_needs_only_get_secret_value() -> None:
    granted = statements(f"{SM}a", f"{SM}b")
    assert set(granted) == {"secretsmanager:GetSecretValue"}
    assert granted["secretsmanager:GetSecretValue"]["Effect"] == "Allow"


@pytest.mark.parametrize(("count", "sm_batch", "concurrency", "batched"), [
    (8, "auto", "8", False),  # one round of the pool: single calls
    (9, "auto", "8", True),
    (2, "always", "8", True),
    (30, "never", "8", False),
    (3, "auto", "2", True),
])
def test_batch_get_secret_value_only_when_the_planner_batches(
    count: int, sm_batch: str, concurrency: str, batched: bool
) -> None:
    granted = statements(*(f"{SM}s{i}" for i in range(count)),
                         SIDECAR_SM_BATCH=sm_batch, SIDECAR_CONCURRENCY=concurrency)
    assert ("secretsmanager:BatchGetSecretValue" in granted) is batched
    if batched:
        # No resource type: "*"; each secret is still authorised against GetSecretValue, granted per secret.
        assert granted["secretsmanager:BatchGetSecretValue"]["Resource"] == "*"
    assert len(resources(granted["secretsmanager:GetSecretValue"])) == count


def test_pinned_secret_versions_are_never_batched_so_need_no_batch_action() -> None:
    pinned = [f"{SM}s{i}::AWSPREVIOUS:" for i in range(12)]
    assert "secretsmanager:BatchGetSecretValue" not in statements(*pinned)


def test_refresh_mode_checks_awscurrent_with_the_batch_and_a_stage_with_describe_secret() -> None:
    version = "9d4cb84b-ad69-40c0-a0ab-cead3aabbccd"
    value_froms = (f"{SM}moving", f"{SM}fixed:::{version}", f"{SM}staged::AWSPENDING:", "s3://bucket/conf.json",
                   "/prod/p")
    assert "secretsmanager:BatchGetSecretValue" not in statements(*value_froms)
    granted = statements(*value_froms, SIDECAR_REFRESH_INTERVAL="300")
    # AWSCURRENT is checked twenty to a BatchGetSecretValue ("*", then GetSecretValue per secret, as fetched).
    assert granted["secretsmanager:BatchGetSecretValue"]["Resource"] == "*"
    # Only a stage pin needs DescribeSecret; a version pin never changes and is not checked.
    assert resources(granted["secretsmanager:DescribeSecret"]) == [f"{SM}staged-??????"]
    # The other checks need what the fetch needs: GetParameters without decryption, HeadObject (s3:GetObject).
    assert set(granted) == {"secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue",
                            "secretsmanager:DescribeSecret", "ssm:GetParameters", "s3:GetObject"}


def test_refresh_mode_with_sm_batch_never_checks_with_describe_secret_only() -> None:
    granted = statements(f"{SM}moving", SIDECAR_REFRESH_INTERVAL="300", SIDECAR_SM_BATCH="never")
    assert set(granted) == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
    assert resources(granted["secretsmanager:DescribeSecret"]) == [f"{SM}moving-??????"]


def test_parameters_are_granted_by_arn_without_their_selector() -> None:
    granted = statements("/prod/db:3", "/prod/db:live", "plain", f"arn:aws:ssm:us-east-1:{OTHER}:parameter/shared/x:2")
    assert resources(granted["ssm:GetParameters"]) == [
        f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/plain",
        f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/prod/db",
        f"arn:aws:ssm:us-east-1:{OTHER}:parameter/shared/x",
    ]


def test_a_parameter_named_without_an_arn_needs_the_task_account() -> None:
    with pytest.raises(ConfigError, match=r"parameter /prod/db in eu-west-1 is named without an ARN.*--account"):
        statements("/prod/db", scope=Scope())
    # Named by ARN, nothing is missing.
    assert statements(f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/prod/db", scope=Scope())


def test_public_parameters_belong_to_no_customer_account() -> None:
    granted = statements("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64", scope=Scope())
    assert resources(granted["ssm:GetParameters"]) == [
        "arn:aws:ssm:eu-west-1:*:parameter/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    ]


def test_a_reference_to_a_secret_through_parameter_store_needs_both_services() -> None:
    granted = statements("/aws/reference/secretsmanager/prod/db")
    assert resources(granted["ssm:GetParameters"]) == [
        f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/aws/reference/secretsmanager/prod/db"]
    # Parameter Store honours the secret's permissions: the name gets the suffix wildcard.
    assert resources(granted["secretsmanager:GetSecretValue"]) == [f"{SM}prod/db-??????"]


def test_objects_are_granted_exactly_and_a_pinned_version_needs_get_object_version() -> None:
    granted = statements("s3://bucket/app/conf.json", "s3://bucket/app/cert.pem?versionId=v1")
    assert granted["s3:GetObject"]["Resource"] == "arn:aws:s3:::bucket/app/conf.json"
    assert granted["s3:GetObjectVersion"]["Resource"] == "arn:aws:s3:::bucket/app/cert.pem"


def test_wildcard_characters_of_an_object_key_are_written_as_literals() -> None:
    granted = statements("s3://bucket/a*b?c$d")
    assert granted["s3:GetObject"]["Resource"] == "arn:aws:s3:::bucket/a${*}b${?}c${$}d"


def test_china_and_govcloud_regions_use_their_partitions() -> None:
    granted = statements("s3://bucket/k", "/p", SIDECAR_REGION="cn-north-1")
    assert granted["s3:GetObject"]["Resource"] == "arn:aws-cn:s3:::bucket/k"
    assert resources(granted["ssm:GetParameters"]) == [f"arn:aws-cn:ssm:cn-north-1:{ACCOUNT}:parameter/p"]
    granted = statements("/p", SIDECAR_REGION="us-gov-west-1", scope=Scope(ACCOUNT, (KEY,)))
    assert granted["kms:Decrypt"]["Condition"]["StringEquals"]["kms:ViaService"] == ["ssm.us-gov-west-1.amazonaws.com"]


def test_kms_decrypt_only_on_the_given_keys_and_only_through_the_services_that_decrypt() -> None:
    value_froms = (f"{SM}a", "/p", f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:b")
    result = policies([settings(*value_froms)], Scope(ACCOUNT))
    assert "kms:Decrypt" not in {s["Action"] for s in result.task_role["Statement"]}
    assert any("--kms-key" in note for note in result.notes)
    granted = statements(*value_froms, scope=Scope(ACCOUNT, (KEY,)))
    assert granted["kms:Decrypt"]["Resource"] == KEY
    assert granted["kms:Decrypt"]["Condition"] == {"StringEquals": {"kms:ViaService": [
        "secretsmanager.eu-west-1.amazonaws.com", "secretsmanager.us-east-1.amazonaws.com",
        "ssm.eu-west-1.amazonaws.com"]}}


@pytest.mark.parametrize(("scope", "message"), [
    ({"account": "12345"}, "--account '12345': an AWS account id is 12 digits"),
    ({"kms_keys": ("alias/aws/ssm",)}, "--kms-key 'alias/aws/ssm': an alias does not grant kms:Decrypt on its key"),
    ({"kms_keys": (f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/app",)}, "an alias does not grant kms:Decrypt"),
    ({"kms_keys": ("1234abcd-12ab-34cd-56ef-1234567890ab",)}, "expected a KMS key ARN"),
])
def test_the_scope_is_validated(scope: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Scope(**scope)


def test_a_secret_of_another_account_is_noted_for_its_resource_policy() -> None:
    other = f"arn:aws:secretsmanager:eu-west-1:{OTHER}:secret:shared"
    result = policies([settings(other)], Scope(ACCOUNT))
    assert any(f"is in account {OTHER}" in note and "resource policy" in note for note in result.notes)


# --- the policy covers every call, property-tested -----------------------------------------------------------

NAMES = st.text(alphabet="abcXYZ019/_-", min_size=1, max_size=8).filter(lambda n: n.strip("/") == n and "//" not in n)
REFERENCES = st.one_of(
    NAMES.map(lambda n: f"{SM}{n}"),
    NAMES.map(lambda n: f"/{n}"),
    NAMES.map(lambda n: f"s3://bucket/{n}"),
    NAMES.map(lambda n: f"s3://bucket/{n}?versionId=v1"),
)



@given(st.lists(REFERENCES, min_size=1, max_size=25, unique=True), st.sampled_from(["auto", "always", "never"]),
       st.booleans())
def test_every_call_of_every_plan_is_allowed_on_the_real_arn(
    value_froms: list[str], sm_batch: str, refresh: bool
) -> None:
    env = {"SIDECAR_SM_BATCH": sm_batch, **({"SIDECAR_REFRESH_INTERVAL": "60"} if refresh else {})}
    configuration = settings(*value_froms, **env)
    document = policies([configuration], Scope(ACCOUNT)).task_role
    allowed = {(s["Action"], r) for s in document["Statement"] for r in resources(s)}
    for call in required_calls(configuration):
        action = PERMISSION[call.operation]
        for target in call.targets:
            # The ARN IAM evaluates: a secret's carries its random suffix (a reference ending with one is that
            # secret's complete ARN), an object's its key as it is.
            if call.operation == "BatchGetSecretValue":
                assert ("secretsmanager:BatchGetSecretValue", "*") in allowed
                action = "secretsmanager:GetSecretValue"
            real = {
                "secretsmanager": lambda t: t.secret_id if SECRET_SUFFIX.search(t.secret_id)
                else f"{t.secret_id}-Ab12Cd",
                "ssm": lambda t: f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/{t.base_name.lstrip('/')}",
                "s3": lambda t: f"arn:aws:s3:::{t.bucket}/{t.key}",
            }[target.service](target)
            wanted = "s3:GetObjectVersion" if call.operation == "GetObject" and getattr(target, "version_id", None) \
                else action
            assert any(a == wanted and iam_matches(r, real) for a, r in allowed), (wanted, real, document)


# --- the command ------------------------------------------------------------------------------------------


def _run(argv: list[str], environ: dict[str, str] | None = None,
         capfd: pytest.CaptureFixture[str] | None = None) -> tuple[int, str, str]:
    assert capfd is not None
    code = main(["iam-policy", *argv], {"AWS_REGION": "eu-west-1", **(environ or {})})
    out, err = capfd.readouterr()
    return code, out, err


def test_the_command_prints_the_task_role_policy(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["--secrets", json.dumps([{"name": "a", "valueFrom": "/prod/a"}]), "--account", ACCOUNT],
                          capfd=capfd)
    assert code == 0, err
    assert json.loads(out)["Statement"][0]["Resource"] == f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/prod/a"
    assert err.startswith("note: no kms:Decrypt statement")


def test_the_command_as_json_has_one_policy_per_principal(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--json"], {"SIDECAR_SECRET_a": f"{SM}a"}, capfd=capfd)
    assert code == 0
    document = json.loads(out)
    assert set(document) == {"taskRole", "roles"}
    assert document["roles"] == {}
    assert document["taskRole"]["Statement"][0]["Resource"] == f"{SM}a-??????"


def test_the_command_reads_a_config_file_as_run_does(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"secrets": [{"name": "a", "valueFrom": "s3://bkt/k"}], "refreshInterval": 60}))
    code, out, _ = _run(["--config-file", str(config)], capfd=capfd)
    assert code == 0
    assert json.loads(out)["Statement"][0]["Action"] == "s3:GetObject"


@pytest.mark.parametrize(("argv", "environ", "message"), [
    (["--secrets", json.dumps([{"name": "a", "valueFrom": "/p"}])], {},
     "secrets-sidecar iam-policy: parameter /p in eu-west-1 is named without an ARN"),
    ([], {}, "secrets-sidecar iam-policy: no secrets configured"),
    (["--kms-key", "nope"], {"SIDECAR_SECRET_a": f"{SM}a"}, "--kms-key 'nope': expected a KMS key ARN"),
])
def test_the_command_fails_with_one_line_and_exit_2(
    argv: list[str], environ: dict[str, str], message: str, capfd: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(argv, environ, capfd=capfd)
    assert (code, out) == (2, "")
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


# --- from a task definition ---------------------------------------------------------------------------------


def _task(*environment: tuple[str, str], command: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    sidecar: dict[str, Any] = {
        "name": "secrets-sidecar", "image": "ghcr.io/ecs-secrets-sidecar/ecs-secrets-sidecar:0.1.0",
        "essential": False, "environment": [{"name": n, "value": v} for n, v in environment],
    }
    if command is not None:
        sidecar["command"] = command
    return {"family": "app", "taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/app-task", **fields,
            "containerDefinitions": [sidecar, {"name": "app", "image": "app:1", "essential": True}]}


def _from_task(task: dict[str, Any], tmp_path: Path, *argv: str, environ: dict[str, str] | None = None,
               flags: dict[str, str] | None = None) -> tuple[int, str, str]:
    path = tmp_path / "task.json"
    path.write_text(json.dumps(task))
    out, err = io.StringIO(), io.StringIO()
    code = iam_policy_command(flags or {}, environ or {}, task_definition=str(path), as_json="--json" in argv,
                              stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_a_task_definition_gives_the_settings_and_the_task_role_gives_the_account(tmp_path: Path) -> None:
    task = _task(("SIDECAR_SECRET_db", "/prod/db"), ("SIDECAR_REFRESH_INTERVAL", "300"),
                 command=["--secrets", json.dumps([{"name": "k", "valueFrom": f"{SM}k"}])])
    code, out, err = _from_task(task, tmp_path, environ={"AWS_REGION": "us-east-2"})
    assert code == 0, err
    granted = {s["Action"]: s for s in json.loads(out)["Statement"]}
    assert granted["ssm:GetParameters"]["Resource"] == f"arn:aws:ssm:us-east-2:{ACCOUNT}:parameter/prod/db"
    assert granted["secretsmanager:BatchGetSecretValue"]["Resource"] == "*"  # the refresh check of k
    assert granted["secretsmanager:GetSecretValue"]["Resource"] == f"{SM}k-??????"


def test_the_containers_own_region_wins_over_the_callers(tmp_path: Path) -> None:
    task = _task(("SIDECAR_SECRET_db", "/prod/db"), ("AWS_REGION", "ap-south-1"))
    code, out, _ = _from_task(task, tmp_path, environ={"AWS_REGION": "us-east-2"})
    assert code == 0
    assert ":ssm:ap-south-1:" in json.loads(out)["Statement"][0]["Resource"]


@pytest.mark.parametrize(("task", "flags", "message"), [
    (_task(("SIDECAR_SECRET_db", "/prod/db"), taskRoleArn=None), {}, "is named without an ARN"),
    (_task(("SIDECAR_SECRET_db", "/prod/db"), ("SIDECAR_CONFIG_FILE", "/etc/sidecar.json")), {},
     "container secrets-sidecar reads a config file inside its image"),
    (_task(("SIDECAR_SECRET_db", "/prod/db")), {"outputDir": "/x"},
     "with --task-definition, the settings come from the task definition: --output-dir does not apply"),
    ({"family": "app", "containerDefinitions": [{"name": "app", "image": "app:1"}]}, {},
     "the task definition has no secrets-sidecar container"),
    (_task(("SIDECAR_SECRETS", "[")), {}, "container secrets-sidecar: SIDECAR_SECRETS is not valid JSON"),
])
def test_a_task_definition_the_policy_cannot_be_read_from_is_exit_2(
    task: dict[str, Any], flags: dict[str, str], message: str, tmp_path: Path
) -> None:
    code, out, err = _from_task(task, tmp_path, environ={"AWS_REGION": "eu-west-1"}, flags=flags)
    assert (code, out) == (2, "")
    assert message in err, err


# --- roles ----------------------------------------------------------------------------------------------------

ROLE = f"arn:aws:iam::{OTHER}:role/readers/secrets-reader"


def _with_roles(*targets: Target, **fields: Any) -> Settings:
    entries = tuple(Entry(f"e{i}", "-", Reference(t), 0o400, 0, 0) for i, t in enumerate(targets))
    return Settings(entries=entries, **fields)


def test_a_roles_entries_go_in_the_roles_policy_and_the_task_role_may_only_assume_it() -> None:
    mine = SecretTarget("eu-west-1", f"{SM}mine")
    theirs = SecretTarget("eu-west-1", f"arn:aws:secretsmanager:eu-west-1:{OTHER}:secret:theirs", role_arn=ROLE)
    parameter = ParameterTarget("eu-west-1", "/shared/p", role_arn=ROLE)
    result = policies([_with_roles(mine, theirs, parameter)], Scope(ACCOUNT))
    task = {s["Action"]: s for s in result.task_role["Statement"]}
    assert task["sts:AssumeRole"]["Resource"] == ROLE
    assert task["secretsmanager:GetSecretValue"]["Resource"] == f"{SM}mine-??????"
    assert list(result.roles) == [ROLE]
    role = {s["Action"]: s for s in result.roles[ROLE]["Statement"]}
    assert set(role) == {"secretsmanager:GetSecretValue", "ssm:GetParameters"}
    theirs_pattern = f"arn:aws:secretsmanager:eu-west-1:{OTHER}:secret:theirs-??????"
    assert role["secretsmanager:GetSecretValue"]["Resource"] == theirs_pattern
    # A parameter named without an ARN is read in the account of the role that reads it.
    assert role["ssm:GetParameters"]["Resource"] == f"arn:aws:ssm:eu-west-1:{OTHER}:parameter/shared/p"
    assert result.as_json() == {"taskRole": result.task_role, "roles": {ROLE: result.roles[ROLE]}}


def test_batching_and_refresh_are_decided_per_role_as_the_planner_does() -> None:
    targets = [SecretTarget("eu-west-1", f"{SM}s{i}", role_arn=ROLE if i % 2 else None) for i in range(6)]
    staged = SecretTarget("eu-west-1", f"{SM}staged", "AWSPENDING", role_arn=ROLE)
    result = policies([_with_roles(*targets, staged, sm_batch="auto", concurrency=2, refresh_interval=60.0)],
                      Scope(ACCOUNT))
    task = {s["Action"] for s in result.task_role["Statement"]}
    role = {s["Action"] for s in result.roles[ROLE]["Statement"]}
    assert "secretsmanager:BatchGetSecretValue" in task and "secretsmanager:BatchGetSecretValue" in role
    # Only the role's stage-pinned secret is checked with DescribeSecret, so only the role is granted it.
    assert "secretsmanager:DescribeSecret" in role and "secretsmanager:DescribeSecret" not in task


def test_a_denied_reason_names_the_action_that_was_missing_on_one_line() -> None:
    pinned = ObjectTarget("eu-west-1", "bucket", "cert.pem", "v1")
    failure = failure_for("AccessDenied", "<Error>\n  <Code>AccessDenied</Code>\n</Error>", pinned, "GetObject")
    assert "the task role lacks s3:GetObjectVersion on object s3://bucket/cert.pem?versionId=v1" in failure.reason
    assert "\n" not in failure.reason
    assert "lacks s3:GetObject on" in failure_for("AccessDenied", "", ObjectTarget("eu-west-1", "bucket", "k"),
                                                   "GetObject").reason


def test_the_documented_example_is_what_the_command_prints(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text[text.index("## Least privilege from the configuration"):]
    config, printed = re.findall(r"```json\n(.*?)```", section, re.S)[:2]
    command = re.search(r"`(secrets-sidecar iam-policy --config-file .*?)`", section, re.S)
    assert command is not None
    words = command.group(1).split()
    (tmp_path / "sidecar.json").write_text(config)
    out, err = io.StringIO(), io.StringIO()
    code = iam_policy_command({"configFile": str(tmp_path / "sidecar.json")}, {},
                              account=words[words.index("--account") + 1],
                              kms_keys=[words[words.index("--kms-key") + 1]], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert json.loads(out.getvalue()) == json.loads(printed)


# --- parameter trees and region failover ------------------------------------------------------------------


def _tree_settings(*entries: dict[str, Any], **env: str) -> Settings:
    environ = {"AWS_REGION": "eu-west-1", "SIDECAR_SECRETS": json.dumps(list(entries)), **env}
    return settings_from({}, environ, {}, process_uid=1000, process_gid=1000)


def test_a_parameter_tree_is_granted_on_its_path() -> None:
    configuration = _tree_settings({"name": "app", "parametersByPath": "/prod/app/"},
                                   {"name": "top", "parametersByPath": "/prod", "recursive": False})
    granted = {s["Action"]: s for s in policies([configuration], Scope(ACCOUNT)).task_role["Statement"]}
    assert set(granted) == {"ssm:GetParametersByPath"}
    assert resources(granted["ssm:GetParametersByPath"]) == [
        f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/prod", f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/prod/app"]
    with pytest.raises(ConfigError, match="is a path, which takes no ARN, so it is read in the task's own account"):
        policies([configuration], Scope())


def test_a_failover_region_is_granted_the_same_reads_on_the_replicas() -> None:
    configuration = _tree_settings(
        {"name": "db", "valueFrom": f"{SM}prod/db-AbCdEf"},
        {"name": "api", "valueFrom": "/prod/api", "failoverRegion": "us-east-1"},
        {"name": "s3", "valueFrom": "s3://bucket/k"},
        SIDECAR_FAILOVER_REGION="eu-central-1", SIDECAR_REFRESH_INTERVAL="60")
    document = policies([configuration], Scope(ACCOUNT, (KEY,))).task_role
    granted = {s["Action"]: s for s in document["Statement"]}
    replica = f"arn:aws:secretsmanager:eu-central-1:{ACCOUNT}:secret:prod/db-AbCdEf"  # the same suffix
    assert resources(granted["secretsmanager:GetSecretValue"]) == [replica, f"{SM}prod/db-AbCdEf"]
    assert granted["secretsmanager:BatchGetSecretValue"]["Resource"] == "*"  # the check fails over as a batch
    assert "secretsmanager:DescribeSecret" not in granted
    assert resources(granted["ssm:GetParameters"]) == [
        f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/prod/api", f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/prod/api"]
    assert granted["s3:GetObject"]["Resource"] == "arn:aws:s3:::bucket/k"
    assert granted["kms:Decrypt"]["Condition"]["StringEquals"]["kms:ViaService"] == [
        "s3.eu-west-1.amazonaws.com", "secretsmanager.eu-central-1.amazonaws.com",
        "secretsmanager.eu-west-1.amazonaws.com", "ssm.eu-west-1.amazonaws.com", "ssm.us-east-1.amazonaws.com"]


def test_with_a_role_for_every_entry_the_task_role_may_only_assume_it() -> None:
    configuration = _tree_settings({"name": "db", "valueFrom": "/shared/db"},
                                   {"name": "tree", "parametersByPath": "/shared/app"}, SIDECAR_ROLE_ARN=ROLE)
    result = policies([configuration], Scope())  # no account needed: the role's is used
    assert result.task_role["Statement"] == [{"Sid": "AssumeTheRolesEntriesAreReadWith", "Effect": "Allow",
                                              "Action": "sts:AssumeRole", "Resource": ROLE}]
    role = {s["Action"]: s for s in result.roles[ROLE]["Statement"]}
    assert role["ssm:GetParameters"]["Resource"] == f"arn:aws:ssm:eu-west-1:{OTHER}:parameter/shared/db"
    assert role["ssm:GetParametersByPath"]["Resource"] == f"arn:aws:ssm:eu-west-1:{OTHER}:parameter/shared/app"


def test_an_optional_object_is_noted_for_the_403_s3_gives_without_list_bucket() -> None:
    entries = [{"name": "maybe", "valueFrom": "s3://bucket/maybe.json", "optional": True},
               {"name": "sure", "valueFrom": "s3://bucket/sure.json"}]
    result = policies([_tree_settings(*entries)], Scope(ACCOUNT))
    listed = [note for note in result.notes if "s3:ListBucket" in note]
    assert len(listed) == 1
    assert "entry 'maybe' is optional" in listed[0]
    assert "arn:aws:s3:::bucket" in listed[0]
    assert "s3:ListBucket" not in {s["Action"] for s in result.task_role["Statement"]}


def test_a_task_definition_is_read_from_stdin_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    described = {"taskDefinition": _task(("SIDECAR_SECRET_db", "/prod/db"))}  # describe-task-definition output
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(described).encode())))
    out, err = io.StringIO(), io.StringIO()
    code = iam_policy_command({"region": "eu-west-1"}, {}, task_definition="-", stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert json.loads(out.getvalue())["Statement"][0]["Resource"] == (
        f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/prod/db")


def test_an_unreadable_task_definition_is_exit_2_in_one_line(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = iam_policy_command({}, {}, task_definition=str(tmp_path / "missing.json"), stdout=out, stderr=err)
    assert (code, out.getvalue()) == (2, "")
    missing = tmp_path / "missing.json"
    assert err.getvalue() == f"secrets-sidecar iam-policy: cannot read {missing}: No such file or directory\n"
