"""What a new user reads when something is wrong: the exact message, its exit code, one log line, through the
real ``secrets-sidecar`` process."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from sidecar.retry_policy import MAX_ATTEMPTS
from tests.conftest import REGION, SecretValues, run_sidecar, sidecar_env
from tests.e2e.helpers import api_calls, assert_failed, secrets_json


def _reason(env: dict[str, str], exit_code: int, *args: str, guard: SecretValues) -> str:
    """Run the sidecar; it must fail with ``exit_code`` and one final ``failed`` line: returns its reason."""
    result = run_sidecar(env, *args, guard=guard)
    failed = assert_failed(result, exit_code)
    assert [e for e in result.events if e.get("level") == "error"] == [failed]
    if exit_code == 2:
        assert api_calls(result) == []
    return str(failed["reason"])


def _env(endpoint: str, outdir: Path, *entries: dict[str, Any], **settings: str) -> dict[str, str]:
    return sidecar_env(endpoint, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries), **settings)


def test_concurrency_above_the_documented_range_is_a_configuration_error(
    moto: str, outdir: Path, secret_values: SecretValues
) -> None:
    env = _env(moto, outdir, {"name": "a", "valueFrom": "/app/a"}, SIDECAR_CONCURRENCY="65")
    assert _reason(env, 2, guard=secret_values) == "SIDECAR_CONCURRENCY: 65 is above the maximum of 64"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_endpoint_is_named_with_the_ways_to_reach_it(
    moto: str, outdir: Path, secret_values: SecretValues
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    env = _env(url, outdir, {"name": "a", "valueFrom": "/app/a"})

    reason = _reason(env, 3, guard=secret_values)

    assert reason == (
        f"'a': GetParameters kept failing with EndpointConnectionError after {MAX_ATTEMPTS} attempt(s) for "
        f"parameter /app/a in {REGION}: could not connect to {url}/; the task needs a route to it (a NAT gateway "
        f"or a public IP), a VPC endpoint (com.amazonaws.{REGION}.ssm), or AWS_ENDPOINT_URL set to an endpoint "
        "it can reach"
    )
    assert list(outdir.iterdir()) == []


def test_an_https_s3_url_is_answered_with_the_s3_form(moto: str, outdir: Path, secret_values: SecretValues) -> None:
    url = "https://my-bucket.s3.eu-west-1.amazonaws.com/tls/cert.pem"
    # A presigned URL's query is a signature: it is not repeated.
    env = _env(moto, outdir, {"name": "cert", "valueFrom": f"{url}?X-Amz-Signature=f00dfeedcafe1234"})

    reason = _reason(env, 2, guard=secret_values)

    assert reason == f"SIDECAR_SECRETS[0] ('cert'): valueFrom '{url}' is an S3 URL: write it as s3://my-bucket/tls/cert.pem"


def test_a_mistyped_region_gets_the_region_it_is_close_to(moto: str, outdir: Path, secret_values: SecretValues) -> None:
    env = _env(moto, outdir, {"name": "a", "valueFrom": "/app/a"}, SIDECAR_REGION="eu-wset-1")

    reason = _reason(env, 2, guard=secret_values)

    assert reason == (
        "'a': region 'eu-wset-1' is not a known AWS region (parameter /app/a in eu-wset-1); did you mean eu-west-1?"
    )


def test_a_mistyped_region_in_an_arn_gets_the_region_it_is_close_to(
    moto: str, outdir: Path, secret_values: SecretValues
) -> None:
    arn = "arn:aws:ssm:eu-west-l:123456789012:parameter/app/a"
    env = _env(moto, outdir, {"name": "a", "valueFrom": arn})

    reason = _reason(env, 2, guard=secret_values)

    assert reason == f"'a': region 'eu-west-l' is not a known AWS region (parameter {arn}); did you mean eu-west-1?"


def test_a_mistyped_flag_gets_the_flag_it_is_close_to(moto: str, outdir: Path, secret_values: SecretValues) -> None:
    env = _env(moto, outdir, {"name": "a", "valueFrom": "/app/a"})

    reason = _reason(env, 2, "run", "--ouput-dir", str(outdir), guard=secret_values)

    assert reason == f"unrecognized arguments: --ouput-dir {outdir} (did you mean --output-dir?)"


def test_an_unknown_template_filter_is_named_with_its_line(
    moto: str, outdir: Path, secret_values: SecretValues
) -> None:
    template = "host={{ db.host }}\npassword={{ db.password | uri }}\n"
    env = _env(moto, outdir, {"name": "dsn", "template": template, "inputs": {"db": "/app/db"}})

    reason = _reason(env, 2, guard=secret_values)

    assert reason == (
        "SIDECAR_SECRETS[0] ('dsn'): unknown filter 'uri' at line 2 (did you mean url? known: json, pgpass, sh, url)"
    )


def test_a_missing_json_key_is_named_once_and_never_matched_against_the_secrets_keys(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    """The secret holds "password"; asked for "passwrd", the message names the key asked for and suggests
    nothing: the secret's own keys are secret content."""
    document = json.dumps({"username": "msg-user", "password": "msg-pa55word"})
    arn = aws.secretsmanager.create_secret(Name="app/creds", SecretString=secret_values.add(document))["ARN"]
    plain = _env(aws.endpoint, outdir, {"name": "pw", "valueFrom": f"{arn}:passwrd::"})
    templated = _env(aws.endpoint, outdir, {"name": "dsn", "template": "{{ db.passwrd }}", "inputs": {"db": arn}})

    assert _reason(plain, 3, guard=secret_values) == f"'pw': secret {arn} has no key 'passwrd'"
    assert _reason(templated, 3, guard=secret_values) == "'dsn': {{ db.passwrd }}: the input has no key 'passwrd'"
    assert list(outdir.iterdir()) == []
