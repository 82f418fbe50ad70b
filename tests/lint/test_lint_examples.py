"""Every example under task-definitions/ is valid: for the linter, for botocore's model, for cfn-lint, for IAM."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.validate import validate_parameters

from sidecar.lint import lint
from sidecar.lint.model import check_register_input, input_shape

from .tasks import EXAMPLES

TASK_DEFINITIONS = sorted(EXAMPLES.glob("*.json"))
TEMPLATE = EXAMPLES / "cloudformation" / "sidecar-task.yaml"
IAM = EXAMPLES / "iam"


README = EXAMPLES.parent / "README.md"
SIDECAR = "secrets-sidecar"


def readme_task_definition() -> dict[str, Any]:
    """The task definition shown in the README (its first JSON block)."""
    block = re.search(r"```json\n(.*?)```", README.read_text(), re.DOTALL)
    assert block
    return dict(json.loads(block[1]))


def test_the_examples_are_where_the_docs_say() -> None:
    assert {p.name for p in TASK_DEFINITIONS} == {"fargate.json", "fargate-refresh.json", "ec2-tmpfs.json"}


def test_the_readme_task_definition_passes_the_linter_and_botocore() -> None:
    task = readme_task_definition()
    validate_parameters(task, input_shape())
    assert lint(task) == []


@pytest.mark.parametrize("path", [*TASK_DEFINITIONS, README], ids=lambda p: p.name)
def test_every_example_names_the_sidecar_container_the_same(path: Path) -> None:
    task = readme_task_definition() if path == README else json.loads(path.read_text())
    names = [c["name"] for c in task["containerDefinitions"]]
    assert names[0] == SIDECAR
    for other in task["containerDefinitions"][1:]:
        assert [d["containerName"] for d in other["dependsOn"]] == [SIDECAR]


@pytest.mark.parametrize("path", TASK_DEFINITIONS, ids=lambda p: p.name)
def test_every_example_task_definition_passes_the_linter(path: Path) -> None:
    assert lint(json.loads(path.read_text())) == []


@pytest.mark.parametrize("path", TASK_DEFINITIONS, ids=lambda p: p.name)
def test_every_example_is_valid_register_task_definition_input(path: Path) -> None:
    document = json.loads(path.read_text())
    validate_parameters(document, input_shape())  # botocore's own check: raises ParamValidationError
    assert check_register_input(document) == []


def test_the_ec2_example_uses_a_task_scoped_tmpfs_owned_by_the_sidecar() -> None:
    task = json.loads((EXAMPLES / "ec2-tmpfs.json").read_text())
    (volume,) = task["volumes"]
    config = volume["dockerVolumeConfiguration"]
    assert (config["scope"], config["driver"]) == ("task", "local")
    assert (config["driverOpts"]["type"], config["driverOpts"]["device"]) == ("tmpfs", "tmpfs")
    options = dict(option.split("=") for option in config["driverOpts"]["o"].split(","))
    sidecar = next(c for c in task["containerDefinitions"] if c["name"] == SIDECAR)
    assert options["uid"] == sidecar["user"].split(":")[0]
    assert {"size", "mode"} <= options.keys()


# --- CloudFormation ---------------------------------------------------------------------------------------


def cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    program = shutil.which("cfn-lint", path=os.path.dirname(sys.executable)) or "cfn-lint"
    return subprocess.run([program, str(path)], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_cfn_lint_accepts_the_template() -> None:
    result = cfn_lint(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_cfn_lint_rejects_a_broken_copy_of_the_template(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEMPLATE.read_text().replace("HEALTHY, SUCCESS]", "HEALTHY, SUCCES]"))
    result = cfn_lint(broken)
    assert result.returncode != 0
    assert "E3030" in result.stdout


PSEUDO_PARAMETERS = {
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "my-app",
}
USER_KEYED_MAPS = {"Options", "DriverOpts", "Labels", "DockerLabels", "SecretOptions"}


NO_VALUE = object()


def _template_resource(name: str, overrides: dict[str, str]) -> Any:
    """A resource's properties with the template's functions resolved: parameters at their defaults unless
    overridden, AWS::NoValue removed."""
    from cfnlint.decode import decode

    template, problems = decode(str(TEMPLATE))
    assert not problems
    values: dict[str, object] = {**PSEUDO_PARAMETERS}
    values.update({name: p["Default"] for name, p in template["Parameters"].items()})
    values.update(overrides)

    def condition(node: Any) -> bool:
        if isinstance(node, str):
            return condition(template["Conditions"][node])
        (function, argument), = node.items()
        if function == "Fn::Not":
            return not condition(argument[0])
        assert function == "Fn::Equals", function
        return bool(resolve(argument[0]) == resolve(argument[1]))

    def resolve(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            (function, argument), = node.items()
            if function == "Ref":
                return NO_VALUE if argument == "AWS::NoValue" else str(values.get(argument, f"placeholder-{argument}"))
            if function == "Fn::GetAtt":
                return f"arn:aws:iam::123456789012:role/{argument[0]}"
            if function == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(values[m[1]]), argument)
            if function == "Fn::If":
                return resolve(argument[1] if condition(argument[0]) else argument[2])
        if isinstance(node, dict):
            resolved = {key: resolve(value) for key, value in node.items()}
            return {key: value for key, value in resolved.items() if value is not NO_VALUE}
        if isinstance(node, list):
            return [item for item in (resolve(item) for item in node) if item is not NO_VALUE]
        return node

    return resolve(json.loads(json.dumps(template["Resources"][name]["Properties"])))


def _template_task_definition(**overrides: str) -> dict[str, Any]:
    """The template's task definition as RegisterTaskDefinition input."""

    def camel(node: Any, user_keys: bool = False) -> Any:
        if isinstance(node, dict):
            return {
                (key if user_keys else key[0].lower() + key[1:]): camel(value, key in USER_KEYED_MAPS)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [camel(item) for item in node]
        return node

    return dict(camel(_template_resource("TaskDefinition", overrides)))


def _template_task_role_actions(**overrides: str) -> set[str]:
    (policy,) = _template_resource("TaskRole", overrides)["Policies"]
    return {statement["Action"] for statement in policy["PolicyDocument"]["Statement"]}


@pytest.mark.parametrize("refresh_interval", ["", "300"], ids=["run-once", "refresh"])
def test_the_templates_task_definition_passes_the_linter(refresh_interval: str) -> None:
    task = _template_task_definition(RefreshInterval=refresh_interval)
    assert {c["name"] for c in task["containerDefinitions"]} == {"secrets-sidecar", "app"}
    validate_parameters(task, input_shape())
    assert lint(task) == []


def test_the_template_runs_the_sidecar_once_by_default_and_in_refresh_mode_on_request() -> None:
    def sidecar_and_condition(task: dict[str, Any]) -> tuple[dict[str, Any], str]:
        sidecar, app = task["containerDefinitions"]
        return sidecar, app["dependsOn"][0]["condition"]

    sidecar, condition = sidecar_and_condition(_template_task_definition())
    assert (sidecar["essential"], condition, "healthCheck" in sidecar) == (False, "SUCCESS", False)
    sidecar, condition = sidecar_and_condition(_template_task_definition(RefreshInterval="300"))
    assert (sidecar["essential"], condition) == (True, "HEALTHY")
    assert {"name": "SIDECAR_REFRESH_INTERVAL", "value": "300"} in sidecar["environment"]
    assert sidecar["healthCheck"]["command"] == ["CMD", "secrets-sidecar", "healthcheck"]


def test_the_templates_task_role_may_describe_the_secret_only_in_refresh_mode() -> None:
    assert "secretsmanager:DescribeSecret" not in _template_task_role_actions()
    assert "secretsmanager:DescribeSecret" in _template_task_role_actions(RefreshInterval="300")


# --- IAM -----------------------------------------------------------------------------------------------


def _policy(name: str) -> dict[str, Any]:
    return dict(json.loads((IAM / name).read_text()))


# parliament leaves files open at import (ResourceWarning): run it in its own interpreter.
PARLIAMENT = """
import json, sys
from parliament import analyze_policy_string
policy = analyze_policy_string(open(sys.argv[1]).read())
print(json.dumps([{"issue": f.issue, "detail": f.detail} for f in policy.findings], default=str))
"""


def _parliament(policy: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PARLIAMENT, str(path)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return list(json.loads(result.stdout))


@pytest.mark.parametrize("name", ["task-role-policy.json", "task-role-policy-failover.json",
                                  "execution-role-policy.json", "task-role-policy-parameter-tree.json",
                                  "preflight-role-policy.json"])
def test_parliament_finds_nothing_in_the_policies(name: str, tmp_path: Path) -> None:
    assert _parliament(_policy(name), tmp_path) == []


def test_parliament_would_catch_batch_get_secret_value_limited_to_a_secret(tmp_path: Path) -> None:
    policy = _policy("task-role-policy.json")
    batch = next(s for s in policy["Statement"] if s["Action"] == "secretsmanager:BatchGetSecretValue")
    batch["Resource"] = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/app/*"
    assert "RESOURCE_MISMATCH" in {finding["issue"] for finding in _parliament(policy, tmp_path)}


def test_the_tree_policy_grants_get_parameters_by_path_on_the_path_itself_and_decryption_through_ssm() -> None:
    statements = _policy("task-role-policy-parameter-tree.json")["Statement"]
    by_action = {s["Action"]: s for s in statements}
    assert set(by_action) == {"ssm:GetParametersByPath", "kms:Decrypt"}
    # GetParametersByPath is authorized against the path, not the parameters under it: no wildcard.
    assert by_action["ssm:GetParametersByPath"]["Resource"] == "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/app"
    assert by_action["kms:Decrypt"]["Condition"] == {"StringEquals": {"kms:ViaService": "ssm.eu-west-1.amazonaws.com"}}


def test_parliament_would_catch_get_parameters_by_path_granted_on_a_secret(tmp_path: Path) -> None:
    policy = _policy("task-role-policy-parameter-tree.json")
    listing = next(s for s in policy["Statement"] if s["Action"] == "ssm:GetParametersByPath")
    listing["Resource"] = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/app/*"
    assert "RESOURCE_MISMATCH" in {finding["issue"] for finding in _parliament(policy, tmp_path)}


def test_the_task_role_policy_grants_exactly_what_the_sidecar_calls() -> None:
    statements = _policy("task-role-policy.json")["Statement"]
    by_action = {s["Action"]: s for s in statements}
    assert set(by_action) == {
        "secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue", "ssm:GetParameters",
        "s3:GetObject", "kms:Decrypt", "secretsmanager:DescribeSecret",
    }
    # Refresh mode checks the same secrets for new versions that GetSecretValue reads.
    describe, read = by_action["secretsmanager:DescribeSecret"], by_action["secretsmanager:GetSecretValue"]
    assert describe["Resource"] == read["Resource"]
    # BatchGetSecretValue supports no resource-level permission; every other action is scoped.
    assert by_action["secretsmanager:BatchGetSecretValue"]["Resource"] == "*"
    for action, statement in by_action.items():
        if action != "secretsmanager:BatchGetSecretValue":
            assert statement["Resource"] != "*", action
    via = by_action["kms:Decrypt"]["Condition"]["StringEquals"]["kms:ViaService"]
    assert sorted(service.split(".")[0] for service in via) == ["s3", "secretsmanager", "ssm"]


def test_the_failover_policy_grants_each_read_in_both_regions_and_nothing_for_s3() -> None:
    """Region failover reads the same ARN with the region swapped: every regional grant of the task role's
    policy has its twin in the failover region; S3 objects never fail over, so the example adds none."""
    base = {s["Action"]: s for s in _policy("task-role-policy.json")["Statement"]}
    failover = {s["Action"]: s for s in _policy("task-role-policy-failover.json")["Statement"]}
    assert set(failover) == set(base) - {"s3:GetObject"}
    assert failover["secretsmanager:BatchGetSecretValue"]["Resource"] == "*"
    for action, statement in failover.items():
        if action == "secretsmanager:BatchGetSecretValue":
            continue
        primary = base[action]["Resource"]
        resources = statement["Resource"]
        assert primary in resources, action
        assert len(resources) == 2 and {r.split(":")[3] for r in resources} == {"eu-west-1", "eu-central-1"}, action
        if action != "kms:Decrypt":  # a replica may be encrypted with its own region's key
            assert {r.replace("eu-central-1", "eu-west-1") for r in resources} == {primary}, action
    via = failover["kms:Decrypt"]["Condition"]["StringEquals"]["kms:ViaService"]
    assert sorted(via) == sorted(f"{service}.{region}.amazonaws.com" for service in ("secretsmanager", "ssm")
                                 for region in ("eu-west-1", "eu-central-1"))
    describe, read = failover["secretsmanager:DescribeSecret"], failover["secretsmanager:GetSecretValue"]
    assert describe["Resource"] == read["Resource"]


def test_the_trust_policy_lets_only_this_accounts_ecs_tasks_assume_the_role() -> None:
    (statement,) = _policy("task-role-trust.json")["Statement"]
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


# --- another account's secrets ---------------------------------------------------------------------------------

TASK_ROLE = "arn:aws:iam::123456789012:role/my-app-task"
OWNER = "111122223333"
SHARED_SECRET = f"arn:aws:secretsmanager:eu-west-1:{OWNER}:secret:shared/db-AbCdEf"
SHARED_PARAMETER = f"arn:aws:ssm:eu-west-1:{OWNER}:parameter/shared/api-key"
READER_ROLE = f"arn:aws:iam::{OWNER}:role/secrets-reader"
CROSS_ACCOUNT_KEY = f"arn:aws:kms:eu-west-1:{OWNER}:key/0987dcba-09fe-87dc-65ba-ab0987654321"


def _as_attached(name: str, resource: str) -> dict[str, Any]:
    """A resource-based policy (a secret's, a key's, a role's trust policy) as parliament can read it.
    parliament 1.6 reads identity policies only: a resource policy's ``"Resource": "*"`` (which there means the
    resource the policy is attached to) would be RESOURCE_STAR, and a trust policy has no Resource at all. So
    each statement is given the ARN of the resource the policy is attached to; parliament then checks its
    actions, their resource types and condition keys, and its principals."""
    policy = _policy(name)
    for statement in policy["Statement"]:
        assert statement.get("Resource", "*") == "*", (name, statement)
        statement["Resource"] = resource
    return policy


@pytest.mark.parametrize("name", [
    "cross-account-task-role-policy.json", "assume-role-task-role-policy.json", "assume-role-reader-policy.json",
])
def test_parliament_finds_nothing_in_the_cross_account_identity_policies(name: str, tmp_path: Path) -> None:
    assert _parliament(_policy(name), tmp_path) == []


@pytest.mark.parametrize(("name", "resource"), [
    ("cross-account-secret-policy.json", SHARED_SECRET),
    ("assume-role-trust.json", READER_ROLE),
    ("task-role-trust.json", TASK_ROLE),
])
def test_parliament_finds_nothing_in_the_resource_policies_as_attached(
    name: str, resource: str, tmp_path: Path,
) -> None:
    assert _parliament(_as_attached(name, resource), tmp_path) == []


def test_parliament_finds_in_the_key_policy_only_actions_that_no_key_policy_can_grant(tmp_path: Path) -> None:
    """The key policy's first statement is AWS's default one, ``kms:*`` for the owning account: parliament names
    the actions of ``kms:*`` that act on no key (aliases, custom key stores, CreateKey); a key policy grants
    only what applies to its key, so those are granted by nothing."""
    (finding,) = _parliament(_as_attached("cross-account-key-policy.json", CROSS_ACCOUNT_KEY), tmp_path)
    assert finding["issue"] == "RESOURCE_MISMATCH"
    assert {m["required_format"] for m in finding["detail"]} <= {"*", "arn:*:kms:*:*:alias/*"}
    assert "kms:Decrypt" not in {m["action"] for m in finding["detail"]}


def test_parliament_would_catch_a_mistyped_condition_key_in_a_trust_policy(tmp_path: Path) -> None:
    policy = _as_attached("assume-role-trust.json", READER_ROLE)
    policy["Statement"][0]["Condition"] = {"StringEquals": {"sts:RoleSesionName": "secrets-sidecar"}}
    assert "UNKNOWN_CONDITION_FOR_ACTION" in {f["issue"] for f in _parliament(policy, tmp_path)}


def test_the_cross_account_examples_agree_with_each_other() -> None:
    """By ARN: the task role names the other account's secret, parameter and key; the secret's resource policy
    and the key's policy name the task role; the key decrypts only through the services that read them."""
    by_sid = {s["Sid"]: s for s in _policy("cross-account-task-role-policy.json")["Statement"]}
    secret, parameter, key = by_sid.values()
    assert re.fullmatch(secret["Resource"].replace("*", ".*"), SHARED_SECRET)
    assert parameter["Resource"] == SHARED_PARAMETER
    assert key["Resource"] == CROSS_ACCOUNT_KEY
    (reads,) = _policy("cross-account-secret-policy.json")["Statement"]
    assert (reads["Principal"], reads["Action"]) == ({"AWS": TASK_ROLE}, "secretsmanager:GetSecretValue")
    administer, decrypt = _policy("cross-account-key-policy.json")["Statement"]
    assert administer["Principal"] == {"AWS": f"arn:aws:iam::{OWNER}:root"}  # else nobody could manage the key
    assert (decrypt["Principal"], decrypt["Action"]) == ({"AWS": TASK_ROLE}, "kms:Decrypt")
    assert decrypt["Condition"] == key["Condition"]
    share = json.loads((IAM / "cross-account-parameter-share.json").read_text())
    assert (share["resourceArns"], share["principals"]) == ([SHARED_PARAMETER], ["123456789012"])


def test_the_parameter_share_is_valid_ram_create_resource_share_input() -> None:
    from botocore.session import get_session

    shape = get_session().get_service_model("ram").operation_model("CreateResourceShare").input_shape
    validate_parameters(json.loads((IAM / "cross-account-parameter-share.json").read_text()), shape)


def test_the_assumed_roles_trust_names_the_task_role_and_the_sidecars_session_name() -> None:
    from sidecar.assumed_role import SESSION_NAME

    (assume,) = _policy("assume-role-task-role-policy.json")["Statement"]
    assert (assume["Action"], assume["Resource"]) == ("sts:AssumeRole", READER_ROLE)
    (trust,) = _policy("assume-role-trust.json")["Statement"]
    assert (trust["Principal"], trust["Action"]) == ({"AWS": TASK_ROLE}, "sts:AssumeRole")
    assert trust["Condition"] == {"StringEquals": {"sts:RoleSessionName": SESSION_NAME}}
    reader = {s["Action"]: s["Resource"] for s in _policy("assume-role-reader-policy.json")["Statement"]}
    assert all(f":{OWNER}:" in resource for resource in reader.values())  # the role reads its own account
