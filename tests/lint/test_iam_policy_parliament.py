"""Every policy ``secrets-sidecar iam-policy`` generates passes parliament, the offline IAM policy auditor
(unknown actions, resources of the wrong type for an action, malformed ARNs and conditions)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from sidecar.iam_policy import Scope, policies
from sidecar.iam_policy_command import iam_policy_command
from sidecar.references import ObjectTarget, ParameterTarget, Reference, SecretTarget
from sidecar.settings.load import settings_from
from sidecar.settings.model import Entry, Settings
from tests.iam_wildcards import iam_matches
from tests.lint.test_lint_examples import _parliament

ACCOUNT = "123456789012"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = "arn:aws:iam::210987654321:role/secrets-reader"
EVERY_KIND = [
    f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:prod/db-AbCdEf:password::",
    f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:prod/api",
    f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/old::AWSPREVIOUS:",
    "/prod/token:3",
    "plain",
    f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/shared/x",
    "/aws/reference/secretsmanager/prod/ref",
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
    "s3://app-config/prod/conf.json",
    "s3://app-config/prod/cert.pem?versionId=v1",
    "s3://app-config/odd*key?.txt",
]


def _settings(**env: str) -> Settings:
    entries = [{"name": f"e{i}", "valueFrom": v} for i, v in enumerate(EVERY_KIND)]
    environ = {"AWS_REGION": "eu-west-1", "SIDECAR_SECRETS": json.dumps(entries), **env}
    return settings_from({}, environ, {}, process_uid=0, process_gid=0)


def _with_role() -> Settings:
    targets = [SecretTarget("eu-west-1", f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:mine"),
               SecretTarget("eu-west-1", "arn:aws:secretsmanager:eu-west-1:210987654321:secret:theirs", role_arn=ROLE),
               ParameterTarget("eu-west-1", "/shared/p", role_arn=ROLE),
               ObjectTarget("eu-west-1", "their-bucket", "k", role_arn=ROLE)]
    entries = tuple(Entry(f"e{i}", "-", Reference(t), 0o400, 0, 0) for i, t in enumerate(targets))
    return Settings(entries=entries, refresh_interval=60.0, sm_batch="always")


def _trees_and_failover() -> Settings:
    entries = [{"name": "app", "parametersByPath": "/prod/app"}, {"name": "all", "parametersByPath": "/"},
               {"name": "db", "valueFrom": EVERY_KIND[0], "failoverRegion": "eu-central-1"},
               {"name": "p", "valueFrom": "/prod/p", "failoverRegion": "eu-central-1"}]
    environ = {"AWS_REGION": "eu-west-1", "SIDECAR_SECRETS": json.dumps(entries), "SIDECAR_REFRESH_INTERVAL": "60"}
    return settings_from({}, environ, {}, process_uid=0, process_gid=0)


CONFIGURATIONS = {
    "run once": lambda: (_settings(), Scope(ACCOUNT)),
    "batched, refreshing, with a key": lambda: (
        _settings(SIDECAR_SM_BATCH="always", SIDECAR_REFRESH_INTERVAL="300"), Scope(ACCOUNT, (KEY,))),
    "china": lambda: (_settings(SIDECAR_REGION="cn-north-1", AWS_REGION="cn-north-1"), Scope(ACCOUNT)),
    "a role's entries": lambda: (_with_role(), Scope(ACCOUNT, (KEY,))),
    "trees and failover": lambda: (_trees_and_failover(), Scope(ACCOUNT, (KEY,))),
}


def _documents(name: str) -> list[dict[str, Any]]:
    settings, scope = CONFIGURATIONS[name]()
    result = policies([settings], scope)
    return [result.task_role, *result.roles.values()]


@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
def test_parliament_finds_nothing_in_a_generated_policy(name: str, tmp_path: Path) -> None:
    documents = _documents(name)
    assert len(documents) == (2 if name == "a role's entries" else 1)
    for document in documents:
        assert _parliament(document, tmp_path) == [], json.dumps(document, indent=2)


def test_decrypt_with_any_key_is_the_one_finding_and_it_is_the_users_choice(tmp_path: Path) -> None:
    result = policies([_settings()], Scope(ACCOUNT, ("*",)))
    findings = _parliament(result.task_role, tmp_path)
    assert [(f["issue"], f["detail"]) for f in findings] == [("RESOURCE_STAR", ["kms:Decrypt"])]


# --- the examples: the generator's policy for each example task definition ----------------------------------

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "task-definitions").glob("*.json"))


def _allowed_by(example: dict[str, Any], action: str, resource: str) -> bool:
    for statement in example["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if action in actions and any(iam_matches(pattern, resource) for pattern in resources):
            return True
    return False


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_task_definitions_policy_is_within_the_example_policy_and_passes_parliament(
    path: Path, tmp_path: Path
) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = iam_policy_command({"region": "eu-west-1"}, {}, task_definition=str(path), stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    generated = json.loads(out.getvalue())
    assert _parliament(generated, tmp_path) == []
    # The hand-written example grants prefixes; what the generator grants for the example task is inside them.
    example = json.loads((ROOT / "task-definitions" / "iam" / "task-role-policy.json").read_text())
    for statement in generated["Statement"]:
        for resource in ([statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]):
            assert _allowed_by(example, statement["Action"], resource), (statement["Action"], resource)
