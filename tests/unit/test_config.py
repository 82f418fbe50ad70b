from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.config import load_settings
from sidecar.errors import ConfigError

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"
BASE_ENV = {"AWS_REGION": "eu-west-1"}


def load(env: dict[str, str] | None = None, **flags: object):  # type: ignore[no-untyped-def]
    return load_settings(flags, {**BASE_ENV, **(env or {})}, process_uid=1000, process_gid=1000)


def error(env: dict[str, str] | None = None, **flags: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load(env, **flags)
    return caught.value.message


def secrets(*entries: dict[str, object]) -> dict[str, str]:
    return {"SIDECAR_SECRETS": json.dumps(list(entries))}


def test_defaults() -> None:
    settings = load(secrets({"name": "a", "valueFrom": "/p/a"}))
    assert settings.output_dir == "/run/secrets"
    assert (settings.file_mode, settings.uid, settings.gid) == (0o400, 1000, 1000)
    assert settings.timeout_seconds == 60
    assert settings.max_bytes == 1024 * 1024
    assert (settings.sm_batch, settings.log_format, settings.env_file) == ("auto", "json", None)
    (entry,) = settings.entries
    assert (entry.name, entry.mode, entry.uid, entry.gid) == ("a", 0o400, 1000, 1000)
    assert (entry.optional, entry.expand) == (False, False)


def test_entry_settings_override_globals() -> None:
    settings = load(
        {**secrets({"name": "c", "valueFrom": "/p/c", "mode": "0440", "uid": 7, "gid": 8, "optional": True,
                    "expand": True}), "SIDECAR_FILE_MODE": "0600", "SIDECAR_UID": "5", "SIDECAR_GID": "6"}
    )
    (entry,) = settings.entries
    assert (entry.mode, entry.uid, entry.gid, entry.optional, entry.expand) == (0o440, 7, 8, True, True)
    assert (settings.file_mode, settings.uid, settings.gid) == (0o600, 5, 6)


def test_shorthand_combines_with_the_json_list() -> None:
    settings = load({**secrets({"name": "a", "valueFrom": "/p/a"}), "SIDECAR_SECRET_API_KEY": f"{ARN}:key::"})
    assert [(e.name, e.reference.json_key) for e in settings.entries] == [("a", None), ("API_KEY", "key")]


def test_precedence_flags_over_environment_over_file(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"outputDir": "/from/file", "timeout": 5, "logLevel": "debug",
                                  "secrets": [{"name": "f", "valueFrom": "/p/f"}]}))
    env = {"SIDECAR_CONFIG_FILE": str(config), "SIDECAR_TIMEOUT": "7"}
    settings = load(env, outputDir="/from/flag")
    assert (settings.output_dir, settings.timeout_seconds, settings.log_level) == ("/from/flag", 7.0, "debug")
    assert [e.name for e in settings.entries] == ["f"]
    assert [e.name for e in load({**env, **secrets({"name": "e", "valueFrom": "/p/e"})}).entries] == ["e"]
    assert [e.name for e in load(env, secrets='[{"name": "g", "valueFrom": "/p/g"}]').entries] == ["g"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SIDECAR_SECRETS": "[{'name': 'a'}]"}, "SIDECAR_SECRETS is not valid JSON at line 1 column 3"),
        ({"SIDECAR_SECRETS": '{"name": "a"}'}, "must be a JSON array"),
        ({"SIDECAR_SECRETS": '["a"]'}, "must be an object"),
        (secrets({"name": "a", "valueFrom": "/p/a", "mdoe": "0400"}), "unknown key 'mdoe' (did you mean mode?)"),
        (secrets({"name": "a"}), "valueFrom is required"),
        (secrets({"valueFrom": "/p/a"}), "name is required"),
        (secrets({"name": "a", "valueFrom": 5}), "valueFrom must be a string"),
        (secrets({"name": "a", "valueFrom": "/p/a", "optional": "yes"}), "optional must be true or false"),
        (secrets({"name": "a", "valueFrom": "/p/a", "mode": "0460"}), "group or others write"),
        (secrets({"name": "a", "valueFrom": "/p/a", "mode": "0401"}), "group or others write or execute"),
        (secrets({"name": "a", "valueFrom": "/p/a", "mode": 400}), "not an octal mode string"),
        (secrets({"name": "a", "valueFrom": "/p/a", "mode": "rw"}), "not an octal mode string"),
        (secrets({"name": "a", "valueFrom": "/p/a", "mode": "4400"}), "special bits"),
        (secrets({"name": "a", "valueFrom": "/p/a", "mode": "0040"}), "owner read"),
        (secrets({"name": "a", "valueFrom": "/p/a", "uid": -1}), "below the minimum"),
        (secrets({"name": "a", "valueFrom": "/p/a", "uid": True}), "not a whole number"),
        (secrets({"name": "../a", "valueFrom": "/p/a"}), "'..' component"),
        (secrets({"name": "/a", "valueFrom": "/p/a"}), "absolute"),
        (secrets({"name": "..manifest.json", "valueFrom": "/p/a"}), "reserved"),
        (secrets({"name": "a", "valueFrom": "/p/a"}, {"name": "a", "valueFrom": "/p/b"}), "duplicate names"),
        ({**secrets({"name": "A", "valueFrom": "/p/a"}), "SIDECAR_SECRET_A": "/p/b"}, "duplicate names"),
        (secrets({"name": "db", "valueFrom": "/p/a"}, {"name": "db/x", "valueFrom": "/p/b"}), "is a file"),
        ({"SIDECAR_OUTPUTDIR": "/x"}, "unknown setting SIDECAR_OUTPUTDIR (did you mean SIDECAR_OUTPUT_DIR?)"),
        ({"SIDECAR_SECRET_": "/p/a"}, "names no secret"),
        ({"SIDECAR_FILE_MODE": "0777"}, "SIDECAR_FILE_MODE"),
        ({"SIDECAR_TIMEOUT": "0"}, "positive number of seconds"),
        ({"SIDECAR_TIMEOUT": "soon"}, "positive number of seconds"),
        ({"SIDECAR_MAX_BYTES": "0"}, "below the minimum"),
        ({"SIDECAR_LOG_FORMAT": "xml"}, "not one of json, console"),
        ({"SIDECAR_SM_BATCH": "sometimes"}, "not one of auto, always, never"),
        ({"SIDECAR_ENV_FILE": "../app.env"}, "env file name"),
        ({"SIDECAR_ENV_FILE": "app.env", **secrets({"name": "db/password", "valueFrom": "/p/a"})},
         "not a valid environment variable name"),
        ({"SIDECAR_ENV_FILE": "a", **secrets({"name": "a", "valueFrom": "/p/a"})}, "duplicate names"),
        ({"SIDECAR_CONFIG_FILE": "/does/not/exist"}, "cannot read config file /does/not/exist"),
        ({"SIDECAR_SECRET_X": "prod/db"}, "SIDECAR_SECRET_X: valueFrom 'prod/db'"),
    ],
)
def test_configuration_errors_are_precise(env: dict[str, str], message: str) -> None:
    assert message in error(env)


def test_config_file_errors(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text('{"outputdir": "/x"}')
    assert "unknown key 'outputdir' (did you mean outputDir?)" in error({"SIDECAR_CONFIG_FILE": str(config)})
    config.write_text("[]")
    assert "must hold a JSON object" in error({"SIDECAR_CONFIG_FILE": str(config)})


def test_json_errors_do_not_echo_the_document() -> None:
    message = error({"SIDECAR_SECRETS": '[{"name": "a", "valueFrom": "hunter2-value"'})
    assert "hunter2" not in message


def test_warnings_for_world_readable_files_and_long_timeouts() -> None:
    settings = load({**secrets({"name": "a", "valueFrom": "/p/a", "mode": "0444"}), "SIDECAR_TIMEOUT": "150"})
    assert any("readable by every user" in w for w in settings.warnings)
    assert any("startTimeout" in w for w in settings.warnings)


def test_region_comes_from_the_environment_or_the_setting() -> None:
    settings = load_settings({}, {"AWS_DEFAULT_REGION": "us-east-2", "SIDECAR_SECRET_A": "/p/a"})
    assert settings.entries[0].reference.target.region == "us-east-2"
    settings = load_settings({}, {"SIDECAR_REGION": "ca-central-1", "AWS_REGION": "x", "SIDECAR_SECRET_A": "/p/a"})
    assert settings.entries[0].reference.target.region == "ca-central-1"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.sampled_from(["SIDECAR_SECRETS", "SIDECAR_FILE_MODE", "SIDECAR_UID", "SIDECAR_TIMEOUT",
                                        "SIDECAR_SECRET_X", "SIDECAR_ENV_FILE", "SIDECAR_OUTPUT_DIR"]),
                       st.text(max_size=40) | json_values.map(json.dumps)))
def test_any_environment_loads_or_is_a_configuration_error(env: dict[str, str]) -> None:
    try:
        load(env)
    except ConfigError as exc:
        assert exc.message and "\n" not in exc.message.strip()


def test_no_secrets_is_an_error_not_a_silent_success() -> None:
    assert "no secrets configured" in error()
    assert "no secrets configured" in error({"SIDECAR_SECRETS": "[]"})


def test_an_expanded_entry_is_a_directory_other_entries_may_enter() -> None:
    settings = load(secrets({"name": "db", "valueFrom": "/p/a", "expand": True},
                            {"name": "db/extra", "valueFrom": "/p/b"}))
    assert [e.name for e in settings.entries] == ["db", "db/extra"]
    assert "duplicate names" in error(secrets({"name": "db", "valueFrom": "/p/a", "expand": True},
                                              {"name": "db", "valueFrom": "/p/b"}))


def test_an_env_file_wider_than_an_entry_is_refused_naming_the_entries() -> None:
    message = error({**secrets({"name": "DB", "valueFrom": ARN, "mode": "0400"},
                               {"name": "OTHER", "valueFrom": ARN, "uid": 2000},
                               {"name": "OPEN", "valueFrom": ARN}),
                     "SIDECAR_ENV_FILE": "app.env", "SIDECAR_FILE_MODE": "0440"})
    assert message.startswith("the env file 'app.env' (mode 0440, owner 1000:1000) holds every entry's value")
    assert "'DB' (mode 0400, owner 1000:1000); 'OTHER' (mode 0440, owner 2000:1000)." in message
    assert "'OPEN'" not in message


def test_the_same_entries_without_an_env_file_are_valid() -> None:
    settings = load({**secrets({"name": "DB", "valueFrom": ARN, "mode": "0400"},
                               {"name": "OTHER", "valueFrom": ARN, "uid": 2000}), "SIDECAR_FILE_MODE": "0440"})
    assert [e.name for e in settings.entries] == ["DB", "OTHER"]


def test_a_world_readable_env_file_is_a_warning() -> None:
    settings = load({**secrets({"name": "DB", "valueFrom": ARN}), "SIDECAR_ENV_FILE": "app.env",
                     "SIDECAR_FILE_MODE": "0444"})
    assert "the env file 'app.env' will be readable by every user (mode 0444)" in settings.warnings
