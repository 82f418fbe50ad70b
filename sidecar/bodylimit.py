"""A bound on how much of a Secrets Manager or SSM response body is read, whatever the endpoint sends.

botocore reads a whole JSON body into memory before parsing it, so ``SIDECAR_MAX_BYTES``, checked on the parsed
value, came after the damage: a hostile endpoint sending 300 MB drove the process to about 1 GB. Here a
``before-send`` handler (botocore's documented hook: a response a handler returns is used instead of sending)
sends the request through the client's own HTTP session and reads the body up to a bound derived from
``SIDECAR_MAX_BYTES``; past it, the connection is dropped and ``BodyTooLarge`` raised.

The bound a legitimate answer can need, for ``n`` values of at most ``max_bytes`` each:

    n * (JSON_ESCAPE_FACTOR * max_bytes + ITEM_OVERHEAD_BYTES) + RESPONSE_OVERHEAD_BYTES

A value travels as a JSON string (SecretString, Value) or as base64 in one (SecretBinary). JSON may escape any
character as ``\\u00XX``: one byte of value can take six bytes of body; base64 with escaped ``/`` takes at
most 8/3. ``n`` is the most values one call can return (20 for BatchGetSecretValue, 10 for GetParameters and
for each page of GetParametersByPath, 1 otherwise). S3 needs none of this: GetObject's body is a stream, read
up to the limit in ``sidecar.aws``.

One botocore internal is relied on: ``client._endpoint.http_session`` (the session botocore itself sends
with, so proxies, TLS settings and the connection pool stay botocore's). tests/unit/test_body_limit.py pins it.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any, Final

from sidecar.plan import MAX_BATCH_SECRET_IDS, MAX_GET_PARAMETERS_NAMES, MAX_PARAMETERS_BY_PATH_RESULTS

JSON_ESCAPE_FACTOR: Final = 6  # a control character as \u001f
ITEM_OVERHEAD_BYTES: Final = 16 * 1024  # ARN (up to 2,048 characters), name, version id, stages, dates, escaped
RESPONSE_OVERHEAD_BYTES: Final = 64 * 1024  # error entries, tokens, punctuation
VALUES_PER_CALL: Final = {
    "BatchGetSecretValue": MAX_BATCH_SECRET_IDS,
    "GetParameters": MAX_GET_PARAMETERS_NAMES,
    "GetParametersByPath": MAX_PARAMETERS_BY_PATH_RESULTS,  # each page, as the sidecar asks for at most 10
}
BOUNDED_SERVICES: Final = ("secretsmanager", "ssm")
_CHUNK_BYTES: Final = 64 * 1024


class BodyTooLarge(Exception):
    """The endpoint sent more than any answer within SIDECAR_MAX_BYTES needs; nothing past ``limit`` was read."""

    def __init__(self, operation: str, limit: int) -> None:
        super().__init__(f"{operation} answered with a body over {limit} bytes")
        self.operation = operation
        self.limit = limit


def body_limit(operation: str, max_bytes: int) -> int:
    """The most bytes of ``operation``'s response body read when each value may be ``max_bytes`` long."""
    values = VALUES_PER_CALL.get(operation, 1)
    return values * (JSON_ESCAPE_FACTOR * max_bytes + ITEM_OVERHEAD_BYTES) + RESPONSE_OVERHEAD_BYTES


def install(client: Any, max_bytes: int) -> None:
    """Bound every response body of ``client`` (a Secrets Manager or SSM client) by ``body_limit``."""
    http_session = client._endpoint.http_session  # pinned by tests/unit/test_body_limit.py
    model = client.meta.service_model
    service_id = model.service_id.hyphenize()
    for operation in model.operation_names:
        handler = partial(_send_bounded, http_session, operation, body_limit(operation, max_bytes))
        client.meta.events.register(f"before-send.{service_id}.{operation}", handler)


def _send_bounded(http_session: Any, operation: str, limit: int, request: Any, **_: Any) -> Any:
    from botocore.awsrequest import AWSResponse

    # The session reads the whole body before returning unless the request streams its output: it does here,
    # and the body is read below, up to the limit.
    request.stream_output = True
    response = http_session.send(request)
    try:
        body = _read_at_most(response, operation, limit)
    except BaseException:
        response.raw.close()  # unread bytes stay with the connection: drop it rather than reuse it
        raise
    return AWSResponse(response.url, response.status_code, response.headers, _Read(body))


def _read_at_most(response: Any, operation: str, limit: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(operation, limit)
    chunks: list[bytes] = []
    total = 0
    for chunk in response.raw.stream(_CHUNK_BYTES):  # as AWSResponse.content reads it: not decompressed
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(operation, limit)
        chunks.append(chunk)
    return b"".join(chunks)


class _Read:
    """A body already read, in the shape AWSResponse reads: ``stream()``."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_args: object, **_kwargs: object) -> Iterator[bytes]:
        yield self._body

    def close(self) -> None:
        self._body = b""
