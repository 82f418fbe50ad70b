"""``jmesPath`` end to end: the real sidecar process against the moto server, for every source."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.conftest import REGION, SecretValues, run_sidecar, sidecar_env
from tests.e2e.helpers import api_calls, assert_failed, assert_ok, full_state, secrets_json, visible


def _env(aws: Any, outdir: Path, *entries: dict[str, Any]) -> dict[str, str]:
    return sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries))


def _document(secret_values: SecretValues, tag: str) -> str:
    """A nested JSON document registered with the secrecy guard: itself, every leaf, and its keys."""
    leaf = lambda name: secret_values.add(f"{tag}-{name}-value")  # noqa: E731
    document = {
        "db": {"primary": {"password": leaf("primary"), "user": leaf("user")},
               "replicas": [{"host": leaf("replica-one")}, {"host": leaf("replica-two")}]},
        "db-primary": {"password": leaf("hyphen")},
        "ttl": 300,
    }
    # The expressions name these keys themselves; "user" is named by none, so it stays guarded.
    named = ("db", "primary", "password", "replicas", "host", "db-primary", "ttl")
    return secret_values.add(json.dumps(document), keys_named_in_config=named)


def test_secrets_manager_nested_hyphenated_compact_and_expanded(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    arn = aws.secretsmanager.create_secret(Name="app/nested", SecretString=_document(secret_values, "sm"))["ARN"]
    entries = [
        {"name": "password", "valueFrom": arn, "jmesPath": "db.primary.password"},
        {"name": "hyphen", "valueFrom": arn, "jmesPath": '"db-primary".password'},
        {"name": "hosts.json", "valueFrom": arn, "jmesPath": "db.replicas[*].host"},
        {"name": "ttl", "valueFrom": arn, "jmesPath": "ttl"},
        {"name": "primary", "valueFrom": arn, "jmesPath": "db.primary", "expand": True},
    ]

    result = run_sidecar(_env(aws, outdir, *entries), guard=secret_values)

    done = assert_ok(result)
    assert visible(outdir) == {
        "password": b"sm-primary-value",
        "hyphen": b"sm-hyphen-value",
        "hosts.json": b'["sm-replica-one-value","sm-replica-two-value"]',
        "ttl": b"300",
        "primary/password": b"sm-primary-value",
        "primary/user": b"sm-user-value",
    }
    assert len(api_calls(result)) == 1  # five selections of one secret: one fetch
    assert done["files"] == 6
    manifest = json.loads((outdir / "..manifest.json").read_bytes())
    selections = {e["name"]: e["source"].get("jmesPath") for e in manifest["entries"]}
    assert selections == {"password": "db.primary.password", "hyphen": '"db-primary".password',
                          "hosts.json": "db.replicas[*].host", "ttl": "ttl", "primary": "db.primary"}


def test_ssm_parameter(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    aws.ssm.put_parameter(Name="/app/nested", Value=_document(secret_values, "ssm"), Type="SecureString")
    entry = {"name": "pw", "valueFrom": "/app/nested", "jmesPath": '"db-primary".password'}

    result = run_sidecar(_env(aws, outdir, entry), guard=secret_values)

    assert_ok(result)
    assert visible(outdir) == {"pw": b"ssm-hyphen-value"}
    assert (api_calls(result)[0]["service"], api_calls(result)[0]["operation"]) == ("ssm", "GetParameters")


def test_s3_object(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    aws.s3.create_bucket(Bucket="jmes-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    aws.s3.put_object(Bucket="jmes-bucket", Key="config.json", Body=_document(secret_values, "s3").encode())
    entry = {"name": "replica", "valueFrom": "s3://jmes-bucket/config.json", "jmesPath": "db.replicas[1]",
             "expand": True, "mode": "0440"}

    result = run_sidecar(_env(aws, outdir, entry), guard=secret_values)

    assert_ok(result)
    assert visible(outdir) == {"replica/host": b"s3-replica-two-value"}
    assert oct(os.stat(outdir / "replica" / "host").st_mode & 0o777) == "0o440"


def test_no_match_exits_3_naming_the_entry_and_expression_and_leaves_the_set(
    aws: Any, previous: Path, secret_values: SecretValues
) -> None:
    arn = aws.secretsmanager.create_secret(Name="app/nomatch", SecretString=_document(secret_values, "nm"))["ARN"]
    entries = [{"name": "first", "valueFrom": arn, "jmesPath": "db.primary.user"},
               {"name": "pw", "valueFrom": arn, "jmesPath": "db.secondary.password", "optional": True}]
    before = full_state(previous)

    result = run_sidecar(_env(aws, previous, *entries), guard=secret_values)

    failed = assert_failed(result, 3)
    assert failed["reason"] == f"'pw': jmesPath 'db.secondary.password' matches nothing in secret {arn}"
    assert full_state(previous) == before


def test_a_function_given_the_wrong_type_exits_3_without_the_value(
    aws: Any, previous: Path, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/app/typed", Value=_document(secret_values, "ty"), Type="SecureString")
    entry = {"name": "n", "valueFrom": "/app/typed", "jmesPath": "abs(db.primary.password)"}
    before = full_state(previous)

    result = run_sidecar(_env(aws, previous, entry), guard=secret_values)

    failed = assert_failed(result, 3)
    assert failed["reason"] == ("'n': jmesPath 'abs(db.primary.password)' cannot be applied to parameter "
                                f"/app/typed in {REGION}: the expression gives abs() a JSON string where it takes "
                                "number")
    assert full_state(previous) == before


def test_a_syntax_error_exits_2_before_any_call(aws: Any, previous: Path, secret_values: SecretValues) -> None:
    entry = {"name": "pw", "valueFrom": "/app/any", "jmesPath": "db.primary."}
    before = full_state(previous)

    result = run_sidecar(_env(aws, previous, entry), guard=secret_values)

    failed = assert_failed(result, 2)
    assert failed["reason"] == "SIDECAR_SECRETS[0] ('pw'): jmesPath 'db.primary.' is incomplete at column 12"
    assert api_calls(result) == []
    assert full_state(previous) == before


def test_json_key_and_jmes_path_together_exit_2(aws: Any, previous: Path, secret_values: SecretValues) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:app/db-AbCdEf:db::"
    before = full_state(previous)

    result = run_sidecar(_env(aws, previous, {"name": "pw", "valueFrom": arn, "jmesPath": "primary"}),
                         guard=secret_values)

    assert_failed(result, 2, "jmesPath cannot be combined with the json-key 'db' of valueFrom")
    assert full_state(previous) == before


def test_check_shows_the_expression_per_file(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    entries = [{"name": "pw", "valueFrom": "/app/nested", "jmesPath": '"db-primary".password'},
               {"name": "plain", "valueFrom": "/app/plain"}]
    env = _env(aws, outdir, *entries)

    text = run_sidecar(env, "check", guard=secret_values, timeout=20)
    as_json = run_sidecar(env, "check", "--json", guard=secret_values, timeout=20)

    assert text.code == 0, text.stdout + text.stderr
    assert "<- /app/nested  jmesPath \"db-primary\".password\n" in text.stdout
    assert "<- /app/plain\n" in text.stdout
    files = {f["name"]: f for f in json.loads(as_json.stdout)["files"]}
    assert files["pw"]["jmesPath"] == '"db-primary".password'
    assert "jmesPath" not in files["plain"]
    assert os.listdir(outdir) == []
