"""A sample of the fuzzed hostile configurations through the real ``secrets-sidecar check`` process (the full
generated set runs in-process in tests/unit/test_config_fuzz.py): documented exit code, one final line, no
traceback, nothing of the environment's secrets printed. Environment bytes that are not UTF-8 reach the process
as bytes, as ECS would pass them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import SecretValues, run_sidecar, sidecar_env
from tests.e2e.helpers import assert_failed

DEEP = "[" * 20_000 + "]" * 20_000  # an environment variable holds at most 128 KiB
ENVIRONMENT_SECRET = "hostile-config-env-secret-5e1d"
REFRESH = {"SIDECAR_SECRET_a": "/p", "SIDECAR_REFRESH_INTERVAL": "60"}


@pytest.mark.parametrize(("settings", "fragment"), [
    ({"SIDECAR_SECRETS": DEEP}, "nested too deeply"),
    ({**REFRESH, "SIDECAR_NOTIFY_COMMAND": DEEP}, "nested too deeply"),
    ({**REFRESH, "SIDECAR_NOTIFY_COMMAND": json.dumps(["/bin/reload", "a\x00b"])}, "argument #1 holds a NUL"),
    ({"SIDECAR_SECRET_a": "/p", "SIDECAR_TIMEOUT": "1e10"}, "maximum of 604800"),
    ({**REFRESH, "SIDECAR_REFRESH_INTERVAL": "1e10"}, "maximum of 604800"),
    ({"SIDECAR_SECRET_a": "/p", "SIDECAR_MAX_BYTES": "9" * 30}, "above the maximum"),
    ({"SIDECAR_SECRET_a\udcff": "/p"}, "not valid UTF-8"),
    ({"SIDECAR_SECRET_a": "/p", "SIDECAR_OUTPUT_DIR": "/run/\udcff"}, "not valid UTF-8"),
    ({"SIDECAR_SECRET_a": "/p", "SIDECAR_ENV_FILE": "app\udcfe.env"}, "not valid UTF-8"),
    ({"SIDECAR_SECRETS": '[{"name": "a\\ud800", "valueFrom": "/p"}]'}, "not valid UTF-8"),
    ({"SIDECAR_SECRETS": '[{"name": "t", "templateFile": "/tmp/\\ud800", "inputs": {"s": "/p"}}]'}, "templateFile"),
    ({"SIDECAR_SECRETS": '[{"name": "t", "template": "\\u0000{{ s }}", "inputs": {"s": "/p"}}]'}, "not text"),
], ids=["deep-secrets", "deep-notify", "nul-notify", "timeout-1e10", "interval-1e10", "max-bytes", "bytes-in-name",
        "bytes-in-output-dir", "bytes-in-env-file", "surrogate-name", "surrogate-template-path", "nul-template"])
def test_hostile_configuration_is_exit_2_in_the_real_process(
    settings: dict[str, str], fragment: str, moto: str, tmp_path: Path, secret_values: SecretValues
) -> None:
    secret_values.add(ENVIRONMENT_SECRET)
    env = sidecar_env(moto, **{"SIDECAR_OUTPUT_DIR": str(tmp_path), "DB_PASSWORD": ENVIRONMENT_SECRET, **settings})
    for command in ("check", "run"):
        result = run_sidecar(env, command)
        assert_failed(result, 2, fragment)
    assert os.listdir(tmp_path) == []


def test_a_config_file_nested_too_deeply_is_exit_2(moto: str, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"secrets": ' + DEEP + "}")
    assert_failed(run_sidecar(sidecar_env(moto, SIDECAR_CONFIG_FILE=str(config)), "check"), 2, "nested too deeply")
