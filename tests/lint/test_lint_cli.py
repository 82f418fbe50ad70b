"""``secrets-sidecar lint-task-definition`` as a real process: exit codes, stdin, formats."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import sidecar.lint as lint_package
from sidecar.lint import Finding, model
from sidecar.lint.command import lint_command
from tests.conftest import SIDECAR, Completed, run_captured

from .tasks import EXAMPLES, container, good_task, refresh_task, set_env

FARGATE = EXAMPLES / "fargate.json"


def lint_process(*args: str, stdin: str | bytes | None = None) -> Completed:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    return run_captured([SIDECAR, "lint-task-definition", *args], input=data, timeout=60)


def write(tmp_path: Path, task: dict[str, Any]) -> str:
    path = tmp_path / "task.json"
    path.write_text(json.dumps(task))
    return str(path)


def test_a_clean_task_definition_exits_0() -> None:
    result = lint_process(str(FARGATE))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().endswith(f"{FARGATE}: passes: 0 errors, 0 warnings\n")


def test_warnings_alone_exit_0_and_are_reported(tmp_path: Path) -> None:
    task = good_task()
    container(task, "secrets-sidecar").pop("readonlyRootFilesystem")
    result = lint_process(write(tmp_path, task))
    assert result.returncode == 0
    out = result.stdout.decode()
    assert "warning sidecar-writable-root [secrets-sidecar]:" in out
    assert "passes: 0 errors, 1 warning\n" in out


def test_errors_exit_1_and_every_finding_is_reported(tmp_path: Path) -> None:
    task = good_task()
    container(task, "secrets-sidecar")["essential"] = True
    task.pop("taskRoleArn")
    result = lint_process(write(tmp_path, task))
    assert result.returncode == 1
    out = result.stdout.decode()
    assert "error sidecar-essential [secrets-sidecar]:" in out
    assert "error task-role:" in out
    assert "    fix: set \"essential\": false on the sidecar" in out
    assert "fails: 2 errors, 0 warnings" in out


def test_describe_task_definition_output_is_read_from_stdin() -> None:
    described = {
        "taskDefinition": {
            **json.loads(FARGATE.read_text()),
            "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/my-app:7",
            "revision": 7,
            "status": "ACTIVE",
            "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.task-iam-role"}],
            "compatibilities": ["EC2", "FARGATE"],
            "registeredAt": "2026-11-28T17:00:00.000000+00:00",
            "registeredBy": "arn:aws:sts::123456789012:assumed-role/deployer/ci",
        },
        "tags": [],
    }
    result = lint_process("-", stdin=json.dumps(described))
    assert result.returncode == 0, result.stdout.decode()
    assert "<stdin>: passes: 0 errors, 0 warnings" in result.stdout.decode()


def test_json_format_lists_findings_with_rule_severity_container_message_and_fix(tmp_path: Path) -> None:
    task = good_task()
    container(task, "app")["dependsOn"][0]["condition"] = "COMPLETE"
    result = lint_process(write(tmp_path, task), "--format", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert (report["errors"], report["warnings"]) == (1, 0)
    (finding,) = report["findings"]
    assert finding["rule"] == "app-dependency"
    assert (finding["severity"], finding["container"]) == ("error", "app")
    assert set(finding) == {"rule", "severity", "container", "message", "fix"}


def test_a_refresh_mode_sidecar_waited_for_with_success_exits_1_with_a_healthy_fix(tmp_path: Path) -> None:
    assert lint_process(str(EXAMPLES / "fargate-refresh.json")).returncode == 0
    task = refresh_task()
    container(task, "app")["dependsOn"][0]["condition"] = "SUCCESS"
    container(task, "secrets-sidecar").pop("healthCheck")
    result = lint_process(write(tmp_path, task), "--format", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert sorted((f["rule"], f["container"]) for f in report["findings"]) == [
        ("app-dependency", "app"), ("sidecar-healthcheck", "secrets-sidecar"),
    ]
    (dependency,) = (f for f in report["findings"] if f["rule"] == "app-dependency")
    assert '"condition": "HEALTHY"' in dependency["fix"]


def test_input_that_is_not_a_task_definition_exits_2(tmp_path: Path) -> None:
    cases = {
        "not JSON": (["-"], "{\"family\": ", "is not valid JSON: Expecting value at line 1 column 12"),
        "an array": (["-"], "[]", "holds a JSON array, not a task definition object"),
        "no containers": (["-"], "{\"family\": \"x\"}", "has no containerDefinitions array"),
        "missing file": ([str(tmp_path / "absent.json")], None, "cannot read"),
        "not UTF-8": (["-"], b"\xff\xfe{", "is not"),
    }
    for label, (args, stdin, says) in cases.items():
        result = lint_process(*args, stdin=stdin)
        assert result.returncode == 2, label
        assert result.stdout == b"", label
        assert says in result.stderr.decode(), (label, result.stderr)


def test_a_usage_error_exits_2() -> None:
    result = lint_process()
    assert result.returncode == 2
    assert b"the following arguments are required: file" in result.stderr


def test_no_environment_value_reaches_the_output(tmp_path: Path) -> None:
    values = ("pa55-word-in-plain-sight", "AKIAIOSFODNN7EXAMPLE", "987654")
    task = good_task()
    set_env(task, "app", "DB_PASSWORD", values[0])
    set_env(task, "app", "AWS_ACCESS_KEY_ID", values[1])
    container(task, "app")["environment"].append({"name": "PORT", "value": int(values[2])})
    for output_format in ("text", "json"):
        result = lint_process(write(tmp_path, task), "--format", output_format)
        assert result.returncode == 1  # the integer value fails register-input
        assert result.stdout.count(b"plain-secret") == 2
        assert result.stdout.count(b"register-input") == 1
        for value in values:
            assert value.encode() not in result.stdout + result.stderr


def test_run_start_up_does_not_import_the_linter() -> None:
    probe = "import sys, sidecar.cli; sys.exit('sidecar.lint' in sys.modules or 'botocore.model' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], check=False, timeout=60).returncode == 0


# --- in-process: what the command does when something goes wrong -------------------------------------------


def lint_in_process(task: object, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = lint_command("-", *args, stdin=io.StringIO(json.dumps(task)), stdout=out, stderr=err)  # type: ignore[arg-type]
    return code, out.getvalue(), err.getvalue()


def test_a_failing_rule_is_exit_2_with_a_one_line_reason_never_a_traceback_or_exit_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(task: object) -> list[Finding]:
        raise ValueError("a message that quotes pa55-word-in-plain-sight")

    monkeypatch.setattr(lint_package, "RULES", (*lint_package.RULES, broken))
    code, out, err = lint_in_process(good_task())
    assert (code, out) == (2, "")
    assert err == (
        "secrets-sidecar lint-task-definition: internal error while checking <stdin> (ValueError); nothing was "
        "reported about it, please report this\n"
    )


def test_without_botocores_ecs_model_the_other_rules_still_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import UnknownServiceError

    def no_model() -> None:
        raise UnknownServiceError(service_name="ecs", known_service_names="kms, s3")

    monkeypatch.setattr(model, "input_shape", no_model)
    task = good_task()
    task.pop("taskRoleArn")
    code, out, _ = lint_in_process(task, "json")
    report = json.loads(out)
    assert code == 1
    assert {(f["rule"], f["severity"]) for f in report["findings"]} == {
        ("register-input", "warning"), ("task-role", "error"),
    }


def test_names_from_the_document_cannot_forge_lines_or_break_the_text_report() -> None:
    task = good_task()
    for definition in task["containerDefinitions"]:
        if definition["name"] == "app":
            definition["name"] = "app\ntask.json: passes: 0 errors\ud800"
            definition["mountPoints"][0]["readOnly"] = False  # a finding that names the container
    code, out, _ = lint_in_process(task)
    assert code == 1
    assert out.count("\n") == len(out.splitlines())
    assert all(line.startswith(("<stdin>: ", "    fix: ")) for line in out.splitlines())
    assert "\\ud800" in out
