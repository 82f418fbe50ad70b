"""SIDECAR_ENV_FILE: one dotenv file that ``set -a; . file`` turns back into the exact bytes, in dash and bash."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SecretValues, run_sidecar, sidecar_env, skip_unless_required
from tests.e2e.helpers import assert_failed, assert_ok, full_state, owner_and_mode, secrets_json

NASTY = {
    "QUOTES": "it's a \"quoted\" 'value' ''",
    "LONE_QUOTE": "'",
    "NEWLINES": "line one\nline two\n\n",
    "DOLLARS": "$HOME ${PATH} $(id -u) $1 $$ $",
    "BACKTICKS": "`id -u` and `exit 7`",
    "BACKSLASHES": "back\\slash \\n \\\\ \\' end\\",
    "UNICODE": "p\u00e4ssw\u00f6rd \u2603 \u65e5\u672c\u8a9e \u200b\U0001f511",
    "SPACES": "  leading and trailing  ",
    "EQUALS": "a=b=c; export X=1 # not a comment",
    "CONTROL": "tab\there\r\ncrlf \x1b[31mred",
}


def _exported(shell: str, env_file: Path) -> dict[str, str]:
    """The environment a program started after ``set -a; . file`` in ``shell`` receives."""
    completed = subprocess.run(
        [shell, "-c", 'set -a; . "$1"; exec env -0', shell, str(env_file)],
        env={"PATH": os.environ["PATH"]}, capture_output=True, check=True, timeout=10,
    )
    pairs = [item.partition(b"=") for item in completed.stdout.split(b"\0") if item]
    return {name.decode(): value.decode() for name, _, value in pairs}


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_env_file_restores_exact_bytes_in_posix_shells(
    shell: str, aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    if shutil.which(shell) is None:
        skip_unless_required(f"{shell} is not installed")
    arn = aws.secretsmanager.create_secret(Name="env/nasty", SecretString=secret_values.add(json.dumps(NASTY)))["ARN"]
    for value in NASTY.values():
        secret_values.add(value)
    aws.ssm.put_parameter(Name="/env/simple", Value=secret_values.add("simple-env-value"), Type="SecureString")
    entries = [{"name": "APP", "valueFrom": arn, "expand": True},
               {"name": "SIMPLE", "valueFrom": "/env/simple"},
               {"name": "ONE_KEY", "valueFrom": f"{arn}:DOLLARS::"}]
    env = sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries),
                      SIDECAR_ENV_FILE="app.env", SIDECAR_FILE_MODE="0440", SIDECAR_UID="1000", SIDECAR_GID="1001")

    result = run_sidecar(env, guard=secret_values)

    assert_ok(result)
    exported = _exported(shell, outdir / "app.env")
    for key, value in NASTY.items():
        assert exported[f"APP_{key}"] == value, key
        assert (outdir / "APP" / key).read_bytes() == value.encode()  # and the files are there too
    assert exported["SIMPLE"] == "simple-env-value"
    assert exported["ONE_KEY"] == NASTY["DOLLARS"]
    assert os.readlink(outdir / "app.env") == "..data/app.env"
    assert owner_and_mode(outdir / "app.env") == (1000, 1001, "0440")
    assert {e["name"] for e in result.events if e["event"] == "file"} >= {"app.env", "SIMPLE", "APP/<key #1>"}


def test_two_files_that_would_share_one_variable_are_an_error(
    aws: Any, previous: Path, secret_values: SecretValues
) -> None:
    arn = aws.secretsmanager.create_secret(Name="env/app", SecretString=secret_values.add('{"X": "expanded-x-value"}'))
    aws.ssm.put_parameter(Name="/env/x", Value=secret_values.add("plain-x-value"), Type="SecureString")
    entries = [{"name": "APP", "valueFrom": arn["ARN"], "expand": True}, {"name": "APP_X", "valueFrom": "/env/x"}]
    env = sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(previous), SIDECAR_SECRETS=secrets_json(*entries),
                      SIDECAR_ENV_FILE="app.env")
    before = full_state(previous)

    result = run_sidecar(env, guard=secret_values)

    # Files APP/X and APP_X are distinct, but the env file could only hold one APP_X: the shell keeps the last.
    assert_failed(result, 3, "'APP/<key #1>'", "'APP_X'")
    assert full_state(previous) == before


def test_an_env_file_that_would_widen_an_entry_is_refused_by_run_and_check(
    aws: Any, previous: Path, secret_values: SecretValues
) -> None:
    """An entry kept to its owner (mode 0400) or to another user (its own uid) must not become readable through
    the env file, which gets the global mode and owner (0440 here: the group would read every value)."""
    aws.ssm.put_parameter(Name="/env/private", Value=secret_values.add("private-never-fetched"), Type="SecureString")
    entries = [{"name": "PRIVATE", "valueFrom": "/env/private", "mode": "0400"},
               {"name": "OTHER_APP", "valueFrom": "/env/private", "uid": 2000},
               {"name": "SHARED", "valueFrom": "/env/private"}]
    env = sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(previous), SIDECAR_SECRETS=secrets_json(*entries),
                      SIDECAR_ENV_FILE="app.env", SIDECAR_FILE_MODE="0440", SIDECAR_UID="1000", SIDECAR_GID="1001")
    before = full_state(previous)

    for command in ("run", "check"):
        result = run_sidecar(env, command, guard=secret_values)
        failed = assert_failed(result, 2, "the env file 'app.env' (mode 0440, owner 1000:1001)",
                               "'PRIVATE' (mode 0400, owner 1000:1001); 'OTHER_APP' (mode 0440, owner 2000:1001).")
        assert "'SHARED'" not in failed["reason"]
        assert not [e for e in result.events if e["event"] == "api_call"]
    assert full_state(previous) == before


def test_a_world_readable_env_file_is_warned_about_by_run_and_check(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/env/open", Value=secret_values.add("open-env-value"), Type="SecureString")
    env = sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(outdir),
                      SIDECAR_SECRETS=secrets_json({"name": "OPEN", "valueFrom": "/env/open"}),
                      SIDECAR_ENV_FILE="app.env", SIDECAR_FILE_MODE="0444")
    warning = "the env file 'app.env' will be readable by every user (mode 0444)"

    checked = run_sidecar(env, "check", guard=secret_values)
    assert checked.code == 0 and f"  warning: {warning}\n" in checked.stdout
    assert f"app.env  (env file)  mode 0444  owner {os.getuid()}:{os.getgid()}" in checked.stdout

    result = run_sidecar(env, guard=secret_values)
    assert_ok(result)
    assert warning in [e["reason"] for e in result.events if e["event"] == "config_warning"]
    assert owner_and_mode(outdir / "app.env")[2] == "0444"
