"""Template entries end to end: the real process against the moto server."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SecretValues, run_sidecar, sidecar_env, snapshot

DB = {"username": "app", "password": "p@ss:w/rd'$1", "host": "db.internal", "port": 5432}


@pytest.fixture
def db_arn(aws: Any, secret_values: SecretValues) -> str:
    secret_values.add(DB["password"])
    return str(aws.secretsmanager.create_secret(Name="tpl/db", SecretString=json.dumps(DB))["ARN"])


def run_templates(moto: str, out: Path, secret_values: SecretValues, *entries: dict[str, object]) -> Any:
    env = sidecar_env(moto, SIDECAR_OUTPUT_DIR=str(out), SIDECAR_SECRETS=json.dumps(list(entries)))
    return run_sidecar(env, guard=secret_values)


def test_templates_render_files_with_escaping_mode_and_one_fetch(
    moto: str, aws: Any, db_arn: str, tmp_path: Path, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/tpl/region", Value="eu-west-1", Type="String")
    template_file = tmp_path / "app.properties.tpl"
    template_file.write_text("db.user={{ db.username }}\ndb.port={{ db.port }}\nregion={{ region }}\n")
    out = tmp_path / "out"
    out.mkdir()
    result = run_templates(
        moto, out, secret_values,
        {"name": "db.url", "mode": "0440",
         "template": "postgresql://{{ db.username | url }}:{{ db.password | url }}@{{ db.host }}:{{ db.port }}/app",
         "inputs": {"db": db_arn}},
        {"name": ".pgpass", "mode": "0600",
         "template": "{{ db.host }}:{{ db.port }}:*:{{ db.username | pgpass }}:{{ pw | pgpass }}\n",
         "inputs": {"db": db_arn, "pw": f"{db_arn}:password::"}},
        {"name": "config.json", "template": '{"password": {{ db.password | json }}}', "inputs": {"db": db_arn}},
        {"name": "app.properties", "templateFile": str(template_file),
         "inputs": {"db": db_arn, "region": "/tpl/region"}},
    )
    assert result.code == 0, result.stdout
    assert (out / "db.url").read_bytes() == b"postgresql://app:p%40ss%3Aw%2Frd%27%241@db.internal:5432/app"
    assert (out / ".pgpass").read_bytes() == b"db.internal:5432:*:app:p@ss\\:w/rd'$1\n"
    assert json.loads((out / "config.json").read_bytes()) == {"password": DB["password"]}
    assert (out / "app.properties").read_bytes() == b"db.user=app\ndb.port=5432\nregion=eu-west-1\n"
    assert stat.S_IMODE(os.stat(out / "db.url").st_mode) == 0o440
    assert stat.S_IMODE(os.stat(out / ".pgpass").st_mode) == 0o600
    calls = [e for e in result.events if e["event"] == "api_call"]
    assert sorted(e["operation"] for e in calls) == ["GetParameters", "GetSecretValue"]  # one fetch per secret


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"template": "{{ db.username", "inputs": {"db": "ARN"}}, "malformed placeholder at line 1"),
        ({"template": "{{ db.username | upper }}", "inputs": {"db": "ARN"}}, "unknown filter 'upper'"),
        ({"template": "{{ other }}", "inputs": {"db": "ARN"}}, "uses 'other', which is not in inputs"),
        ({"template": "{{ db.host }}", "inputs": {"db": "ARN", "x": "ARN"}}, "input 'x' is not used"),
        ({"templateFile": "/nonexistent/t.tpl", "inputs": {"db": "ARN"}}, "cannot read templateFile"),
        ({"template": "{{ db }}", "inputs": {"db": "prod/db"}}, "a Secrets Manager secret needs its full ARN"),
        ({"template": "{{ db }}", "inputs": {"db": "ARN"}, "expand": True}, "does not apply to a template entry"),
    ],
)
def test_template_configuration_errors_exit_2_and_fetch_nothing(
    moto: str, db_arn: str, tmp_path: Path, secret_values: SecretValues, entry: dict[str, object], message: str
) -> None:
    entry = {"name": "out.txt", **json.loads(json.dumps(entry).replace('"ARN"', json.dumps(db_arn)))}
    result = run_templates(moto, tmp_path, secret_values, entry)
    assert result.code == 2
    assert result.final["event"] == "failed" and message in result.final["reason"]
    assert not [e for e in result.events if e["event"] == "api_call"]
    assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("template", "inputs", "message"),
    [
        ("{{ db.missing }}", {"db": "ARN"}, "{{ db.missing }}: the input has no key 'missing'"),
        ("{{ plain.key }}", {"plain": "PLAIN"}, "{{ plain.key }} needs a JSON object, but the input is not JSON"),
        ("{{ gone }}", {"gone": "GONE"}, "was not found (ResourceNotFoundException)"),
    ],
)
def test_template_fetch_errors_exit_3_and_keep_the_previous_set(
    moto: str, aws: Any, db_arn: str, tmp_path: Path, secret_values: SecretValues,
    template: str, inputs: dict[str, str], message: str,
) -> None:
    plain = aws.secretsmanager.create_secret(Name="tpl/plain", SecretString=secret_values.add("plain-text-secret"))
    gone = db_arn.replace("tpl/db", "tpl/gone")
    resolved = {k: {"ARN": db_arn, "PLAIN": plain["ARN"], "GONE": gone}[v] for k, v in inputs.items()}
    first = run_templates(moto, tmp_path, secret_values, {"name": "dsn", "template": "{{ db.host }}",
                                                          "inputs": {"db": db_arn}})
    assert first.code == 0
    before = snapshot(tmp_path)
    result = run_templates(moto, tmp_path, secret_values, {"name": "dsn", "template": template, "inputs": resolved})
    assert result.code == 3
    assert result.final["error"] == "fetch_error" and message in result.final["reason"]
    assert "'dsn'" in result.final["reason"]
    assert snapshot(tmp_path) == before
