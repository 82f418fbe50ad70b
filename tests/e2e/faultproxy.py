"""A fault-injecting HTTP reverse proxy that sits between the sidecar and the moto server.

moto answers every request it understands correctly; AWS does not always. The proxy forwards requests to
moto unchanged unless a rule matches, and then answers with an AWS-shaped error, adds latency, stalls, or
resets the TCP connection.

Rules match an operation: for JSON protocols the ``X-Amz-Target`` header (``secretsmanager.GetSecretValue``,
``AmazonSSM.GetParameters``); for the Query protocol (STS) the signing service and the form's ``Action``
(``sts.AssumeRole``); for S3 the HTTP method and a path prefix (``GET /bucket/key``). A rule may also
match one region only (``only_in``): the region a request is for is the one in its SigV4 credential scope
(``Authorization: ... Credential=KEY/DATE/REGION/SERVICE/aws4_request``), so one moto server, which serves
every region, stands behind a region that is down and one that is not. A rule applies ``count`` times, or
always when ``count`` is None; the first matching rule with applications left wins.

A rule with a ``probability`` applies to a matching request only when a draw says so; otherwise the next rule
is tried. Draws come from the proxy's ``seed`` and the request itself (operation, path, body, and how many
times that same request was seen before), so a seed gives the same faults for the same requests whatever
order concurrent requests arrive in. A rule with a ``quota`` (a token bucket: ``rate`` per second, ``burst``)
lets requests through while tokens are left and answers the others with its error (``ThrottlingException``,
HTTP 400, for ``quota(...)``).

Every request is recorded with what the proxy did with it (``seen``); ``counts()`` totals them per operation
and outcome.

The proxy listens on loopback only, serves each connection in its own thread (at most ``MAX_CONNECTIONS`` at
once), reads bounded request bodies, never stalls longer than ``MAX_STALL_SECONDS`` (``stop()`` releases a stall
at once), and sets TCP_NODELAY on both of its sockets so that delayed ACKs do not add latency to every request.

    with FaultProxy(moto_endpoint) as proxy:
        proxy.add(json_error("secretsmanager.GetSecretValue", "AccessDeniedException", "no", count=1))
        env = sidecar_env(proxy.url, ...)
"""

from __future__ import annotations

import hashlib
import http.client
import json
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Final
from urllib.parse import parse_qs, urlsplit

MAX_BODY_BYTES: Final = 8 * 1024 * 1024
MAX_STALL_SECONDS: Final = 30.0
MAX_CONNECTIONS: Final = 32
UPSTREAM_TIMEOUT_SECONDS: Final = 30.0
_HOP_BY_HOP: Final = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "content-length",
})
_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")
_SCOPE_REGION = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/")
_SIGNING_SERVICE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")


@dataclass
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` banked; starts full. Not thread-safe: the proxy's lock
    guards it."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        assert rate > 0 and burst >= 1, (rate, burst)
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


@dataclass
class Rule:
    """What to do with matching requests. Exactly one of ``status``, ``latency``, ``stall`` or ``reset``
    applies; ``probability`` and ``quota`` decide whether the rule applies to a given request."""

    operation: str | None = None  # X-Amz-Target value (JSON protocols)
    method: str | None = None  # HTTP method (S3)
    path_prefix: str | None = None  # request path prefix (S3), e.g. "/bucket/key"
    status: int | None = None  # respond with this status and body instead of forwarding
    body: bytes = b""
    content_type: str = "application/x-amz-json-1.1"
    latency: float = 0.0  # seconds to wait before forwarding
    stall: bool = False  # hold the request without answering, then drop the connection
    transform: Callable[[bytes, bytes], bytes] | None = None  # forward, then rewrite (request, response) body
    reset: bool = False  # close the connection with SO_LINGER 0 (a TCP RST) instead of answering
    count: int | None = None  # applications left; None: always
    probability: float | None = None  # apply to this share of matching requests (seeded draw); None: all
    quota: TokenBucket | None = None  # apply only to requests past the bucket's rate and burst
    request_contains: bytes | None = None  # apply only to requests whose body holds these bytes
    region: str | None = None  # only requests signed for this region; None: every region
    hits: int = 0

    def matches(self, operation: str | None, method: str, path: str, region: str | None = None) -> bool:
        if self.count is not None and self.hits >= self.count:
            return False
        if self.region is not None and self.region != region:
            return False
        if self.operation is not None and self.operation != operation:
            return False
        if self.method is not None and self.method != method:
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)


def json_error(operation: str, code: str, message: str, *, status: int = 400, count: int | None = None) -> Rule:
    """An error as the JSON protocols (Secrets Manager, SSM, KMS) send it."""
    body = json.dumps({"__type": code, "message": message}).encode()
    return Rule(operation=operation, status=status, body=body, count=count)


def s3_error(method: str, path_prefix: str, code: str, message: str, *, status: int = 403,
             count: int | None = None) -> Rule:
    """An error as S3 sends it (REST-XML)."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>FAULTPROXY</RequestId></Error>"
    ).encode()
    return Rule(method=method, path_prefix=path_prefix, status=status, body=body, content_type="application/xml",
                count=count)


def query_error(operation: str, code: str, message: str, *, status: int = 403, count: int | None = None) -> Rule:
    """An error as the Query protocol (STS) sends it: ``operation`` is ``sts.AssumeRole``."""
    body = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>faultproxy</RequestId></ErrorResponse>"
    ).encode()
    return Rule(operation=operation, status=status, body=body, content_type="text/xml", count=count)


def latency(operation: str, seconds: float, *, count: int | None = None) -> Rule:
    return Rule(operation=operation, latency=seconds, count=count)


def stall(operation: str, *, count: int | None = None) -> Rule:
    return Rule(operation=operation, stall=True, count=count)


def rewrite(operation: str, transform: Callable[[bytes, bytes], bytes], *, count: int | None = None) -> Rule:
    """Forward, then replace the response body with ``transform(request_body, response_body)``: for
    answers where moto's shape differs from AWS's."""
    return Rule(operation=operation, transform=transform, count=count)


def reset(operation: str | None = None, *, method: str | None = None, path_prefix: str | None = None,
          count: int | None = None, probability: float | None = None) -> Rule:
    """Read the request, then drop the connection with a TCP RST instead of answering."""
    return Rule(operation=operation, method=method, path_prefix=path_prefix, reset=True, count=count,
                probability=probability)


def server_error(operation: str, status: int = 500, *, count: int | None = None,
                 probability: float | None = None) -> Rule:
    """HTTP 500 (``InternalFailure``) or 503 (``ServiceUnavailableException``) as the JSON protocols send them."""
    code, message = _SERVER_ERRORS[status]
    rule = json_error(operation, code, message, status=status, count=count)
    rule.probability = probability
    return rule


def s3_server_error(method: str, path_prefix: str, status: int = 500, *, count: int | None = None,
                    probability: float | None = None) -> Rule:
    """HTTP 500 (``InternalError``) or 503 (``ServiceUnavailable``) as S3 sends them."""
    code, message = {500: ("InternalError", "We encountered an internal error. Please try again."),
                     503: ("ServiceUnavailable", "Service is unable to handle request.")}[status]
    rule = s3_error(method, path_prefix, code, message, status=status, count=count)
    rule.probability = probability
    return rule


def slow_down(method: str, path_prefix: str, *, count: int | None = None, probability: float | None = None) -> Rule:
    """S3's own throttling answer: ``SlowDown``, HTTP 503, XML."""
    rule = s3_error(method, path_prefix, "SlowDown", "Please reduce your request rate.", status=503, count=count)
    rule.probability = probability
    return rule


def throttle(operation: str, *, count: int | None = None, probability: float | None = None) -> Rule:
    rule = json_error(operation, "ThrottlingException", "Rate exceeded", count=count)
    rule.probability = probability
    return rule


def quota(operation: str, rate: float, burst: int) -> Rule:
    """A token-bucket quota on one JSON operation: past ``rate`` per second (``burst`` banked), requests are
    answered ``ThrottlingException`` (HTTP 400) as AWS does; the others are forwarded."""
    rule = json_error(operation, "ThrottlingException", "Rate exceeded")
    rule.quota = TokenBucket(rate, burst)
    return rule


def only_in(region: str, rule: Rule) -> Rule:
    """``rule`` applied only to requests signed for ``region``."""
    rule.region = region
    return rule


def share(rules: Sequence[Rule], probability: float) -> list[Rule]:
    """Spread ``probability`` evenly over ``rules`` tried in order: rule i gets the conditional probability
    that makes each of them apply to ``probability / len(rules)`` of the matching requests."""
    each = probability / len(rules)
    shared = []
    for index, rule in enumerate(rules):
        rule.probability = each / (1 - index * each)
        shared.append(rule)
    return shared


_SERVER_ERRORS: Final = {
    500: ("InternalFailure", "The request processing has failed because of an unknown error."),
    503: ("ServiceUnavailableException", "The service is unavailable. Please try again later."),
}


@dataclass(frozen=True)
class Seen:
    """One request the proxy received, and what it did with it."""

    operation: str | None
    method: str
    path: str
    action: str  # "forwarded", "rewritten", "status 400", "stalled", "latency 0.5", "reset", "throttled"
    access_key: str | None
    region: str | None = None  # from the SigV4 credential scope

    @property
    def label(self) -> str:
        """The operation for counting: the X-Amz-Target, or ``s3 GET`` for REST calls."""
        return self.operation or f"s3 {self.method}"


@dataclass
class _State:
    upstream_host: str
    upstream_port: int
    rules: list[Rule] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    released: threading.Event = field(default_factory=threading.Event)
    seed: int = 0
    occurrences: Counter[str] = field(default_factory=Counter)  # how often each identical request came

    def pick(self, operation: str | None, method: str, path: str, body: bytes = b"",
             region: str | None = None) -> Rule | None:
        with self.lock:
            identity = f"{operation}|{method}|{path}|{hashlib.sha256(body).hexdigest()}"
            occurrence = self.occurrences[identity]
            self.occurrences[identity] += 1
            for index, rule in enumerate(self.rules):
                if not rule.matches(operation, method, path, region):
                    continue
                if rule.request_contains is not None and rule.request_contains not in body:
                    continue
                if rule.probability is not None:
                    draw = random.Random(f"{self.seed}|{identity}|{occurrence}|{index}").random()  # noqa: S311
                    if draw >= rule.probability:
                        continue
                if rule.quota is not None and rule.quota.take():
                    continue
                rule.hits += 1
                return rule
            return None


def _query_operation(authorization: str, body: bytes) -> str | None:
    """``service.Action`` of a Query-protocol request (a form with ``Action=...``), e.g. ``sts.AssumeRole``."""
    service = _SIGNING_SERVICE.search(authorization)
    action = parse_qs(body.decode("utf-8", "replace")).get("Action") if service else None
    return f"{service[1]}.{action[0]}" if service and action else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the tests read the proxy's record instead

    def _handle(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._respond(413, b"request body too large for the fault proxy", "text/plain")
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        operation = self.headers.get("X-Amz-Target") or _query_operation(self.headers.get("Authorization", ""), body)
        path = self.path.split("?", 1)[0]
        key = _ACCESS_KEY.search(self.headers.get("Authorization", ""))
        scope = _SCOPE_REGION.search(self.headers.get("Authorization", ""))
        region = scope[1] if scope else None
        rule = state.pick(operation, self.command, path, body, region)

        def record(action: str) -> None:
            with state.lock:
                state.seen.append(Seen(operation, self.command, self.path, action, key[1] if key else None, region))

        if rule is not None and rule.reset:
            record("reset")
            self._reset()
            return
        if rule is not None and rule.stall:
            record("stalled")
            state.released.wait(MAX_STALL_SECONDS)
            self.close_connection = True
            return
        if rule is not None and rule.status is not None:
            record("throttled" if rule.quota is not None else f"status {rule.status}")
            self._respond(rule.status, rule.body, rule.content_type)
            return
        if rule is not None and rule.latency:
            record(f"latency {rule.latency:g}")
            if state.released.wait(min(rule.latency, MAX_STALL_SECONDS)):
                self.close_connection = True
                return
        else:
            record("rewritten" if rule is not None and rule.transform else "forwarded")
        self._forward(body, rule.transform if rule is not None else None)

    def _forward(self, body: bytes, transform: Callable[[bytes, bytes], bytes] | None = None) -> None:
        state = self.server.state
        upstream = http.client.HTTPConnection(state.upstream_host, state.upstream_port,
                                              timeout=UPSTREAM_TIMEOUT_SECONDS)
        try:
            upstream.connect()
            assert upstream.sock is not None
            upstream.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            upstream.request(self.command, self.path, body=body if body or self.command in ("POST", "PUT") else None,
                             headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            if transform is not None and response.status == 200:
                payload = transform(body, payload)
            response_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
        finally:
            upstream.close()
        self.send_response(response.status)
        for name, value in response_headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _reset(self) -> None:
        """Drop the connection with a TCP RST: SO_LINGER 0, then close the socket itself (the read buffer
        holds a reference to it, so close that first); nothing more is sent on it."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.connection.close()

    def _respond(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", "faultproxy")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128  # a fleet connects at once: a short backlog would refuse connections itself

    def __init__(self, state: _State, max_connections: int = MAX_CONNECTIONS) -> None:
        self.state = state
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        if not self._slots.acquire(timeout=5):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class FaultProxy:
    def __init__(self, upstream: str, *, seed: int = 0, max_connections: int = MAX_CONNECTIONS) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname and parts.port, upstream
        self._state = _State(parts.hostname, parts.port, seed=seed)
        self._server = _Server(self._state, max_connections)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="faultproxy", daemon=True)

    def add(self, rule: Rule) -> Rule:
        with self._state.lock:
            self._state.rules.append(rule)
        return rule

    def retire(self, rule: Rule) -> None:
        """Stop applying ``rule`` from now on (a region that comes back)."""
        with self._state.lock:
            rule.count = rule.hits

    @property
    def seen(self) -> list[Seen]:
        with self._state.lock:
            return list(self._state.seen)

    def seen_for(self, operation: str) -> list[Seen]:
        return [s for s in self.seen if s.operation == operation]

    def counts(self) -> Counter[tuple[str, str]]:
        """Requests per (operation, outcome): ``("AmazonSSM.GetParameters", "forwarded")``, ``("s3 GET",
        "reset")``, ``("secretsmanager.BatchGetSecretValue", "throttled")``."""
        return Counter((s.label, s.action) for s in self.seen)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._state.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
