"""Task definitions shaped like public ones (AWS's FireLens and App Mesh samples, the CloudWatch agent
sample), with and without the sidecar: helpers that never read the secrets are left alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.validate import validate_parameters

from sidecar.lint import lint
from sidecar.lint.model import input_shape

from .tasks import container, hits, rules_hit

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SIDECAR = "secrets-sidecar"


def fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


ALL = sorted(p.stem for p in FIXTURES.glob("*.json"))


@pytest.mark.parametrize("name", ALL)
def test_every_fixture_is_valid_register_task_definition_input(name: str) -> None:
    validate_parameters(fixture(name), input_shape())


@pytest.mark.parametrize("name", [n for n in ALL if n.endswith("-with-sidecar")])
def test_helpers_that_do_not_mount_the_secrets_need_not_wait_for_the_sidecar(name: str) -> None:
    assert lint(fixture(name)) == []


@pytest.mark.parametrize("name", [n for n in ALL if n.endswith("-no-sidecar")])
def test_a_task_without_the_sidecar_gets_no_sidecar_rule(name: str) -> None:
    task = fixture(name)
    task.pop("taskRoleArn", None)
    assert rules_hit(task) == {("no-sidecar", "warning", None)}


def test_envoy_is_not_forced_to_wait_for_the_sidecar_that_needs_its_network() -> None:
    task = fixture("appmesh-with-sidecar")
    assert "dependsOn" not in container(task, "envoy")
    assert container(task, SIDECAR)["dependsOn"] == [{"containerName": "envoy", "condition": "HEALTHY"}]
    assert hits(task, "app-dependency") == []


def test_a_helper_that_mounts_the_secrets_becomes_a_reader() -> None:
    task = fixture("firelens-with-sidecar")
    container(task, "log_router")["mountPoints"] = [
        {"sourceVolume": "secrets", "containerPath": "/run/secrets", "readOnly": True},
    ]
    assert {(f.rule, f.container) for f in lint(task)} == {
        ("app-dependency", "log_router"), ("reader-user-unknown", "log_router"),
    }
