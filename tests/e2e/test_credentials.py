"""Credentials through botocore's real chain: the ECS container credentials endpoint, or none at all."""

from __future__ import annotations

import json
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

ACCESS_KEY = "ASIAE2ECONTAINERKEY1"
AUTH_TOKEN = "e2e-container-authorization-token"


class _CredentialsEndpoint:
    """A stand-in for the ECS agent's task role endpoint: answers GET /creds with temporary credentials."""

    def __init__(self, secret_key: str, session_token: str) -> None:
        body = json.dumps({
            "AccessKeyId": ACCESS_KEY, "SecretAccessKey": secret_key, "Token": session_token,
            "Expiration": (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }).encode()
        self.requests: list[tuple[str, str | None]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.requests.append((self.path, self.headers.get("Authorization")))
                found = self.path == "/creds"
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) if found else 0))
                self.end_headers()
                if found:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/creds"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def credentials_endpoint(secret_values: SecretValues) -> Iterator[_CredentialsEndpoint]:
    endpoint = _CredentialsEndpoint(str(secret_values.add("e2e/SecretAccessKeyFromTheTaskRole")),
                                    str(secret_values.add("e2e-session-token-from-the-task-role")))
    endpoint.thread.start()
    yield endpoint
    endpoint.server.shutdown()
    endpoint.server.server_close()


def _without_static_keys(env: dict[str, str], **settings: str) -> dict[str, str]:
    env = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    # No profile files either: only what the test offers may be found.
    return {**env, "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials", "AWS_CONFIG_FILE": "/nonexistent/config",
            **settings}


def test_task_role_credentials_from_the_container_endpoint(
    aws: Any, outdir: Path, proxy: FaultProxy, credentials_endpoint: _CredentialsEndpoint,
    secret_values: SecretValues,
) -> None:
    aws.ssm.put_parameter(Name="/cred/p", Value=secret_values.add("value-via-task-role"), Type="SecureString")
    env = _without_static_keys(
        sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(outdir),
                    SIDECAR_SECRETS=secrets_json({"name": "p", "valueFrom": "/cred/p"})),
        AWS_CONTAINER_CREDENTIALS_FULL_URI=credentials_endpoint.url, AWS_CONTAINER_AUTHORIZATION_TOKEN=AUTH_TOKEN,
    )

    result = run_sidecar(env, guard=secret_values)

    assert_ok(result)
    assert (outdir / "p").read_bytes() == b"value-via-task-role"
    assert credentials_endpoint.requests == [("/creds", AUTH_TOKEN)]
    # The request to AWS was signed with the task role's key.
    assert [s.access_key for s in proxy.seen] == [ACCESS_KEY]


@pytest.mark.slow
def test_unreachable_credentials_endpoint_fails_naming_the_task_role(
    aws: Any, previous: Path, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/cred/p", Value=secret_values.add("value-never-fetched"), Type="SecureString")
    env = _without_static_keys(
        sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(previous), SIDECAR_TIMEOUT="3",
                    SIDECAR_SECRETS=secrets_json({"name": "p", "valueFrom": "/cred/p"})),
        AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:9/creds",  # nothing listens on port 9
    )
    before = full_state(previous)

    started = time.monotonic()
    result = run_sidecar(env, guard=secret_values, timeout=30)
    elapsed = time.monotonic() - started

    assert_failed(result, 3, "could not obtain AWS credentials (the task role)")
    assert api_calls(result) == []
    assert elapsed < 3 + 5
    assert full_state(previous) == before


def test_no_credentials_at_all_fails_naming_the_task_role(
    aws: Any, previous: Path, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/cred/p", Value=secret_values.add("value-never-fetched"), Type="SecureString")
    env = _without_static_keys(sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(previous),
                                           SIDECAR_SECRETS=secrets_json({"name": "p", "valueFrom": "/cred/p"})))
    before = full_state(previous)

    result = run_sidecar(env, guard=secret_values)

    assert_failed(result, 3, "no AWS credentials found", "taskRoleArn", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    assert api_calls(result) == []
    assert full_state(previous) == before
