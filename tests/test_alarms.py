"""The metrics' documentation and the alarm template say what the sidecar writes: the example line in
docs/operations.md is valid EMF with the code's members, and every alarm (the put-metric-alarm commands and
task-definitions/cloudformation/sidecar-alarms.yaml) names a metric, unit and dimension set the sidecar
writes, since CloudWatch matches a metric by all of its dimensions. cfn-lint checks the template."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from sidecar.metrics import ENDED_WELL, METRICS, Counts, Task, dimensions, document
from tests.emf_spec import problems
from tests.lint.test_lint_examples import cfn_lint

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
TEMPLATE = ROOT / "task-definitions" / "cloudformation" / "sidecar-alarms.yaml"
UNITS = dict(METRICS)
FAMILY_SET = dimensions("start", ENDED_WELL, Task("prod", "my-app"))[1][0]  # the set alarms name


def _section(title: str) -> str:
    start = OPERATIONS.index(f"## {title}")
    end = OPERATIONS.find("\n## ", start + 1)
    return OPERATIONS[start:end]


def test_the_example_line_is_valid_emf_with_the_members_the_code_writes() -> None:
    (block,) = re.findall(r"```json\n(.*?)\n```", _section("Metrics in CloudWatch"), re.DOTALL)
    assert "\n" not in block
    example = json.loads(block)
    built = document("SecretsSidecar", Counts(1.0), ENDED_WELL, phase="start", task=Task("prod", "my-app"),
                     timestamp_ms=0)

    assert problems(example) == []
    assert list(example) == list(built)
    assert example["_aws"]["CloudWatchMetrics"] == built["_aws"]["CloudWatchMetrics"]


def test_the_documented_metrics_and_dimensions_are_the_codes() -> None:
    section = _section("Metrics in CloudWatch")
    tables = re.findall(r"^\| `(\w+)` \| (\w+) \|", section, re.M)
    assert [(name, unit) for name, unit in tables if name in UNITS] == list(METRICS)
    documented = set(re.findall(r"^\| `(\w+)` \| .+ \| (?:both|the second)", section, re.M))
    assert documented == set(dimensions("start", ENDED_WELL, Task("c", "f"))[0])


def _alarm_commands() -> list[dict[str, list[str]]]:
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", _section("Alarms"), re.DOTALL):
        for command in block.replace("\\\n", " ").split("\n\n"):
            words = shlex.split(command)
            assert words[:3] == ["aws", "cloudwatch", "put-metric-alarm"]
            options: dict[str, list[str]] = {}
            for word in words[3:]:
                if word.startswith("--"):
                    key = word
                    options[key] = []
                else:
                    options[key].append(word)
            commands.append(options)
    return commands


def test_the_documented_alarms_name_what_the_sidecar_writes() -> None:
    commands = _alarm_commands()
    assert [c["--metric-name"] for c in commands] == [["Failed"], ["Duration"]]
    for command in commands:
        (name,) = command["--metric-name"]
        assert command["--namespace"] == ["SecretsSidecar"]
        assert command.get("--unit", [UNITS[name]]) == [UNITS[name]]
        names = [dict(part.split("=") for part in d.split(","))["Name"] for d in command["--dimensions"]]
        assert names == FAMILY_SET


def _template() -> dict[str, Any]:
    from cfnlint.decode import decode

    template, decode_problems = decode(str(TEMPLATE))
    assert not decode_problems
    assert template is not None
    return dict(template)


def test_the_template_alarms_name_what_the_sidecar_writes() -> None:
    template = _template()
    alarms = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert [a["MetricName"] for a in alarms] == ["Failed", "Duration"]
    assert template["Parameters"]["Namespace"]["Default"] == "SecretsSidecar"
    for alarm in alarms:
        assert alarm["Namespace"] == {"Ref": "Namespace"}
        assert alarm.get("Unit", UNITS[alarm["MetricName"]]) == UNITS[alarm["MetricName"]]
        assert [d["Name"] for d in alarm["Dimensions"]] == FAMILY_SET
        assert alarm["Dimensions"][-1]["Value"] == "start"


@pytest.mark.slow
def test_cfn_lint_accepts_the_alarm_template() -> None:
    result = cfn_lint(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_cfn_lint_rejects_a_broken_copy_of_the_alarm_template(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEMPLATE.read_text().replace("GreaterThanThreshold", "GreaterThenThreshold"))
    result = cfn_lint(broken)
    assert result.returncode != 0
    assert "GreaterThenThreshold" in result.stdout
