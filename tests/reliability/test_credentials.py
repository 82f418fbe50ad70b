"""The task role through botocore's real container-credentials path (AWS_CONTAINER_CREDENTIALS_FULL_URI), with an
endpoint that fails at first and recovers, or fails for good."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SecretValues, run_sidecar, sidecar_env
from tests.e2e.faultproxy import FaultProxy
from tests.e2e.helpers import api_calls, assert_failed, assert_ok, full_state, secrets_json
from tests.reliability.common import figure

ACCESS_KEY = "ASIARELIABILITYKEY01"


class FlakyEndpoint:
    """The ECS agent's credentials endpoint: answers ``failures`` requests with HTTP 500, then the JSON body
    (``failures=None``: always 500). Listens on ``port`` (0: any free one)."""

    def __init__(self, secret_key: str, token: str, *, failures: int | None, port: int = 0) -> None:
        body = json.dumps({
            "AccessKeyId": ACCESS_KEY, "SecretAccessKey": secret_key, "Token": token,
            "Expiration": (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }).encode()
        self.answers: list[int] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                ok = failures is not None and len(endpoint.answers) >= failures
                endpoint.answers.append(200 if ok else 500)
                payload = body if ok else b'{"message": "internal error"}'
                self.send_response(200 if ok else 500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/creds"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def keys(secret_values: SecretValues) -> tuple[str, str]:
    return (str(secret_values.add("reliability/SecretAccessKeyOfTheTaskRole")),
            str(secret_values.add("reliability-session-token-of-the-task-role")))


@pytest.fixture
def endpoints(keys: tuple[str, str]) -> Iterator[list[FlakyEndpoint]]:
    started: list[FlakyEndpoint] = []
    yield started
    for endpoint in started:
        endpoint.stop()


def _env(proxy_url: str, outdir: Path, credentials_url: str, **settings: str) -> dict[str, str]:
    env = sidecar_env(proxy_url, SIDECAR_OUTPUT_DIR=str(outdir),
                      SIDECAR_SECRETS=secrets_json({"name": "p", "valueFrom": "/cred/p"}), **settings)
    env = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    return {**env, "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials", "AWS_CONFIG_FILE": "/nonexistent/config",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": credentials_url}


def test_endpoint_failing_twice_then_recovering(
    aws: Any, outdir: Path, proxy: FaultProxy, keys: tuple[str, str], endpoints: list[FlakyEndpoint],
    secret_values: SecretValues,
) -> None:
    aws.ssm.put_parameter(Name="/cred/p", Value=secret_values.add("value-after-recovery"), Type="SecureString")
    endpoint = FlakyEndpoint(*keys, failures=2)
    endpoints.append(endpoint)

    result = run_sidecar(_env(proxy.url, outdir, endpoint.url, SIDECAR_TIMEOUT="20"), guard=secret_values)

    assert_ok(result)
    assert (outdir / "p").read_bytes() == b"value-after-recovery"
    assert endpoint.answers == [500, 500, 200]
    assert [s.access_key for s in proxy.seen] == [ACCESS_KEY]  # signed with the task role's key
    figure("credentials_recovered", endpoint_answers=len(endpoint.answers))


def test_endpoint_refusing_connections_for_a_second_then_recovering(
    aws: Any, outdir: Path, proxy: FaultProxy, keys: tuple[str, str], endpoints: list[FlakyEndpoint],
    secret_values: SecretValues,
) -> None:
    aws.ssm.put_parameter(Name="/cred/p", Value=secret_values.add("value-after-refusals"), Type="SecureString")
    with socket.socket() as probe:  # a free loopback port, then nobody listening on it for a while
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    timer = threading.Timer(1.0, lambda: endpoints.append(FlakyEndpoint(*keys, failures=0, port=port)))
    timer.start()
    try:
        started = time.monotonic()
        result = run_sidecar(_env(proxy.url, outdir, f"http://127.0.0.1:{port}/creds", SIDECAR_TIMEOUT="20"),
                             guard=secret_values)
        elapsed = time.monotonic() - started
    finally:
        timer.cancel()
        timer.join()

    assert_ok(result)
    assert (outdir / "p").read_bytes() == b"value-after-refusals"
    assert endpoints and endpoints[0].answers == [200]
    assert [s.access_key for s in proxy.seen] == [ACCESS_KEY]
    assert elapsed < 20
    figure("credentials_refused_then_recovered", seconds=round(elapsed, 2))


@pytest.mark.slow
def test_endpoint_failing_for_good_fails_within_the_deadline(
    aws: Any, previous: Path, proxy: FaultProxy, keys: tuple[str, str], endpoints: list[FlakyEndpoint],
    secret_values: SecretValues,
) -> None:
    aws.ssm.put_parameter(Name="/cred/p", Value=secret_values.add("value-never-fetched"), Type="SecureString")
    endpoint = FlakyEndpoint(*keys, failures=None)
    endpoints.append(endpoint)
    before = full_state(previous)
    deadline = 6

    started = time.monotonic()
    result = run_sidecar(_env(proxy.url, previous, endpoint.url, SIDECAR_TIMEOUT=str(deadline)),
                         guard=secret_values, timeout=60)
    elapsed = time.monotonic() - started

    failed = assert_failed(result, 3, "could not obtain AWS credentials (the task role)")
    assert api_calls(result) == [] and proxy.seen == []
    assert full_state(previous) == before
    inside = _seconds_between(result.events[0]["timestamp"], failed["timestamp"])
    figure("credentials_failed", endpoint_requests=len(endpoint.answers), seconds=round(elapsed, 2),
           seconds_inside=round(inside, 2), deadline=deadline)
    # The deadline counts from the process's start; the interpreter's own start-up and exit come on top.
    assert inside < deadline
    assert elapsed < deadline + 1.5


def _seconds_between(first: str, last: str) -> float:
    parse = lambda stamp: datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
    return (parse(last) - parse(first)).total_seconds()


@pytest.mark.slow
def test_endpoint_that_never_answers_fails_at_the_deadline(
    aws: Any, previous: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    """The kernel accepts the connection, nobody answers: each of botocore's tries waits for its read timeout,
    so one attempt would take about nine seconds; the run ends at its deadline instead."""
    aws.ssm.put_parameter(Name="/cred/p", Value=secret_values.add("value-never-fetched"), Type="SecureString")
    before = full_state(previous)
    deadline = 4
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/creds"

        started = time.monotonic()
        result = run_sidecar(_env(proxy.url, previous, url, SIDECAR_TIMEOUT=str(deadline)), guard=secret_values,
                             timeout=60)
        elapsed = time.monotonic() - started

    failed = assert_failed(result, 3, "could not obtain AWS credentials (the task role) before the SIDECAR_TIMEOUT")
    assert proxy.seen == []
    assert full_state(previous) == before
    inside = _seconds_between(result.events[0]["timestamp"], failed["timestamp"])
    figure("credentials_silent", seconds=round(elapsed, 2), seconds_inside=round(inside, 2), deadline=deadline)
    assert inside < deadline
    assert elapsed < deadline + 1.5
