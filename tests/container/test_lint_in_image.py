"""``lint-task-definition`` inside the shipped image: botocore's ECS model is there, and nothing escapes as a
traceback. The task definitions are mounted read-only; the container has no network."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Completed, run_captured
from tests.container.conftest import LABEL, REPO, RUN_TIMEOUT_SECONDS, SIDECAR_IMAGE

pytestmark = [pytest.mark.container, pytest.mark.slow]

EXAMPLES = REPO / "task-definitions"


def lint_in_image(*args: str, stdin: bytes | None = None) -> Completed:
    return run_captured(
        ["docker", "run", "--rm", "-i", "--read-only", "--network", "none", "--label", LABEL,
         "-v", f"{EXAMPLES}:/task-definitions:ro", SIDECAR_IMAGE, "lint-task-definition", *args],
        input=stdin, timeout=RUN_TIMEOUT_SECONDS,
    )


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_every_shipped_example_passes_the_linter_in_the_image(images: tuple[str, str], name: str) -> None:
    result = lint_in_image(f"/task-definitions/{name}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.decode().endswith(f"/task-definitions/{name}: passes: 0 errors, 0 warnings\n")
    assert result.stderr == b""


def test_a_broken_task_definition_on_stdin_gets_findings_and_exit_1_in_the_image(images: tuple[str, str]) -> None:
    task = json.loads((EXAMPLES / "fargate.json").read_text())
    task["containerDefinitions"][1]["dependsOn"][0]["condition"] = "SUCCES"  # the ECS model's enum catches it
    result = lint_in_image("--format", "json", "-", stdin=json.dumps(task).encode())
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert {f["rule"] for f in report["findings"]} >= {"register-input"}
    assert b"Traceback" not in result.stdout + result.stderr
