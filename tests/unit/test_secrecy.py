from __future__ import annotations

import ast
import base64
import io
import json
import pickle
import shlex
import time
import urllib.parse
from pathlib import Path

import pytest
import structlog

from sidecar import log as sidecar_log
from sidecar.secret import SecretBytes
from tests import conftest
from tests.conftest import SecretValues, leak_forms


def test_secret_bytes_never_render_their_value() -> None:
    secret = SecretBytes(b"hunter2-value")
    for rendered in (repr(secret), str(secret), f"{secret}", f"{secret!r}", "%s" % (secret,), str([secret])):  # noqa: UP031
        assert "hunter2" not in rendered
        assert "<redacted>" in rendered
    assert secret.reveal() == b"hunter2-value"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_log_events_redact_secret_and_raw_bytes() -> None:
    stream = io.StringIO()
    logger = sidecar_log.configure("info", "json", stream)
    logger.info("event", value=SecretBytes(b"hunter2-value"), raw=b"hunter2-bytes", name="ok")
    structlog.reset_defaults()
    event = json.loads(stream.getvalue())
    assert (event["value"], event["raw"], event["name"]) == ("<redacted>", "<redacted>", "ok")
    assert "hunter2" not in stream.getvalue()


@pytest.fixture
def own_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """The values these tests register stay here: registered for the session, "5432" would fail every later
    test whose output holds that number for reasons of its own (an account id)."""
    monkeypatch.setattr(conftest, "_SESSION_VALUES", set())


@pytest.mark.usefixtures("own_session")
def test_the_guard_finds_values_in_output_including_json_members() -> None:
    guard = SecretValues()
    guard.add(json.dumps({"password": "member-secret", "port": 5432}))
    guard.outputs.append(b'{"event": "file", "reason": "... member-secret ..."}')
    assert len(guard.leaks()) == 1
    guard.outputs[:] = [b"nothing here but 5432"]
    assert len(guard.leaks()) == 1  # numbers of four digits or more count too
    guard.outputs[:] = [b"clean"]
    assert guard.leaks() == []


def test_the_guard_finds_every_encoded_form_of_a_value() -> None:
    value = "s3cr\u00e9t 'quoted' \"dq\" a/b+c?=&\n\U0001f511"
    encoded_inside_other_text = base64.b64encode(b"xy" + value.encode("utf-8", "surrogatepass") + b"z")
    nested = json.dumps(json.dumps({"v": value}))
    for output in (
        json.dumps({"v": value}).encode(),
        json.dumps({"v": value}, ensure_ascii=False).encode("utf-8", "surrogatepass"),
        nested.encode(),
        repr({"v": value}).encode("utf-8", "surrogatepass"),
        repr(value.encode("utf-8", "surrogatepass")).encode(),
        encoded_inside_other_text,
        base64.urlsafe_b64encode(b"x" + value.encode("utf-8", "surrogatepass")),
        urllib.parse.quote(value, safe="").encode(),
        urllib.parse.urlencode({"v": value}).encode(),
        shlex.quote(value).encode("utf-8", "surrogatepass"),
    ):
        guard = SecretValues(values=leak_forms(value), outputs=[output])
        assert guard.leaks(), output
    lone_surrogate = "before\ud800after"
    for output in (json.dumps(lone_surrogate).encode(), repr(lone_surrogate).encode("utf-8", "surrogatepass")):
        assert SecretValues(values=leak_forms(lone_surrogate), outputs=[output]).leaks(), output


@pytest.mark.usefixtures("own_session")
def test_the_guard_walks_nested_json_and_registers_keys() -> None:
    guard = SecretValues()
    guard.add(json.dumps({"outer": {"deep-secret-key": ["list-member-secret", {"k": 987654}]}}))
    for member in (b"list-member-secret", b"987654"):
        assert member in guard.values
    for key in (b"deep-secret-key", b"outer"):
        assert key in guard.keys
    guard.outputs.append(b'{"event": "failed", "reason": "key \'deep-secret-key\' is bad"}')
    assert guard.leaks()


def test_the_guard_reads_a_killed_process_output(monkeypatch: pytest.MonkeyPatch) -> None:
    captures = conftest._Captures()
    monkeypatch.setattr(conftest, "_CAPTURES", captures)
    process = conftest.spawn(["sh", "-c", "echo printed-before-the-kill; echo to-stderr >&2; exec sleep 60"])
    deadline = time.monotonic() + 10
    while b"printed" not in process.stdout() and time.monotonic() < deadline:
        time.sleep(0.01)
    outputs = captures.collect()  # still running: collect kills it, then reads
    assert process.poll() is not None
    assert outputs == [b"printed-before-the-kill\n", b"to-stderr\n"]


_SPAWNERS = {"run", "Popen", "call", "check_call", "check_output", "docker", "create_subprocess_exec"}


def test_every_sidecar_process_in_the_tests_is_started_through_the_capturing_helpers() -> None:
    """A test that started the sidecar with ``subprocess`` directly would have to remember to hand its output
    to the guard; ``spawn``/``run_captured`` make that unnecessary, so nothing else may start it."""
    tests = Path(__file__).resolve().parent.parent
    offenders = []
    for path in sorted(tests.rglob("*.py")):
        if path == tests / "conftest.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name not in _SPAWNERS:
                continue
            mentioned = {n.id for arg in [*node.args, *(k.value for k in node.keywords)] for n in ast.walk(arg)
                         if isinstance(n, ast.Name)}
            texts = [n.value for arg in node.args for n in ast.walk(arg)
                     if isinstance(n, ast.Constant) and isinstance(n.value, str)]
            runs_the_image = "SIDECAR_IMAGE" in mentioned and "run" in texts and "--entrypoint" not in texts
            if "SIDECAR" in mentioned or runs_the_image or any("secrets-sidecar" in text for text in texts):
                offenders.append(f"{path.relative_to(tests)}:{node.lineno}")
    assert offenders == [], f"start these through tests.conftest.spawn or run_captured: {offenders}"


def test_log_events_redact_secret_and_raw_bytes_at_any_depth() -> None:
    stream = io.StringIO()
    logger = sidecar_log.configure("info", "json", stream)
    inner = {"raw": b"hunter2-raw", "ok": ("kept", bytearray(b"hunter2-ba"))}
    nested = {"outer": [SecretBytes(b"hunter2-deep"), inner]}
    logger.info("event", detail=nested, items=[SecretBytes(b"hunter2-list")], name="ok")
    structlog.reset_defaults()
    event = json.loads(stream.getvalue())
    assert event["detail"] == {"outer": ["<redacted>", {"raw": "<redacted>", "ok": ["kept", "<redacted>"]}]}
    assert event["items"] == ["<redacted>"]
    assert "hunter2" not in stream.getvalue()
    assert isinstance(nested["outer"][0], SecretBytes)  # the caller's structure is not changed
