"""The table of settings is the one source: the docs table, the flags and the loader follow it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sidecar.errors import ConfigError
from sidecar.settings.arguments import UsageError, parse_arguments, setting_flags
from sidecar.settings.load import load_settings, settings_from
from sidecar.settings.options import CONFIG_FILE, OPTIONS, SECRETS, SETTINGS, Option, Setting
from sidecar.settings.texts import Unreadable
from sidecar.template import Placeholder

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
ENV = {"AWS_REGION": "eu-west-1"}
IDS = {"process_uid": 1000, "process_gid": 1000}


def _row(setting: Option[object] | Setting) -> str:
    in_file = not isinstance(setting, Setting) or setting.in_file
    key = f" `{setting.key}` " if in_file else " "
    return f"| `{setting.env}` | `{setting.flag}` |{key}| {setting.documented_default} |"


@pytest.mark.parametrize("setting", [SECRETS, CONFIG_FILE, *OPTIONS], ids=lambda s: s.env)
def test_the_docs_table_has_the_settings_row(setting: Option[object] | Setting) -> None:
    assert any(line.startswith(_row(setting)) for line in CONFIGURATION.splitlines()), _row(setting)


def test_the_docs_table_has_no_row_for_an_unknown_setting() -> None:
    documented = set(re.findall(r"^\| `(SIDECAR_[A-Z_]+)` \|", CONFIGURATION, re.M))
    assert documented == {s.env for s in SETTINGS}


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.default not in (None, ())], ids=lambda o: o.env)
def test_the_documented_default_is_the_default(option: Option[object]) -> None:
    assert option.parse("docs", option.documented_default.strip("`")) == option.default


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.env)
def test_every_setting_has_its_flag(setting: Setting) -> None:
    for command in ("run", "check", "healthcheck"):
        assert setting_flags(parse_arguments([command, setting.flag, "v"])) == {setting.key: "v"}


def test_a_mistyped_flag_is_a_usage_error_naming_the_flag_meant() -> None:
    with pytest.raises(UsageError) as caught:
        parse_arguments(["run", "--ouput-dir", "/x"])
    assert caught.value.message == "unrecognized arguments: --ouput-dir /x (did you mean --output-dir?)"
    assert caught.value.prog == "secrets-sidecar" and caught.value.usage.startswith("usage: secrets-sidecar")


def test_settings_from_given_texts_reads_no_file() -> None:
    """The pure loader takes the files' contents; the paths need not exist."""
    config = {"outputDir": "/from/file", "secrets": [
        {"name": "conn", "templateFile": "/nowhere/conn.tmpl", "inputs": {"a": "/p/a"}},
    ]}
    files = {"/nowhere/config.json": json.dumps(config).encode(), "/nowhere/conn.tmpl": b"x={{ a }}\r\n"}
    settings = settings_from({"configFile": "/nowhere/config.json"}, ENV, files, **IDS)
    (entry,) = settings.entries
    assert (settings.output_dir, entry.name) == ("/from/file", "conn")
    assert entry.template is not None
    assert entry.template.segments == ("x=", Placeholder("a", None, None), "\n")  # as text: universal newlines


@pytest.mark.parametrize(("files", "message"), [
    ({}, "cannot read config file /c.json: not read"),
    ({"/c.json": Unreadable("Permission denied")}, "cannot read config file /c.json: Permission denied"),
    ({"/c.json": b"[]"}, "config file /c.json must hold a JSON object"),
])
def test_an_unreadable_config_file_is_a_configuration_error(files: dict[str, bytes | Unreadable], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from({}, {**ENV, "SIDECAR_CONFIG_FILE": "/c.json"}, files, **IDS)
    assert caught.value.message == message


def test_the_edge_reads_the_template_files_the_config_file_names(tmp_path: Path) -> None:
    template = tmp_path / "conn.tmpl"
    template.write_bytes(b"{{ a }}")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"secrets": [{"name": "t", "templateFile": str(template), "inputs": {"a": "/p/a"}}]}))
    settings = load_settings({"configFile": str(config)}, ENV, **IDS)
    assert [e.name for e in settings.entries] == ["t"]
    template.unlink()
    with pytest.raises(ConfigError, match=r"cannot read templateFile .*conn.tmpl: No such file or directory"):
        load_settings({"configFile": str(config)}, ENV, **IDS)
