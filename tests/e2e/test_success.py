"""Successful runs: every reference form lands as the exact bytes, with the mode and owner asked for."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REGION, SecretValues, run_sidecar, sidecar_env
from tests.e2e.faultproxy import FaultProxy, rewrite
from tests.e2e.helpers import (
    NOBODY,
    api_calls,
    assert_ok,
    owner_and_mode,
    parameter_arn,
    run_as,
    secrets_json,
)


def _env(aws: Any, outdir: Path, *entries: dict[str, Any], **settings: str) -> dict[str, str]:
    return sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries),
                       **settings)


def _file_events(result: Any) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in result.events if e.get("event") == "file"}


# --- Secrets Manager --------------------------------------------------------------------------------------


def test_whole_secret_string_is_written_as_its_exact_bytes(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    value = secret_values.add("pässwörd \"with\" 'quotes' and no newline")
    arn = aws.secretsmanager.create_secret(Name="app/db-password", SecretString=value)["ARN"]

    result = run_sidecar(_env(aws, outdir, {"name": "db/password", "valueFrom": arn}), guard=secret_values)

    done = assert_ok(result)
    assert (outdir / "db" / "password").read_bytes() == value.encode()
    assert os.readlink(outdir / "db") == "..data/db"
    assert owner_and_mode(outdir / "db" / "password") == (os.getuid(), os.getgid(), "0400")
    start = result.event("start")
    assert (start["entries"], start["planned_calls"]) == (1, 1)
    (call,) = api_calls(result)
    assert (call["service"], call["region"], call["operation"], call["ids"], call["attempt"], call["outcome"]) == (
        "secretsmanager", REGION, "GetSecretValue", 1, 1, "ok")
    file = _file_events(result)["db/password"]
    assert (file["bytes"], file["mode"], file["owner"]) == (len(value.encode()), "0400", f"{os.getuid()}:{os.getgid()}")
    assert (done["entries"], done["files"], done["api_calls"], done["retries"], done["skipped"]) == (1, 1, 1, 0, 0)


def test_json_keys_string_as_text_others_as_compact_sorted_json_in_one_call(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    document = {"username": "app-user-7", "password": "pw-\u00e9\u00e8-9", "port": 7345619, "tls": True,
                "pool": {"max": 10, "idle": [1, 2], "poolname": "p\u00f6\u00f6l"}, "ratio": 31.4159265}
    value = secret_values.add(json.dumps(document), keys_named_in_config=document)
    arn = aws.secretsmanager.create_secret(Name="app/db", SecretString=value)["ARN"]
    entries = [{"name": key, "valueFrom": f"{arn}:{key}::"} for key in document]

    result = run_sidecar(_env(aws, outdir, *entries), guard=secret_values)

    assert_ok(result)
    assert (outdir / "username").read_bytes() == b"app-user-7"
    assert (outdir / "password").read_bytes() == "pw-\u00e9\u00e8-9".encode()
    assert (outdir / "port").read_bytes() == b"7345619"
    assert (outdir / "tls").read_bytes() == b"true"
    assert (outdir / "pool").read_bytes() == '{"idle":[1,2],"max":10,"poolname":"p\u00f6\u00f6l"}'.encode()
    assert (outdir / "ratio").read_bytes() == b"31.4159265"
    # Six entries, one secret: one fetch.
    assert [(c["operation"], c["ids"]) for c in api_calls(result)] == [("GetSecretValue", 1)]


def test_binary_secret_is_written_raw_and_not_decoded_twice(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    raw = secret_values.add(bytes(range(256)) + b"\x00\xff")
    looks_like_base64 = secret_values.add(b"aGVsbG8td29ybGQ=")  # base64 of "hello-world": must stay as is
    raw_arn = aws.secretsmanager.create_secret(Name="app/key.bin", SecretBinary=raw)["ARN"]
    b64_arn = aws.secretsmanager.create_secret(Name="app/b64", SecretBinary=looks_like_base64)["ARN"]

    result = run_sidecar(_env(aws, outdir, {"name": "key.bin", "valueFrom": raw_arn},
                              {"name": "b64", "valueFrom": b64_arn}), guard=secret_values)

    assert_ok(result)
    assert (outdir / "key.bin").read_bytes() == raw
    assert (outdir / "b64").read_bytes() == looks_like_base64
    assert _file_events(result)["key.bin"]["bytes"] == 258


def test_stage_and_version_id_pins_and_partial_arn(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    sm = aws.secretsmanager
    first = sm.create_secret(Name="app/rotating", SecretString=secret_values.add("first-version-value"))
    sm.put_secret_value(SecretId=first["ARN"], SecretString=secret_values.add("second-version-value"))
    arn = first["ARN"]
    partial = arn[: -len("-AbCdEf")]
    assert arn.startswith(partial + "-") and partial.endswith(":secret:app/rotating")
    entries = [
        {"name": "current", "valueFrom": arn},
        {"name": "previous", "valueFrom": f"{arn}::AWSPREVIOUS:"},
        {"name": "by-id", "valueFrom": f"{arn}:::{first['VersionId']}"},
        {"name": "partial", "valueFrom": partial},
        {"name": "partial-previous", "valueFrom": f"{partial}::AWSPREVIOUS:"},
    ]

    result = run_sidecar(_env(aws, outdir, *entries), guard=secret_values)

    assert_ok(result)
    assert (outdir / "current").read_bytes() == b"second-version-value"
    assert (outdir / "previous").read_bytes() == b"first-version-value"
    assert (outdir / "by-id").read_bytes() == b"first-version-value"
    assert (outdir / "partial").read_bytes() == b"second-version-value"
    assert (outdir / "partial-previous").read_bytes() == b"first-version-value"
    assert {c["operation"] for c in api_calls(result)} == {"GetSecretValue"}
    manifest = json.loads((outdir / "..manifest.json").read_bytes())
    versions = {e["name"]: e["source"]["versionId"] for e in manifest["entries"]}
    assert versions["by-id"] == first["VersionId"] == versions["previous"]
    assert versions["current"] != first["VersionId"]


def test_key_and_stage_together(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    sm = aws.secretsmanager
    arn = sm.create_secret(Name="app/creds", SecretString=secret_values.add('{"user": "old-user-1"}'))["ARN"]
    sm.put_secret_value(SecretId=arn, SecretString=secret_values.add('{"user": "new-user-2"}'))

    result = run_sidecar(_env(aws, outdir, {"name": "old", "valueFrom": f"{arn}:user:AWSPREVIOUS:"},
                              {"name": "new", "valueFrom": f"{arn}:user:AWSCURRENT:"},
                              {"name": "new2", "valueFrom": f"{arn}:user::"}), guard=secret_values)

    assert_ok(result)
    assert (outdir / "old").read_bytes() == b"old-user-1"
    assert (outdir / "new").read_bytes() == b"new-user-2"
    assert (outdir / "new2").read_bytes() == b"new-user-2"
    # AWSCURRENT written out and left implicit are one fetch; AWSPREVIOUS is another.
    assert len(api_calls(result)) == 2


# --- SSM Parameter Store ----------------------------------------------------------------------------------


def _aws_selectors(labels: dict[str, int]) -> Callable[[bytes, bytes], bytes]:
    """GetParameters answered as AWS answers it: a parameter asked for as ``name:version`` or ``name:label``
    carries ``Selector`` (":version" / ":label"), which moto leaves out. ``labels`` maps ``name:label`` to
    the version the label is on."""

    def transform(request: bytes, response: bytes) -> bytes:
        wanted = []
        for requested in json.loads(request)["Names"]:
            if requested.startswith("arn:"):
                continue  # no selector here; an ARN's colons are not one
            base, _, selector = requested.partition(":")
            if selector:
                version = int(selector) if selector.isdigit() else labels[requested]
                wanted.append((base, version, f":{selector}"))
        document = json.loads(response)
        for parameter in document["Parameters"]:
            for index, (base, version, selector) in enumerate(wanted):
                if (parameter["Name"], parameter["Version"]) == (base, version):
                    parameter["Selector"] = selector
                    del wanted[index]
                    break
        return json.dumps(document).encode()

    return transform


@pytest.mark.parametrize("selector_in_answer", [True, False], ids=["aws-shaped-answer", "moto-answer"])
def test_parameter_types_selectors_and_arn(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues, selector_in_answer: bool
) -> None:
    ssm = aws.ssm
    ssm.put_parameter(Name="/app/plain", Value=secret_values.add("plain-string-1"), Type="String")
    ssm.put_parameter(Name="/app/secure", Value=secret_values.add("secure-str\u00efng-2"), Type="SecureString")
    ssm.put_parameter(Name="/app/list", Value=secret_values.add("alpha,beta,gamma"), Type="StringList")
    ssm.put_parameter(Name="toplevel", Value=secret_values.add("top-level-3"), Type="SecureString")
    ssm.put_parameter(Name="/app/versioned", Value=secret_values.add("version-one-4"), Type="SecureString")
    ssm.put_parameter(Name="/app/versioned", Value=secret_values.add("version-two-5"), Type="SecureString",
                      Overwrite=True)
    ssm.label_parameter_version(Name="/app/versioned", ParameterVersion=1, Labels=["stable"])
    entries = [
        {"name": "plain", "valueFrom": "/app/plain"},
        {"name": "secure", "valueFrom": "/app/secure"},
        {"name": "list", "valueFrom": "/app/list"},
        {"name": "toplevel", "valueFrom": "toplevel"},
        {"name": "v1", "valueFrom": "/app/versioned:1"},
        {"name": "stable", "valueFrom": "/app/versioned:stable"},
        {"name": "latest", "valueFrom": "/app/versioned"},
        {"name": "by-arn", "valueFrom": parameter_arn("/app/secure")},
        {"name": "toplevel-arn", "valueFrom": parameter_arn("toplevel")},
    ]
    if selector_in_answer:
        proxy.add(rewrite("AmazonSSM.GetParameters", _aws_selectors({"/app/versioned:stable": 1})))
    env = _env(aws, outdir, *entries) | {"AWS_ENDPOINT_URL": proxy.url}

    result = run_sidecar(env, guard=secret_values)

    assert_ok(result)
    expected = {
        "plain": "plain-string-1", "secure": "secure-str\u00efng-2", "list": "alpha,beta,gamma",
        "toplevel": "top-level-3", "v1": "version-one-4", "stable": "version-one-4", "latest": "version-two-5",
        "by-arn": "secure-str\u00efng-2", "toplevel-arn": "top-level-3",
    }
    for name, value in expected.items():
        assert (outdir / name).read_bytes() == value.encode(), name
    # Nine requests: an ARN is sent as the ARN (it may be another account's), so it is not the name's request.
    # A parameter name appears at most once per call (GetParameters answers with the bare name): /app/versioned
    # in three calls, /app/secure and toplevel in two.
    calls = api_calls(result)
    assert {(c["service"], c["operation"]) for c in calls} == {("ssm", "GetParameters")}
    assert sorted(c["ids"] for c in calls) == [1, 3, 5]
    assert [s.action for s in proxy.seen] == ["rewritten" if selector_in_answer else "forwarded"] * 3


# --- S3 -----------------------------------------------------------------------------------------------------


def test_s3_objects_plain_sse_kms_and_pinned_version(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    s3 = aws.s3
    s3.create_bucket(Bucket="cfg-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket="cfg-bucket", VersioningConfiguration={"Status": "Enabled"})
    key_id = aws.kms.create_key(Description="e2e")["KeyMetadata"]["KeyId"]
    pem = secret_values.add(b"-----BEGIN CERTIFICATE-----\nMIIe2e\n-----END CERTIFICATE-----\n")
    blob = secret_values.add(bytes(range(255, -1, -1)) * 3)
    first = s3.put_object(Bucket="cfg-bucket", Key="tls/key.pem", Body=secret_values.add(b"key-version-one"),
                          ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    s3.put_object(Bucket="cfg-bucket", Key="tls/key.pem", Body=secret_values.add(b"key-version-two"),
                  ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    s3.put_object(Bucket="cfg-bucket", Key="tls/cert.pem", Body=pem)
    s3.put_object(Bucket="cfg-bucket", Key="bin/blob", Body=blob, ServerSideEncryption="AES256")
    entries = [
        {"name": "tls/cert.pem", "valueFrom": "s3://cfg-bucket/tls/cert.pem", "mode": "0440"},
        {"name": "tls/key.pem", "valueFrom": "s3://cfg-bucket/tls/key.pem"},
        {"name": "tls/key-v1.pem", "valueFrom": f"s3://cfg-bucket/tls/key.pem?versionId={first['VersionId']}"},
        {"name": "blob", "valueFrom": "s3://cfg-bucket/bin/blob"},
    ]

    result = run_sidecar(_env(aws, outdir, *entries), guard=secret_values)

    assert_ok(result)
    assert (outdir / "tls" / "cert.pem").read_bytes() == pem
    assert (outdir / "tls" / "key.pem").read_bytes() == b"key-version-two"
    assert (outdir / "tls" / "key-v1.pem").read_bytes() == b"key-version-one"
    assert (outdir / "blob").read_bytes() == blob
    assert owner_and_mode(outdir / "tls" / "cert.pem")[2] == "0440"
    assert owner_and_mode(outdir / "tls" / "key.pem")[2] == "0400"
    calls = api_calls(result)
    assert [(c["service"], c["operation"], c["ids"]) for c in calls] == [("s3", "GetObject", 1)] * 4


# --- expand, shorthand, config sources -----------------------------------------------------------------------


def test_expand_writes_one_file_per_key(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    document = {"user": "expand-user", "password": "expand-p@ss", "port": 7654321, "debug": False,
                "opts": {"z": [3, 2], "a": None}, ".pgpass": "host:5432:*:u:pw-dotfile"}
    value = secret_values.add(json.dumps(document))
    arn = aws.secretsmanager.create_secret(Name="app/expand", SecretString=value)["ARN"]

    result = run_sidecar(_env(aws, outdir, {"name": "db", "valueFrom": arn, "expand": True, "mode": "0440"}),
                         guard=secret_values)

    assert_ok(result)
    assert sorted(os.listdir(outdir / "db")) == [".pgpass", "debug", "opts", "password", "port", "user"]
    assert (outdir / "db" / "user").read_bytes() == b"expand-user"
    assert (outdir / "db" / "password").read_bytes() == b"expand-p@ss"
    assert (outdir / "db" / "port").read_bytes() == b"7654321"
    assert (outdir / "db" / "debug").read_bytes() == b"false"
    assert (outdir / "db" / "opts").read_bytes() == b'{"a":null,"z":[3,2]}'
    assert (outdir / "db" / ".pgpass").read_bytes() == b"host:5432:*:u:pw-dotfile"
    for name in document:
        assert owner_and_mode(outdir / "db" / name)[2] == "0440"
    assert owner_and_mode(outdir / "db")[2] == "0755"
    # The files are named by position in log lines: a key is secret content.
    assert set(_file_events(result)) == {f"db/<key #{position}>" for position in range(1, len(document) + 1)}


def test_shorthand_variables_combine_with_the_json_list(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    aws.ssm.put_parameter(Name="/app/token", Value=secret_values.add("shorthand-token-1"), Type="SecureString")
    arn = aws.secretsmanager.create_secret(Name="app/other", SecretString=secret_values.add("json-list-value"))["ARN"]
    env = _env(aws, outdir, {"name": "from_json", "valueFrom": arn},
               SIDECAR_SECRET_API_TOKEN="/app/token", SIDECAR_SECRET_Mixed_Case=arn)

    result = run_sidecar(env, guard=secret_values)

    assert_ok(result)
    assert (outdir / "API_TOKEN").read_bytes() == b"shorthand-token-1"
    assert (outdir / "Mixed_Case").read_bytes() == b"json-list-value"
    assert (outdir / "from_json").read_bytes() == b"json-list-value"
    assert result.event("start")["entries"] == 3
    assert len(api_calls(result)) == 2  # the secret two entries share is fetched once


def test_config_file_and_precedence_flags_over_env_over_file(
    aws: Any, tmp_path: Path, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/cfg/from-file", Value=secret_values.add("from-the-file"), Type="SecureString")
    file_dir, env_dir = tmp_path / "file-dir", tmp_path / "env-dir"
    file_dir.mkdir()
    env_dir.mkdir()
    config = tmp_path / "sidecar.json"
    config.write_text(json.dumps({
        "secrets": [{"name": "cfg_value", "valueFrom": "/cfg/from-file"}],
        "outputDir": str(file_dir),
        "fileMode": "0440",
        "envFile": "from-file.env",
        "maxBytes": 100,
    }))
    env = sidecar_env(aws.endpoint, SIDECAR_CONFIG_FILE=str(config), SIDECAR_OUTPUT_DIR=str(env_dir),
                      SIDECAR_FILE_MODE="0600")

    result = run_sidecar(env, "run", "--file-mode", "0400", guard=secret_values)

    assert_ok(result)
    assert os.listdir(file_dir) == []  # the environment's outputDir won over the file's
    assert (env_dir / "cfg_value").read_bytes() == b"from-the-file"  # secrets from the file
    assert owner_and_mode(env_dir / "cfg_value")[2] == "0400"  # the flag won over env and file
    assert (env_dir / "from-file.env").read_bytes() == b"cfg_value='from-the-file'\n"  # only in the file


def test_secrets_list_precedence(aws: Any, outdir: Path, tmp_path: Path, secret_values: SecretValues) -> None:
    for name in ("file", "env", "flag"):
        aws.ssm.put_parameter(Name=f"/src/{name}", Value=secret_values.add(f"value-from-{name}"), Type="String")
    config = tmp_path / "sidecar.json"
    config.write_text(json.dumps({"secrets": [{"name": "file", "valueFrom": "/src/file"}]}))
    env = _env(aws, outdir, {"name": "env", "valueFrom": "/src/env"}, SIDECAR_CONFIG_FILE=str(config))

    from_env = run_sidecar(env, guard=secret_values)
    assert_ok(from_env)
    assert sorted(n for n in os.listdir(outdir) if not n.startswith("..")) == ["env"]

    from_flag = run_sidecar(env, "--secrets", secrets_json({"name": "flag", "valueFrom": "/src/flag"}),
                            guard=secret_values)
    assert_ok(from_flag)
    assert sorted(n for n in os.listdir(outdir) if not n.startswith("..")) == ["flag"]
    assert (outdir / "flag").read_bytes() == b"value-from-flag"


# --- optional, de-duplication, manifest, owners ----------------------------------------------------------------


def test_optional_missing_secrets_are_skipped_with_a_warning(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/app/present", Value=secret_values.add("present-value"), Type="String")
    missing_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/not-there-AbCdEf"
    entries = [
        {"name": "present", "valueFrom": "/app/present"},
        {"name": "flags", "valueFrom": "/app/missing-flags", "optional": True},
        {"name": "extra", "valueFrom": missing_arn, "optional": True},
    ]

    result = run_sidecar(_env(aws, outdir, *entries), guard=secret_values)

    done = assert_ok(result)
    assert (outdir / "present").read_bytes() == b"present-value"
    assert not os.path.lexists(outdir / "flags") and not os.path.lexists(outdir / "extra")
    skipped = {e["name"]: e for e in result.events if e["event"] == "optional_skipped"}
    assert set(skipped) == {"flags", "extra"}
    assert all(e["level"] == "warning" for e in skipped.values())
    assert "/app/missing-flags" in skipped["flags"]["reason"]
    assert "ParameterNotFound" in skipped["flags"]["reason"]
    assert "app/not-there" in skipped["extra"]["reason"]
    assert (done["entries"], done["skipped"], done["files"]) == (1, 2, 1)
    manifest = json.loads((outdir / "..manifest.json").read_bytes())
    assert sorted(manifest["skipped"]) == ["extra", "flags"]


def test_duplicate_references_are_fetched_once(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    value = secret_values.add('{"a": "shared-a-1", "b": "shared-b-2"}')
    arn = aws.secretsmanager.create_secret(Name="app/shared", SecretString=value)["ARN"]
    aws.ssm.put_parameter(Name="/app/shared", Value=secret_values.add("shared-param"), Type="String")
    entries = [
        {"name": "whole", "valueFrom": arn},
        {"name": "whole-again", "valueFrom": f"{arn}::AWSCURRENT:"},
        {"name": "a", "valueFrom": f"{arn}:a::"},
        {"name": "b", "valueFrom": f"{arn}:b::"},
        {"name": "p1", "valueFrom": "/app/shared"},
        {"name": "p2", "valueFrom": "/app/shared"},
        {"name": "p3", "valueFrom": parameter_arn("/app/shared")},
    ]

    result = run_sidecar(_env(aws, outdir, *entries), guard=secret_values)

    assert_ok(result)
    calls = api_calls(result)
    # The parameter's ARN is a request of its own (sent as the ARN: it could name another account's
    # parameter), in a call of its own (one parameter name per call).
    assert sorted((c["operation"], c["ids"]) for c in calls) == [
        ("GetParameters", 1), ("GetParameters", 1), ("GetSecretValue", 1)]
    assert (outdir / "whole-again").read_bytes() == (outdir / "whole").read_bytes()
    assert (outdir / "a").read_bytes() == b"shared-a-1"
    assert (outdir / "b").read_bytes() == b"shared-b-2"
    assert {(outdir / p).read_bytes() for p in ("p1", "p2", "p3")} == {b"shared-param"}
    assert result.final["api_calls"] == 3


def test_manifest_is_value_free_and_describes_the_set(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    document = '{"user": "manifest-user", "password": "manifest-password"}'
    created = aws.secretsmanager.create_secret(Name="app/manifest", SecretString=secret_values.add(document))
    aws.ssm.put_parameter(Name="/app/m", Value=secret_values.add("manifest-param-v"), Type="SecureString")
    entries = [{"name": "db", "valueFrom": created["ARN"], "expand": True},
               {"name": "pw", "valueFrom": f"{created['ARN']}:password::"},
               {"name": "param", "valueFrom": "/app/m", "mode": "0440"}]

    result = run_sidecar(_env(aws, outdir, *entries), guard=secret_values)

    assert_ok(result)
    raw = (outdir / "..manifest.json").read_bytes()
    for value in secret_values.values:
        assert value not in raw
    manifest = json.loads(raw)
    records = {e["name"]: e for e in manifest["entries"]}
    assert set(records) == {"db", "pw", "param"}
    assert records["pw"]["source"] == {"service": "secretsmanager", "region": REGION, "servedBy": REGION,
                                       "valueFrom": f"{created['ARN']}:password::",
                                       "versionId": created["VersionId"]}
    assert records["param"]["source"]["versionId"] == "1"
    assert records["pw"]["files"] == [{"path": "pw", "bytes": len("manifest-password"), "mode": "0400",
                                       "uid": os.getuid(), "gid": os.getgid()}]
    assert {f["path"]: f["bytes"] for f in records["db"]["files"]} == {"db/user": 13, "db/password": 17}
    assert records["param"]["files"][0]["mode"] == "0440"
    assert manifest["writtenAt"].endswith("Z")
    assert os.readlink(outdir / "..manifest.json") == "..data/..manifest.json"
    assert owner_and_mode(outdir / "..manifest.json")[2] == "0400"


def test_mode_and_owner_per_entry_and_defaults(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    aws.ssm.put_parameter(Name="/own/a", Value=secret_values.add("owner-value-a"), Type="String")
    aws.ssm.put_parameter(Name="/own/b", Value=secret_values.add("owner-value-b"), Type="String")
    document = secret_values.add('{"k1": "owner-k1", "k2": "owner-k2"}')
    arn = aws.secretsmanager.create_secret(Name="own/c", SecretString=document)["ARN"]
    entries = [
        {"name": "default", "valueFrom": "/own/a"},
        {"name": "custom/b", "valueFrom": "/own/b", "mode": "0440", "uid": 1234, "gid": 2345},
        {"name": "keys", "valueFrom": arn, "expand": True, "mode": "0o600", "uid": 3000},
    ]
    env = _env(aws, outdir, *entries, SIDECAR_UID="1000", SIDECAR_GID="1001", SIDECAR_FILE_MODE="0440")

    result = run_sidecar(env, guard=secret_values)

    assert_ok(result)
    assert owner_and_mode(outdir / "default") == (1000, 1001, "0440")
    assert owner_and_mode(outdir / "custom" / "b") == (1234, 2345, "0440")
    assert owner_and_mode(outdir / "keys" / "k1") == (3000, 1001, "0600")
    assert owner_and_mode(outdir / "keys" / "k2") == (3000, 1001, "0600")
    assert owner_and_mode(outdir / "..manifest.json") == (1000, 1001, "0440")
    # Directories of the set belong to SIDECAR_UID/GID, and anyone may traverse them.
    assert owner_and_mode(outdir / "..data/") == (1000, 1001, "0755")
    assert owner_and_mode(outdir / "custom") == (1000, 1001, "0755")
    files = _file_events(result)
    assert (files["custom/b"]["mode"], files["custom/b"]["owner"]) == ("0440", "1234:2345")
    assert files["keys/<key #1>"]["owner"] == "3000:1001"


def test_non_root_sidecar_writes_files_it_owns(aws: Any, open_outdir: Path, secret_values: SecretValues) -> None:
    outdir = open_outdir
    aws.ssm.put_parameter(Name="/app/nr", Value=secret_values.add("non-root-value"), Type="SecureString")
    os.chown(outdir, NOBODY, NOBODY)
    env = _env(aws, outdir, {"name": "nr", "valueFrom": "/app/nr"})

    result = run_as(env, uid=NOBODY, gid=NOBODY, guard=secret_values)

    assert_ok(result)
    assert (outdir / "nr").read_bytes() == b"non-root-value"
    assert owner_and_mode(outdir / "nr") == (NOBODY, NOBODY, "0400")
    assert owner_and_mode(outdir / "..data/") == (NOBODY, NOBODY, "0755")


# --- check -------------------------------------------------------------------------------------------------


def test_check_prints_the_plan_without_network_access(outdir: Path, secret_values: SecretValues) -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db-AbCdEf"
    entries = [
        {"name": "db_user", "valueFrom": f"{arn}:user::"},
        {"name": "db_pass", "valueFrom": f"{arn}:password::", "mode": "0440", "uid": 1000, "gid": 1000},
        {"name": "api", "valueFrom": "/app/api"},
        {"name": "cert", "valueFrom": "s3://my-bucket/cert.pem", "optional": True},
    ]
    # Nothing listens on port 9: any network access would fail the run.
    env = sidecar_env("http://127.0.0.1:9", SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries),
                      SIDECAR_TIMEOUT="5")

    text = run_sidecar(env, "check", guard=secret_values, timeout=20)
    as_json = run_sidecar(env, "check", "--json", guard=secret_values, timeout=20)

    assert text.code == 0, text.stdout + text.stderr
    assert "configuration is valid: 4 entries, 3 API call(s)" in text.stdout
    assert "call  secretsmanager GetSecretValue in eu-west-1: secret " + arn in text.stdout
    assert "file  db_pass  mode 0440  owner 1000:1000" in text.stdout
    assert "(optional)" in text.stdout
    assert "api_call" not in text.stdout
    assert as_json.code == 0, as_json.stderr
    plan = json.loads(as_json.stdout)
    assert sorted((c["service"], c["operation"]) for c in plan["calls"]) == [
        ("s3", "GetObject"), ("secretsmanager", "GetSecretValue"), ("ssm", "GetParameters")]
    assert {f["name"]: f["mode"] for f in plan["files"]} == {"db_user": "0400", "db_pass": "0440", "api": "0400",
                                                               "cert": "0400"}
    assert os.listdir(outdir) == []


def test_region_comes_from_the_arn(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    import boto3

    def client(service: str, region: str) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=aws.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    arn = client("secretsmanager", "us-east-1").create_secret(
        Name="far/db", SecretString=secret_values.add("value-in-us-east-1"))["ARN"]
    client("ssm", "ap-southeast-2").put_parameter(Name="/far/p", Value=secret_values.add("value-in-sydney"),
                                                   Type="SecureString")
    entries = [{"name": "db", "valueFrom": arn},
               {"name": "p", "valueFrom": parameter_arn("/far/p", region="ap-southeast-2")}]

    result = run_sidecar(_env(aws, outdir, *entries), guard=secret_values)  # AWS_REGION is eu-west-1

    assert_ok(result)
    assert (outdir / "db").read_bytes() == b"value-in-us-east-1"
    assert (outdir / "p").read_bytes() == b"value-in-sydney"
    assert sorted((c["service"], c["region"]) for c in api_calls(result)) == [
        ("secretsmanager", "us-east-1"), ("ssm", "ap-southeast-2")]


def test_service_specific_endpoint_variables(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    arn = aws.secretsmanager.create_secret(Name="ep/db", SecretString=secret_values.add("endpoint-sm-value"))["ARN"]
    aws.ssm.put_parameter(Name="/ep/p", Value=secret_values.add("endpoint-ssm-value"), Type="SecureString")
    # The generic endpoint goes nowhere: only the per-service variables can make this run succeed.
    env = sidecar_env("http://127.0.0.1:9", SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_TIMEOUT="10",
                      SIDECAR_SECRETS=secrets_json({"name": "db", "valueFrom": arn},
                                                   {"name": "p", "valueFrom": "/ep/p"}),
                      AWS_ENDPOINT_URL_SECRETS_MANAGER=aws.endpoint, AWS_ENDPOINT_URL_SSM=aws.endpoint)

    result = run_sidecar(env, guard=secret_values)

    assert_ok(result)
    assert (outdir / "db").read_bytes() == b"endpoint-sm-value"
    assert (outdir / "p").read_bytes() == b"endpoint-ssm-value"
    assert result.final["retries"] == 0


def test_an_entry_inside_an_expanded_directory(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    value = secret_values.add('{"user": "expanded-user-1"}')
    arn = aws.secretsmanager.create_secret(Name="app/exp", SecretString=value)["ARN"]
    aws.ssm.put_parameter(Name="/app/extra", Value=secret_values.add("extra-file-value"), Type="String")

    result = run_sidecar(_env(aws, outdir, {"name": "db", "valueFrom": arn, "expand": True},
                              {"name": "db/extra", "valueFrom": "/app/extra"}), guard=secret_values)

    assert_ok(result)
    assert (outdir / "db" / "user").read_bytes() == b"expanded-user-1"
    assert (outdir / "db" / "extra").read_bytes() == b"extra-file-value"


def test_help_lists_exit_codes_and_version_answers(secret_values: SecretValues) -> None:
    env = sidecar_env("http://127.0.0.1:9")
    help_text = run_sidecar(env, "--help", guard=secret_values)
    run_help = run_sidecar(env, "run", "--help", guard=secret_values)
    version = run_sidecar(env, "--version", guard=secret_values)

    assert help_text.code == 0 and run_help.code == 0 and version.code == 0
    for text in (help_text.stdout, run_help.stdout):
        assert "exit codes:" in text
        assert "2  configuration error" in text and "4  the files could not be written" in text
    assert "--output-dir" in run_help.stdout
    assert version.stdout.startswith("secrets-sidecar ")
