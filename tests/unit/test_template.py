from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.config import load_settings
from sidecar.errors import ConfigError, FetchError
from sidecar.outcomes import Fetched
from sidecar.render import render
from sidecar.secret import SecretBytes
from sidecar.template import parse_template, render_template

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"
DB = {"username": "app user", "password": "p@ss:w/rd'$x", "host": "db.internal", "port": 5432}


def fill(text: str, **values: object) -> str:
    raw = {k: SecretBytes((v if isinstance(v, str) else json.dumps(v)).encode()) for k, v in values.items()}
    return render_template(parse_template(text, "t"), raw, "t", 1 << 20).reveal().decode()


def test_placeholders_keys_and_filters() -> None:
    text = "postgresql://{{ db.username | url }}:{{db.password|url}}@{{ db.host }}:{{ db.port }}/app"
    assert fill(text, db=DB) == "postgresql://app%20user:p%40ss%3Aw%2Frd%27%24x@db.internal:5432/app"
    assert fill("{{ token }}", token="abc") == "abc"
    assert fill('{"password": {{ db.password | json }}}', db=DB) == '{"password": "p@ss:w/rd\'$x"}'
    assert fill("{{ db.host }}:*:*:{{ db.username | pgpass }}:{{ db.password | pgpass }}", db=DB) == (
        "db.internal:*:*:app user:p@ss\\:w/rd'$x"
    )
    assert fill('{{ "{{" }} literal }}', db=DB) == "{{ literal }}"
    assert fill("{{ db.port | json }}", db=DB) == '"5432"'


def test_shell_filter_round_trips() -> None:
    out = subprocess.run(["sh", "-c", "printf %s " + fill("{{ db.password | sh }}", db=DB)],
                         capture_output=True, check=True).stdout
    assert out.decode() == DB["password"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ db.password", "malformed placeholder at line 1"),
        ("a\n{{ 1x }}", "malformed placeholder at line 2"),
        ("{{ db | upper }}", "unknown filter 'upper'"),
        ("{{ db.key | url | sh }}", "malformed placeholder"),
        ("{{ open(1) }}", "malformed placeholder"),
    ],
)
def test_template_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_template(text, "t")
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("text", "values", "message"),
    [
        ("{{ db.missing }}", {"db": DB}, "{{ db.missing }}: the input has no key 'missing'"),
        ("{{ db.password }}", {"db": "s3cr3t-plain"}, "needs a JSON object, but the input is not JSON"),
        ("{{ db.password }}", {"db": ["s3cr3t"]}, "needs a JSON object, but the input is not one"),
    ],
)
def test_missing_keys_are_errors_naming_the_key_never_the_value(
    text: str, values: dict[str, object], message: str
) -> None:
    with pytest.raises(FetchError) as caught:
        fill(text, **values)
    assert message in caught.value.message
    assert "s3cr3t" not in caught.value.message and "p@ss" not in caught.value.message


def template_settings(entry: dict[str, object], **env: str):  # type: ignore[no-untyped-def]
    environ = {"AWS_REGION": "eu-west-1", "SIDECAR_SECRETS": json.dumps([entry]), **env}
    return load_settings({}, environ, process_uid=1000, process_gid=1000)


def test_template_entries_render_into_files_with_mode_and_manifest() -> None:
    settings = template_settings({
        "name": "db.url", "mode": "0440",
        "template": "postgresql://{{ db.username | url }}:{{ pw | url }}@{{ db.host }}/app",
        "inputs": {"db": ARN, "pw": f"{ARN}:password::"},
    })
    (entry,) = settings.entries
    assert len({ref.target for ref in entry.references}) == 1  # both inputs share one fetch
    outcomes = {entry.references[0].target: Fetched(SecretBytes(json.dumps(DB).encode()), "v3")}
    rendered = render(settings, outcomes)
    (file,) = rendered.files
    assert (file.path, file.mode) == ("db.url", 0o440)
    assert file.content.reveal() == b"postgresql://app%20user:p%40ss%3Aw%2Frd%27%24x@db.internal/app"
    manifest = json.loads(rendered.manifest)
    assert set(manifest["entries"][0]["inputs"]) == {"db", "pw"}
    assert b"p@ss" not in rendered.manifest


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "x", "template": "{{ a }}"}, "inputs must be an object"),
        ({"name": "x", "template": "{{ a }}", "inputs": {"b": "/p/b"}}, "uses 'a', which is not in inputs"),
        ({"name": "x", "template": "{{ a }}", "inputs": {"a": "/p/a", "b": "/p/b"}}, "input 'b' is not used"),
        ({"name": "x", "template": "{{ a }}", "inputs": {"a": "prod/db"}}, "input 'a': valueFrom 'prod/db'"),
        ({"name": "x", "template": "{{ a }}", "inputs": {"a": "/p/a"}, "optional": True}, "does not apply"),
        ({"name": "x", "template": "{{ a }}", "templateFile": "/t", "inputs": {"a": "/p/a"}}, "not both"),
        ({"name": "x", "templateFile": "/does/not/exist", "inputs": {"a": "/p/a"}}, "cannot read templateFile"),
        ({"name": "../x", "template": "{{ a }}", "inputs": {"a": "/p/a"}}, "'..' component"),
    ],
)
def test_template_configuration_errors(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        template_settings(entry)
    assert message in caught.value.message


def test_template_file(tmp_path: Path) -> None:
    path = tmp_path / "app.properties"
    path.write_text("db.user={{ db.username }}\n")
    settings = template_settings({"name": "app.properties", "templateFile": str(path), "inputs": {"db": ARN}})
    outcomes = {settings.entries[0].references[0].target: Fetched(SecretBytes(json.dumps(DB).encode()))}
    assert render(settings, outcomes).files[0].content.reveal() == b"db.user=app user\n"


@given(st.text(max_size=60))
def test_any_template_text_parses_or_is_a_configuration_error(text: str) -> None:
    try:
        template = parse_template(text, "t")
    except ConfigError as exc:
        assert "malformed placeholder" in exc.message or "unknown filter" in exc.message
    else:
        if "{{" not in text:
            assert render_template(template, {}, "t", 1 << 20).reveal() == text.encode()
