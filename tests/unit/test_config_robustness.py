"""Hostile configuration is a configuration error (exit 2) with one line saying why: never a traceback, never
exit 1. Each case ran into a traceback before its fix."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest
import structlog

from sidecar.cli import main
from sidecar.settings.model import MAX_MAX_BYTES, MAX_SECONDS

DEEP = "[" * 100_000 + "]" * 100_000
BASE = {"AWS_REGION": "eu-west-1", "PATH": "/usr/bin:/bin"}


def check(environ: dict[str, str], *args: str) -> tuple[int, str]:
    """``secrets-sidecar check`` in this process: its exit code and everything it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", *args], {**BASE, **environ})
    structlog.reset_defaults()
    return code, out.getvalue() + err.getvalue()


def assert_config_error(environ: dict[str, str], *fragments: str) -> str:
    code, output = check(environ)
    assert code == 2, output
    assert "Traceback" not in output
    failed = json.loads(output.splitlines()[-1])
    assert (failed["event"], failed["exit_code"]) == ("failed", 2)
    for fragment in fragments:
        assert fragment in failed["reason"], failed["reason"]
    return str(failed["reason"])


def entry(**fields: object) -> str:
    return json.dumps([{"name": "db", "valueFrom": "/app/db", **fields}])


@pytest.mark.parametrize(("environ", "fragment"), [
    ({"SIDECAR_SECRETS": DEEP}, "SIDECAR_SECRETS is JSON nested too deeply to read"),
    ({"SIDECAR_SECRET_a": "/p", "SIDECAR_REFRESH_INTERVAL": "60", "SIDECAR_NOTIFY_COMMAND": DEEP},
     "SIDECAR_NOTIFY_COMMAND is JSON nested too deeply to read"),
], ids=["secrets", "notify-command"])
def test_json_nested_too_deeply_in_the_configuration(environ: dict[str, str], fragment: str) -> None:
    assert_config_error(environ, fragment)


def test_a_config_file_nested_too_deeply(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"secrets": ' + DEEP + "}")
    assert_config_error({"SIDECAR_CONFIG_FILE": str(path)}, "is JSON nested too deeply to read")


def test_a_notify_command_argument_with_nul_is_refused_at_configuration_time() -> None:
    environ = {"SIDECAR_SECRET_a": "/p", "SIDECAR_REFRESH_INTERVAL": "60",
               "SIDECAR_NOTIFY_COMMAND": json.dumps(["/bin/reload", "--now\x00x"])}
    assert_config_error(environ, "SIDECAR_NOTIFY_COMMAND: argument #1 holds a NUL character")


@pytest.mark.parametrize("variable", ["SIDECAR_TIMEOUT", "SIDECAR_REFRESH_INTERVAL", "SIDECAR_HEALTH_MAX_AGE"])
@pytest.mark.parametrize("value", ["1e10", "1e300", str(10**400)])
def test_durations_have_a_documented_maximum(variable: str, value: str) -> None:
    environ = {"SIDECAR_SECRET_a": "/p", variable: value}
    if variable == "SIDECAR_HEALTH_MAX_AGE":
        environ["SIDECAR_REFRESH_INTERVAL"] = "60"
    reason = assert_config_error(environ, variable)
    assert f"maximum of {MAX_SECONDS}" in reason or "is not a positive number" in reason
    assert len(reason) < 200
    assert check({"SIDECAR_SECRET_a": "/p", variable: str(MAX_SECONDS), "SIDECAR_REFRESH_INTERVAL": "60"})[0] == 0


def test_max_bytes_has_a_documented_maximum() -> None:
    assert_config_error({"SIDECAR_SECRET_a": "/p", "SIDECAR_MAX_BYTES": str(MAX_MAX_BYTES + 1)},
                        f"above the maximum of {MAX_MAX_BYTES}")
    assert check({"SIDECAR_SECRET_a": "/p", "SIDECAR_MAX_BYTES": str(MAX_MAX_BYTES)})[0] == 0


@pytest.mark.parametrize(("environ", "fragment"), [
    ({"SIDECAR_SECRETS": entry(name="db\ud800")}, "is not valid UTF-8"),
    ({"SIDECAR_SECRETS": entry(name="dir/\udcff")}, "is not valid UTF-8"),
    ({"SIDECAR_SECRET_a\udcff": "/p"}, "is not valid UTF-8"),  # invalid bytes in a variable's name
    ({"SIDECAR_SECRET_a": "/p", "SIDECAR_OUTPUT_DIR": "/run/\udcffsecrets"}, "is not valid UTF-8"),
    ({"SIDECAR_SECRET_a": "/p", "SIDECAR_ENV_FILE": "app\ud800.env"}, "is not valid UTF-8"),
    ({"SIDECAR_SECRET_a": "/p", "SIDECAR_REFRESH_INTERVAL": "60", "SIDECAR_NOTIFY_COMMAND": '["/bin/x", "\\ud800"]'},
     "argument #1 holds a NUL character or is not valid UTF-8"),
    ({"SIDECAR_SECRETS": json.dumps([{"name": "t", "template": "x\ud800{{ s }}", "inputs": {"s": "/p"}}])},
     "the template is not text"),
    ({"SIDECAR_SECRETS": json.dumps([{"name": "t", "template": "x\x00{{ s }}", "inputs": {"s": "/p"}}])},
     "the template is not text"),
], ids=["name", "name-component", "shorthand-name", "output-dir", "env-file", "notify-argument", "template-surrogate",
        "template-nul"])
def test_text_that_is_not_utf8_is_refused(environ: dict[str, str], fragment: str) -> None:
    assert_config_error(environ, fragment)


@pytest.mark.parametrize("content", [b"a\x00b {{ s }}", b"\xff\xfe{{ s }}"], ids=["nul", "invalid-utf8"])
def test_a_template_file_that_is_not_text(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "t.tmpl"
    path.write_bytes(content)
    secrets = json.dumps([{"name": "t", "templateFile": str(path), "inputs": {"s": "/p"}}])
    assert_config_error({"SIDECAR_SECRETS": secrets}, "'t'")


@pytest.mark.parametrize("path", ["/tmp/a\x00b", "/tmp/\ud800", "/tmp/\udcff-missing"], ids=["nul", "surrogate",
                                                                                            "escaped-byte"])
def test_a_template_file_path_that_no_file_can_have(path: str) -> None:
    secrets = json.dumps([{"name": "t", "templateFile": path, "inputs": {"s": "/p"}}])
    assert_config_error({"SIDECAR_SECRETS": secrets}, "templateFile")


@pytest.mark.parametrize("path", ["/tmp/\ud800.json", "/tmp/a\x00.json"], ids=["surrogate", "nul"])
def test_a_config_file_path_that_no_file_can_have(path: str) -> None:
    assert_config_error({"SIDECAR_CONFIG_FILE": path}, "config file")


def test_a_template_file_that_is_a_fifo_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "t.tmpl"
    os.mkfifo(fifo)
    secrets = json.dumps([{"name": "t", "templateFile": str(fifo), "inputs": {"s": "/p"}}])
    assert_config_error({"SIDECAR_SECRETS": secrets}, "not a regular file")
