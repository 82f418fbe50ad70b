"""Secret content that cannot be read as asked is bad content (exit 3) with a reason that quotes nothing."""

from __future__ import annotations

import json

import pytest

from sidecar.config import load_settings
from sidecar.errors import FetchError
from sidecar.outcomes import Fetched
from sidecar.render import render
from sidecar.secret import SecretBytes

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db-AbCdEf"
LONE_SURROGATE = '{"user": "hostile-\\ud800-value", "nested": {"deep": ["x\\udfff"]}, "ok": "fine-value"}'
DEEP = '{"user": ' + "[" * 5000 + "]" * 5000 + ', "ok": "fine-value"}'
DEEP_AT_TOP = "[" * 100_000 + "]" * 100_000


def rendered(entry: dict[str, object], value: str) -> FetchError:
    environ = {"AWS_REGION": "eu-west-1", "SIDECAR_SECRETS": json.dumps([entry])}
    settings = load_settings({}, environ, process_uid=1000, process_gid=1000)
    target = settings.entries[0].references[0].target
    with pytest.raises(FetchError) as caught:
        render(settings, {target: Fetched(SecretBytes(value.encode()), "v1")})
    assert caught.value.exit_code == 3
    assert "hostile" not in caught.value.message and "fine-value" not in caught.value.message
    return caught.value


@pytest.mark.parametrize(("entry", "reason"), [
    ({"name": "db", "valueFrom": f"{ARN}:user::"}, "'db': the key 'user' of "),
    ({"name": "db", "valueFrom": ARN, "expand": True}, "'db': key #1 of the JSON secret "),
    ({"name": "db", "template": "{{ s.user | url }}", "inputs": {"s": ARN}}, "'db': {{ s.user }}: the value "),
    ({"name": "db", "template": "{{ s.nested }}", "inputs": {"s": ARN}}, "'db': {{ s.nested }}: the value "),
], ids=["json-key", "expand", "template-url", "template-nested"])
def test_a_lone_surrogate_in_a_json_secret_is_bad_content(entry: dict[str, object], reason: str) -> None:
    error = rendered(entry, LONE_SURROGATE)
    assert error.message.startswith(reason), error.message
    assert error.message.endswith("holds an escaped lone surrogate (\\ud800-\\udfff), which UTF-8 cannot represent")


@pytest.mark.parametrize("entry", [
    {"name": "db", "valueFrom": f"{ARN}:user::"},
    {"name": "db", "valueFrom": ARN, "expand": True},
    {"name": "db", "template": "{{ s.user }}", "inputs": {"s": ARN}},
], ids=["json-key", "expand", "template"])
@pytest.mark.parametrize("value", [DEEP, DEEP_AT_TOP], ids=["deep-member", "deep-document"])
def test_json_nested_too_deeply_is_bad_content(entry: dict[str, object], value: str) -> None:
    error = rendered(entry, value)
    assert "is JSON nested too deeply to read" in error.message
