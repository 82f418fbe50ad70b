from __future__ import annotations

import io
import json
import pickle

import pytest
import structlog

from sidecar import log as sidecar_log
from sidecar.secret import SecretBytes
from tests.conftest import SecretValues


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


def test_the_guard_finds_values_in_output_including_json_members() -> None:
    guard = SecretValues()
    guard.add(json.dumps({"password": "member-secret", "port": 5432}))
    guard.outputs.append(b'{"event": "file", "reason": "... member-secret ..."}')
    assert len(guard.leaks()) == 1
    guard.outputs[:] = [b"nothing here but 5432"]
    assert len(guard.leaks()) == 1  # numbers of four digits or more count too
    guard.outputs[:] = [b"clean"]
    assert guard.leaks() == []
