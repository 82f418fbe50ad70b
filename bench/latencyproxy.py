"""A minimal HTTP reverse proxy for the benchmark: adds a fixed delay to every request and counts API calls.

It listens on 127.0.0.1 only, forwards each request unchanged to the moto server after ``latency`` seconds,
counts requests per operation (the ``X-Amz-Target`` header of the JSON protocols Secrets Manager and SSM use,
the form's ``Action`` of the query protocol STS uses), can play a region that is down (``unavailable_regions``:
its requests, told by the SigV4 credential scope, are answered 503 without reaching moto), and sets TCP_NODELAY
on both of its sockets: without it, delayed ACKs add about 40 ms to some requests and would swamp the latency
being injected.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final
from urllib.parse import parse_qs, urlsplit

MAX_BODY_BYTES: Final = 4 * 1024 * 1024
UPSTREAM_TIMEOUT_SECONDS: Final = 30.0
_HOP_BY_HOP: Final = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "content-length",
})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _handle(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.send_error(413)
            return
        body = self.rfile.read(length) if length else b""
        proxy.record(self.headers.get("X-Amz-Target") or _query_action(body)
                     or f"{self.command} {self.path.split('?', 1)[0]}")
        if proxy.latency > 0:
            time.sleep(proxy.latency)
        if _scope_region(self.headers.get("Authorization", "")) in proxy.unavailable_regions:
            self._unavailable()
            return
        upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port,
                                              timeout=UPSTREAM_TIMEOUT_SECONDS)
        try:
            upstream.connect()
            assert upstream.sock is not None
            upstream.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            response_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
        finally:
            upstream.close()
        self.send_response(response.status)
        for name, value in response_headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _unavailable(self) -> None:
        body = b'{"__type":"ServiceUnavailable","message":"the region is down (benchmark)"}'
        self.send_response(503)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _handle


def _query_action(body: bytes) -> str | None:
    """The operation of a query-protocol request (STS): ``Action=AssumeRole&...`` in a form body."""
    action = parse_qs(body.decode("ascii", "replace")).get("Action")
    return action[0] if action else None


def _scope_region(authorization: str) -> str | None:
    """The region of a SigV4 ``Authorization`` header: ``Credential=KEY/DATE/REGION/SERVICE/aws4_request``."""
    _, found, rest = authorization.partition("Credential=")
    parts = rest.split(",", 1)[0].split("/")
    return parts[2] if found and len(parts) >= 5 else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, proxy: LatencyProxy) -> None:
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _Handler)


class LatencyProxy:
    """``with LatencyProxy("http://127.0.0.1:PORT") as proxy: proxy.latency = 0.025; ...; proxy.take_counts()``"""

    def __init__(self, upstream: str, latency: float = 0.0) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname and parts.port, upstream
        self.upstream_host, self.upstream_port = parts.hostname, parts.port
        self.latency = latency
        self.unavailable_regions: set[str] = set()
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = _Server(self)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="latencyproxy", daemon=True)

    def record(self, operation: str) -> None:
        with self._lock:
            self._counts[operation] += 1

    def take_counts(self) -> Counter[str]:
        """The requests seen since the last call, by operation; the counter starts again from zero."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return counts

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
