"""The bound on response bodies: its arithmetic, its reading, and the botocore internals it relies on."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any

import pytest

from sidecar import bodylimit
from sidecar.bodylimit import BodyTooLarge, body_limit


def test_the_bound_holds_the_largest_legitimate_answer() -> None:
    """A value of max_bytes control characters (six bytes each in JSON) with a 2,048-character ARN fits."""
    max_bytes = 65536
    value = "\x01" * max_bytes
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:" + "n" * 1995
    item = {"ARN": arn, "Name": "n" * 512, "VersionId": "v" * 64, "SecretString": value,
            "VersionStages": ["AWSCURRENT"] * 20, "CreatedDate": 1.7e9}
    single = json.dumps(item).encode()
    assert len(single) <= body_limit("GetSecretValue", max_bytes)
    batch = json.dumps({"SecretValues": [item] * 20, "Errors": []}).encode()
    assert len(batch) <= body_limit("BatchGetSecretValue", max_bytes)
    parameters = json.dumps({"Parameters": [{"Name": arn, "Value": value, "ARN": arn}] * 10}).encode()
    assert len(parameters) <= body_limit("GetParameters", max_bytes)
    page = json.dumps({"Parameters": [{"Name": "/" + "n" * 2047, "Value": value, "ARN": arn, "Type": "SecureString",
                                       "Version": 100, "DataType": "text", "LastModifiedDate": 1.7e9}] * 10,
                       "NextToken": "t" * 4096}).encode()
    assert len(page) <= body_limit("GetParametersByPath", max_bytes)


def test_the_bound_is_linear_in_the_limit() -> None:
    assert body_limit("GetSecretValue", 1000) == 6 * 1000 + 16 * 1024 + 64 * 1024
    assert body_limit("BatchGetSecretValue", 1000) == 20 * (6 * 1000 + 16 * 1024) + 64 * 1024
    assert body_limit("GetParameters", 1000) == 10 * (6 * 1000 + 16 * 1024) + 64 * 1024
    assert body_limit("GetParametersByPath", 1000) == 10 * (6 * 1000 + 16 * 1024) + 64 * 1024  # each page


class _Raw:
    def __init__(self, chunks: int, size: int = 64 * 1024) -> None:
        self.chunks, self.size, self.read, self.closed = chunks, size, 0, False

    def stream(self, amount: int) -> Iterator[bytes]:
        for _ in range(self.chunks):
            self.read += self.size
            yield b"x" * self.size

    def close(self) -> None:
        self.closed = True


class _Response:
    def __init__(self, raw: _Raw, headers: dict[str, str]) -> None:
        self.url, self.status_code, self.headers, self.raw = "https://x", 200, headers, raw


class _Session:
    def __init__(self, response: _Response) -> None:
        self.response = response
        self.streamed: bool | None = None

    def send(self, request: Any) -> _Response:
        self.streamed = request.stream_output
        return self.response


class _Request:
    stream_output = False


def test_reading_stops_at_the_bound_and_drops_the_connection() -> None:
    raw = _Raw(chunks=10_000)  # 655 MB if read
    session = _Session(_Response(raw, {}))
    with pytest.raises(BodyTooLarge):
        bodylimit._send_bounded(session, "GetSecretValue", 1_000_000, _Request())
    assert session.streamed is True  # else botocore's session reads the whole body itself
    assert raw.read <= 1_000_000 + 64 * 1024
    assert raw.closed


def test_a_declared_length_over_the_bound_is_refused_before_reading() -> None:
    raw = _Raw(chunks=1)
    with pytest.raises(BodyTooLarge):
        bodylimit._send_bounded(_Session(_Response(raw, {"content-length": "300000000"})), "GetParameters", 10,
                                _Request())
    assert (raw.read, raw.closed) == (0, True)


def test_a_body_within_the_bound_is_answered_whole() -> None:
    response = bodylimit._send_bounded(_Session(_Response(_Raw(chunks=3, size=10), {})), "GetParameters", 30,
                                       _Request())
    assert response.content == b"x" * 30
    assert response.status_code == 200


def test_botocore_internals_the_bound_relies_on() -> None:
    """Canary: if botocore changes any of these, the bound must be revisited (see sidecar/bodylimit.py)."""
    from botocore.awsrequest import AWSPreparedRequest, AWSResponse
    from botocore.endpoint import Endpoint
    from botocore.httpsession import URLLib3Session
    from botocore.session import get_session

    client = get_session().create_client("secretsmanager", region_name="eu-west-1", aws_access_key_id="x",
                                         aws_secret_access_key="y")
    assert isinstance(client._endpoint.http_session, URLLib3Session)
    # The session reads the whole body unless the request streams its output.
    assert "if not request.stream_output" in inspect.getsource(URLLib3Session.send)
    assert "stream_output" in inspect.signature(AWSPreparedRequest).parameters
    # A before-send handler's response replaces sending; a non-streaming body is read through raw.stream().
    assert "before-send" in inspect.getsource(Endpoint._do_get_response)
    assert "first_non_none_response(responses)" in inspect.getsource(Endpoint._do_get_response)
    assert "self.raw.stream()" in inspect.getsource(AWSResponse.content.fget)
