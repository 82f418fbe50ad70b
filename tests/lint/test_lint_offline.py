"""The linter is offline and never reveals a value: it reads nothing a task definition names, quotes no
value of the sidecar's settings, and survives input crafted to break it."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from sidecar.lint import lint
from sidecar.lint.command import lint_command
from sidecar.lint.redact import HIDDEN, hide_values

from .tasks import container, good_task, hits, rules_hit, set_env, unset_env

SIDECAR = "secrets-sidecar"
PASSWORD = "pw-6b1d9e0f"


def report(task: dict[str, Any]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = lint_command("-", "json", stdin=io.StringIO(json.dumps(task)), stdout=out, stderr=err)
    return code, out.getvalue() + err.getvalue()


# --- values stay out of every message -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SIDECAR_SECRET_db", f"postgres://app:{PASSWORD}@db.internal:5432/app"),
        ("SIDECAR_SECRET_db", f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{PASSWORD}:a:b"),
        ("SIDECAR_SECRET_db", f"/prod/{PASSWORD}:x:y"),
        ("SIDECAR_TIMEOUT", PASSWORD),
        ("SIDECAR_FILE_MODE", PASSWORD),
        ("SIDECAR_SECRETS", json.dumps([{"name": "db", "valueFrom": f"s3://{PASSWORD}"}])),
        ("SIDECAR_SECRETS", json.dumps([{"name": "db", "valueFrom": "/p", "mode": PASSWORD}])),
        ("SIDECAR_SECRETS", json.dumps([{"name": "db", "template": f"{{{{ {PASSWORD} }}}}",
                                         "inputs": {"a": "/p"}}])),
    ],
)
def test_a_rejected_setting_is_named_and_its_value_is_not_shown(variable: str, value: str) -> None:
    task = good_task()
    unset_env(task, SIDECAR, "SIDECAR_SECRETS")
    set_env(task, SIDECAR, "SIDECAR_SECRET_ok", "/prod/app/ok")
    set_env(task, SIDECAR, variable, value)
    (finding,) = hits(task, "sidecar-config")
    assert finding.severity == "error"
    assert PASSWORD not in finding.message + finding.fix
    code, output = report(task)
    assert code == 1
    assert PASSWORD not in output


def test_a_rejected_command_flag_is_not_shown() -> None:
    task = good_task()
    container(task, SIDECAR)["command"] = ["run", "--sm-batch", PASSWORD]
    (finding,) = hits(task, "sidecar-config")
    assert "--sm-batch" in finding.message
    assert PASSWORD not in finding.message


def test_a_value_cut_short_in_a_message_is_hidden_too() -> None:
    message = "--timeout: 'postgres://app:pw-6b1d9e0f@db.internal:5... is not a positive number of seconds"
    hidden = hide_values(message, [f"postgres://app:{PASSWORD}@db.internal:5432/orders"])
    assert PASSWORD not in hidden
    assert hidden.endswith("is not a positive number of seconds")


def test_the_names_and_keys_in_a_json_setting_stay_readable() -> None:
    task = good_task()
    set_env(task, SIDECAR, "SIDECAR_SECRETS", json.dumps([{"name": "database_password", "valueFrom": 42}]))
    (finding,) = hits(task, "sidecar-config")
    assert "('database_password'): valueFrom must be a string" in finding.message


def test_hidden_values_keep_the_entry_names_the_message_needs() -> None:
    message = "SIDECAR_SECRETS[0] ('db'): valueFrom 'postgres://u:secret@h' is not ...: 'secret' again"
    hidden = hide_values(message, ["postgres://u:secret@h"], shown=["db"])
    assert hidden == f"SIDECAR_SECRETS[0] ('db'): valueFrom {HIDDEN} is not ...: {HIDDEN} again"


# --- templateFile is a path in the container, not on the linting machine ----------------------------------


def test_a_template_file_is_never_read_and_is_reported_as_not_checkable(tmp_path: Path) -> None:
    fifo = tmp_path / "template.fifo"
    os.mkfifo(fifo)  # reading it would block the linter for ever
    task = good_task()
    set_env(task, SIDECAR, "SIDECAR_SECRETS", json.dumps([
        {"name": "db.url", "templateFile": str(fifo), "inputs": {"db": "/prod/app/db"}},
    ]))
    (finding,) = hits(task, "sidecar-config")
    assert (finding.severity, finding.container) == ("warning", SIDECAR)
    assert "SIDECAR_SECRETS entry 'db.url' reads templateFile, a path inside the container" in finding.message
    assert str(fifo) not in finding.message


def test_a_template_file_entry_still_has_its_inputs_checked() -> None:
    task = good_task()
    set_env(task, SIDECAR, "SIDECAR_SECRETS", json.dumps([
        {"name": "db.url", "templateFile": "/etc/app/db.tmpl", "inputs": {"db": "not a reference!"}},
    ]))
    assert ("sidecar-config", "error", SIDECAR) in rules_hit(task)


# --- input crafted to break it ---------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["²", "²:1000", "1000:²", "\u0661\u0660\u0660\u0660", "10001:", ":", "\ud800"])
def test_odd_users_are_findings_not_crashes(user: str) -> None:
    task = good_task()
    container(task, SIDECAR)["user"] = user
    container(task, "app")["user"] = user
    code, output = report(task)
    assert code in (0, 1)
    assert "Traceback" not in output


def test_json_nested_a_thousand_deep_in_a_setting_is_an_error_not_a_crash() -> None:
    task = good_task()
    set_env(task, SIDECAR, "SIDECAR_SECRETS", "[" * 1000 + "]" * 1000)
    (finding,) = hits(task, "sidecar-config")
    assert finding.severity == "error"


@pytest.mark.parametrize("depth", [100, 1000, 100_000])
def test_a_document_nested_deeper_than_any_task_definition_is_exit_2(depth: int) -> None:
    task = good_task()
    text = json.dumps(task)[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
    out, err = io.StringIO(), io.StringIO()
    code = lint_command("-", stdin=io.StringIO(text), stdout=out, stderr=err)
    assert (code, out.getvalue()) == (2, "")
    assert "nests deeper than" in err.getvalue()


def test_the_deepest_real_task_definitions_are_not_too_deep() -> None:
    assert lint(good_task()) == []
