"""``secrets-sidecar check --aws [--read] [--json]``: the real process against moto over HTTP, answers AWS would
give and moto does not (access denied, KMS failures) from the fault proxy. The report names each entry's
verdict, the exit code is the one a run would have, no value is printed and nothing is written."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from tests.conftest import ACCOUNT, REGION, SecretValues, SidecarResult, run_sidecar, sidecar_env
from tests.e2e.faultproxy import FaultProxy, json_error, query_error, s3_error, stall
from tests.e2e.helpers import full_state, secrets_json
from tests.e2e.test_roles import Account

ROLE = f"arn:aws:sts::{ACCOUNT}:assumed-role/ci-deploy/preflight"


def _denied(action: str, resource: str) -> str:
    """IAM's message, as AWS words it for an implicit deny."""
    return (f"User: {ROLE} is not authorized to perform: {action} on resource: {resource} because no "
            f"identity-based policy allows the {action} action")


def _check(endpoint: str, outdir: Path, entries: list[dict[str, Any]], *flags: str, **settings: str) -> SidecarResult:
    env = sidecar_env(endpoint, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries), **settings)
    before = full_state(outdir)
    result = run_sidecar(env, "check", "--aws", *flags)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert full_state(outdir) == before, "check --aws wrote to the output directory"
    return result


_ENTRY_LINE = re.compile(r"^  (?P<verdict>ok|missing|denied|undecryptable|version missing|unresolved|error) +"
                         r"(?P<name>[^\s:]+)")


def _lines(result: SidecarResult) -> dict[str, str]:
    """The report's entry lines, by entry name: ``{name: line}``."""
    return {m["name"]: line for line in result.stdout.splitlines() if (m := _ENTRY_LINE.match(line))}


def _document(result: SidecarResult) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in document["entries"]}


def _seed(aws: Any, secret_values: SecretValues) -> dict[str, Any]:
    """One present reference of each kind, and the values they hold."""
    db = secret_values.add(json.dumps({"user": "pf-user-31", "password": "pf-pa55-wd-77"}),
                           keys_named_in_config=("user", "password"))
    arn = aws.secretsmanager.create_secret(Name="pf/db", SecretString=db)["ARN"]
    aws.ssm.put_parameter(Name="/pf/api", Value=secret_values.add("pf-api-key-9912"), Type="SecureString")
    aws.ssm.put_parameter(Name="/pf/host", Value=secret_values.add("pf-host-4471.internal"), Type="String")
    aws.s3.create_bucket(Bucket="pf-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    aws.s3.put_object(Bucket="pf-bucket", Key="tls/key.pem", Body=secret_values.add(b"pf-object-bytes-5521"))
    return {"arn": arn, "values": [db, "pf-api-key-9912", "pf-host-4471.internal", "pf-object-bytes-5521"]}


def _present(arn: str) -> list[dict[str, Any]]:
    return [
        {"name": "db_user", "valueFrom": f"{arn}:user::"},
        {"name": "api_key", "valueFrom": "/pf/api"},
        {"name": "host", "valueFrom": "/pf/host"},
        {"name": "tls_key", "valueFrom": "s3://pf-bucket/tls/key.pem"},
    ]


def _assert_no_value(result: SidecarResult, values: list[str]) -> None:
    for value in values:
        assert value not in result.stdout + result.stderr


# --- metadata only --------------------------------------------------------------------------------------------


def test_present_entries_of_every_source_are_ok_with_what_was_not_checked(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    seeded = _seed(aws, secret_values)

    result = _check(aws.endpoint, outdir, _present(seeded["arn"]))

    assert result.code == 0, result.stdout + result.stderr
    lines = _lines(result)
    assert sorted(lines) == ["api_key", "db_user", "host", "tls_key"]
    assert all(line.split()[0] == "ok" for line in lines.values()), result.stdout
    assert "KMS key aws/secretsmanager (AWS managed) not checked (--read proves kms:Decrypt)" in result.stdout
    assert "SecureString: decryption not checked" in result.stdout
    assert result.stdout.splitlines()[-1] == (
        "summary: 4 ok: every required entry would succeed (exit 0)")
    # Metadata calls only: no value was asked for.
    operations = {e["operation"] for e in map(json.loads, result.stderr.splitlines()) if e.get("event") == "api_call"}
    assert operations == {"DescribeSecret", "GetParameters", "HeadObject"}
    _assert_no_value(result, seeded["values"])


def test_missing_secret_stage_parameter_version_and_object_each_get_their_verdict(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    seeded = _seed(aws, secret_values)
    arn = seeded["arn"]
    prefix = arn.rsplit(":", 1)[0]
    entries = [
        *_present(arn),
        {"name": "gone", "valueFrom": f"{prefix}:pf/nothing-here"},
        {"name": "pending", "valueFrom": f"{arn}:user:AWSPENDING:"},
        {"name": "no_param", "valueFrom": "/pf/absent"},
        {"name": "old_api", "valueFrom": "/pf/api:7"},
        {"name": "no_object", "valueFrom": "s3://pf-bucket/tls/absent.pem"},
    ]

    result = _check(aws.endpoint, outdir, entries, "--json")

    assert result.code == 3, result.stdout + result.stderr
    document = _document(result)
    entries_by_name = _by_name(document)
    assert {name: e["verdict"] for name, e in entries_by_name.items()} == {
        "db_user": "ok", "api_key": "ok", "host": "ok", "tls_key": "ok",
        "gone": "missing", "pending": "version_missing", "no_param": "missing", "old_api": "version_missing",
        "no_object": "missing",
    }
    assert "no version is in stage AWSPENDING" in entries_by_name["pending"]["detail"]
    assert "its version or label '7' does not" in entries_by_name["old_api"]["detail"]
    assert (document["exitCode"], document["ok"], document["mode"], document["version"]) == (3, False, "metadata", 1)
    assert document["summary"] == {"ok": 4, "missing": 3, "denied": 0, "undecryptable": 0, "version_missing": 2,
                                   "unresolved": 0, "error": 0, "warnings": 0, "problems": 0}
    _assert_no_value(result, seeded["values"])


def test_an_optional_missing_entry_is_a_warning_and_exit_0(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    seeded = _seed(aws, secret_values)
    entries = [*_present(seeded["arn"]), {"name": "maybe", "valueFrom": "/pf/absent", "optional": True}]

    result = _check(aws.endpoint, outdir, entries)

    assert result.code == 0, result.stdout + result.stderr
    assert _lines(result)["maybe"].split()[0] == "missing"
    assert "(optional: a run skips it; warning)" in _lines(result)["maybe"]
    assert result.stdout.splitlines()[-1] == (
        "summary: 4 ok, 1 missing, 1 warning(s): every required entry would succeed (exit 0)")


def test_a_denied_describe_secret_names_the_action_the_resource_and_the_way_out(
    aws: Any, outdir: Path, secret_values: SecretValues, proxy: FaultProxy
) -> None:
    seeded = _seed(aws, secret_values)
    arn = seeded["arn"]
    proxy.add(json_error("secretsmanager.DescribeSecret", "AccessDeniedException",
                         _denied("secretsmanager:DescribeSecret", arn)))

    result = _check(proxy.url, outdir, _present(arn), "--json")

    assert result.code == 3, result.stdout + result.stderr
    db = _by_name(_document(result))["db_user"]
    assert (db["verdict"], db["code"], db["action"], db["resource"]) == (
        "denied", "AccessDeniedException", "secretsmanager:DescribeSecret", arn)
    assert "grant DescribeSecret to the role that runs this check, or check with --read" in db["detail"]
    assert [e["verdict"] for e in _document(result)["entries"]] == ["denied", "ok", "ok", "ok"]


def test_a_denied_parameter_is_named_alone(aws: Any, outdir: Path, secret_values: SecretValues,
                                          proxy: FaultProxy) -> None:
    _seed(aws, secret_values)
    resource = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/pf/api"
    # IAM denies a whole GetParameters call; the preflight asks for each parameter alone.
    proxy.add(json_error("AmazonSSM.GetParameters", "AccessDeniedException", _denied("ssm:GetParameters", resource),
                         count=1))

    result = _check(proxy.url, outdir, [{"name": "api_key", "valueFrom": "/pf/api"}])

    assert result.code == 3
    line = _lines(result)["api_key"]
    assert line.split()[0] == "denied"
    assert f"ssm:GetParameters denied on {resource} (AccessDeniedException)" in line


def test_a_missing_object_version_is_told_from_a_missing_object(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    aws.s3.create_bucket(Bucket="pf-versions", CreateBucketConfiguration={"LocationConstraint": REGION})
    aws.s3.put_bucket_versioning(Bucket="pf-versions", VersioningConfiguration={"Status": "Enabled"})
    body = secret_values.add(b"pf-versioned-1187")
    version = aws.s3.put_object(Bucket="pf-versions", Key="k", Body=body)["VersionId"]
    entries = [
        {"name": "pinned", "valueFrom": f"s3://pf-versions/k?versionId={version}"},
        {"name": "unknown", "valueFrom": "s3://pf-versions/k?versionId=3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"},
    ]

    result = _check(aws.endpoint, outdir, entries, "--json")

    verdicts = {name: e["verdict"] for name, e in _by_name(_document(result)).items()}
    assert verdicts == {"pinned": "ok", "unknown": "version_missing"}
    assert result.code == 3


# --- read ---------------------------------------------------------------------------------------------------


def test_read_fetches_and_renders_everything_and_prints_and_writes_nothing(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    seeded = _seed(aws, secret_values)
    entries = [*_present(seeded["arn"]),
               {"name": "dsn", "template": "postgres://{{ u }}@{{ h }}/app", "inputs": {
                   "u": f"{seeded['arn']}:user::", "h": "/pf/host"}}]

    result = _check(aws.endpoint, outdir, entries, "--read", "--json")

    assert result.code == 0, result.stdout + result.stderr
    document = _document(result)
    assert document["mode"] == "read"
    assert {e["name"]: e["verdict"] for e in document["entries"]} == dict.fromkeys(
        ["db_user", "api_key", "host", "tls_key", "dsn"], "ok")
    assert "fetched (decrypted where encrypted); the value was discarded" in _by_name(document)["api_key"]["detail"]
    operations = {e["operation"] for e in map(json.loads, result.stderr.splitlines()) if e.get("event") == "api_call"}
    assert operations == {"GetSecretValue", "GetParameters", "GetObject"}
    _assert_no_value(result, seeded["values"])


def test_read_reports_a_json_key_that_does_not_resolve(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    seeded = _seed(aws, secret_values)
    entries = [*_present(seeded["arn"]), {"name": "db_port", "valueFrom": f"{seeded['arn']}:port::"}]

    without_read = _check(aws.endpoint, outdir, entries)
    result = _check(aws.endpoint, outdir, entries, "--read")

    assert without_read.code == 0  # metadata cannot see inside a value
    assert result.code == 3, result.stdout
    line = _lines(result)["db_port"]
    assert line.split()[0] == "unresolved"
    assert "has no key 'port'" in line
    assert result.stdout.splitlines()[-1] == "summary: 4 ok, 1 unresolved: a run would fail (exit 3)"


def test_undecryptable_with_read_and_not_checked_without(
    aws: Any, outdir: Path, secret_values: SecretValues, proxy: FaultProxy
) -> None:
    seeded = _seed(aws, secret_values)
    proxy.add(json_error("secretsmanager.GetSecretValue", "DecryptionFailure",
                         "Secrets Manager can't decrypt the protected secret text using the provided KMS key."))
    entries = _present(seeded["arn"])

    metadata = _check(proxy.url, outdir, entries, "--json")
    read = _check(proxy.url, outdir, entries, "--read", "--json")

    assert metadata.code == 0
    db = _by_name(_document(metadata))["db_user"]
    assert (db["verdict"], db["notes"]) == (
        "ok", ["KMS key aws/secretsmanager (AWS managed) not checked (--read proves kms:Decrypt)"])
    assert read.code == 3
    db = _by_name(_document(read))["db_user"]
    assert (db["verdict"], db["code"], db["action"]) == ("undecryptable", "DecryptionFailure", "kms:Decrypt")


def test_read_names_a_denied_kms_decrypt_on_an_object(
    aws: Any, outdir: Path, secret_values: SecretValues, proxy: FaultProxy
) -> None:
    seeded = _seed(aws, secret_values)
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    proxy.add(s3_error("GET", "/pf-bucket/tls/key.pem", "AccessDenied", _denied("kms:Decrypt", key)))

    result = _check(proxy.url, outdir, _present(seeded["arn"]), "--read", "--json")

    assert result.code == 3
    tls = _by_name(_document(result))["tls_key"]
    assert (tls["verdict"], tls["action"], tls["resource"]) == ("undecryptable", "kms:Decrypt", key)


# --- the command line -------------------------------------------------------------------------------------


def test_read_without_aws_is_a_configuration_error(moto: str, outdir: Path) -> None:
    env = sidecar_env(moto, SIDECAR_OUTPUT_DIR=str(outdir),
                      SIDECAR_SECRETS=secrets_json({"name": "a", "valueFrom": "/pf/a"}))

    result = run_sidecar(env, "check", "--read")

    assert result.code == 2
    reason = json.loads(result.stdout.splitlines()[-1])["reason"]
    assert reason == "check --read needs --aws: it reads every value from AWS"


def test_check_without_aws_stays_offline(outdir: Path) -> None:
    env = sidecar_env("http://127.0.0.1:9", SIDECAR_OUTPUT_DIR=str(outdir),
                      SIDECAR_SECRETS=secrets_json({"name": "a", "valueFrom": "/pf/a"}))

    result = run_sidecar(env, "check")

    assert result.code == 0
    assert result.stdout.startswith("configuration is valid: 1 entries, 1 API call(s)")


# --- parameter trees ----------------------------------------------------------------------------------------


def test_a_parameter_tree_is_ok_when_it_has_a_parameter_and_missing_when_empty(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    for name in ("db/password", "db/user", "api/key"):
        aws.ssm.put_parameter(Name=f"/pf/tree/{name}", Value=secret_values.add(f"pf-tree-{name}-6621"),
                              Type="SecureString")
    entries = [{"name": "app", "parametersByPath": "/pf/tree"},
               {"name": "empty", "parametersByPath": "/pf/nothing"},
               {"name": "maybe", "parametersByPath": "/pf/nothing/either", "optional": True}]

    metadata = _check(aws.endpoint, outdir, entries, "--json")
    read = _check(aws.endpoint, outdir, entries, "--read", "--json")

    for result, said in ((metadata, "at least one parameter"), (read, "3 parameter(s) fetched and decrypted")):
        assert result.code == 3, result.stdout + result.stderr
        verdicts = _by_name(_document(result))
        assert {name: (e["verdict"], e["warning"]) for name, e in verdicts.items()} == {
            "app": ("ok", False), "empty": ("missing", False), "maybe": ("missing", True)}
        assert said in verdicts["app"]["detail"]
        assert "there is no parameter under /pf/nothing" in verdicts["empty"]["detail"]
        # File names under a tree come from AWS: the report names the entry, never a file under it.
        assert "db/password" not in result.stdout
    calls = [e["operation"] for e in map(json.loads, metadata.stderr.splitlines()) if e.get("event") == "api_call"]
    assert calls == ["GetParametersByPath"] * 3


# --- roles --------------------------------------------------------------------------------------------------


def test_an_entry_read_through_a_role_is_checked_with_it_and_a_refused_role_fails_only_its_entries(
    aws: Any, outdir: Path, secret_values: SecretValues, proxy: FaultProxy
) -> None:
    reader, other = "arn:aws:iam::111111111111:role/reader", "arn:aws:iam::222222222222:role/other"
    for role in (reader, other):
        account = Account(aws.endpoint, role)
        account.parameter("/shared/api-key", str(secret_values.add(f"pf-shared-{role[13:25]}-key")))
    seeded = _seed(aws, secret_values)
    refusal = query_error("sts.AssumeRole", "AccessDenied", _denied("sts:AssumeRole", other))
    refusal.request_contains = b"role%2Fother"  # the other role only: the reader's is forwarded to moto
    proxy.add(refusal)
    entries = [*_present(seeded["arn"]),
               {"name": "shared", "valueFrom": "/shared/api-key", "roleArn": reader},
               {"name": "refused", "valueFrom": "/shared/api-key", "roleArn": other}]

    for flags in ((), ("--read",)):
        result = _check(proxy.url, outdir, entries, "--json", *flags)

        assert result.code == 3, result.stdout + result.stderr
        by_name = _by_name(_document(result))
        assert {name: e["verdict"] for name, e in by_name.items()} == {
            "db_user": "ok", "api_key": "ok", "host": "ok", "tls_key": "ok", "shared": "ok", "refused": "denied"}
        refused = by_name["refused"]
        assert (refused["action"], refused["resource"]) == ("sts:AssumeRole", other)
        assert by_name["shared"]["references"][0]["target"] == f"parameter /shared/api-key in {REGION} as {reader}"
        calls = [e for e in map(json.loads, result.stderr.splitlines()) if e.get("event") == "api_call"]
        assert {c.get("role_arn") for c in calls} == {None, reader}


# --- jmesPath and the deadline --------------------------------------------------------------------------------


def test_read_reports_a_jmes_path_that_matches_nothing_and_passes_one_that_matches(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    document = json.dumps({"db": {"primary": {"password": "pf-jmes-pa55-31"}}})
    value = secret_values.add(document, keys_named_in_config=("db", "primary", "password"))  # the paths name them
    aws.ssm.put_parameter(Name="/pf/config", Value=value, Type="SecureString")
    entries = [{"name": "primary", "valueFrom": "/pf/config", "jmesPath": "db.primary.password"},
               {"name": "replica", "valueFrom": "/pf/config", "jmesPath": "db.replica.password"}]

    metadata = _check(aws.endpoint, outdir, entries)
    result = _check(aws.endpoint, outdir, entries, "--read", "--json")

    assert metadata.code == 0  # the parameter exists: what is inside is for --read
    assert result.code == 3, result.stdout + result.stderr
    by_name = _by_name(_document(result))
    assert (by_name["primary"]["verdict"], by_name["replica"]["verdict"]) == ("ok", "unresolved")
    assert "db.replica.password" in by_name["replica"]["detail"]


def test_sidecar_timeout_bounds_the_whole_preflight(aws: Any, outdir: Path, secret_values: SecretValues,
                                                    proxy: FaultProxy) -> None:
    seeded = _seed(aws, secret_values)
    proxy.add(stall("secretsmanager.DescribeSecret"))

    started = time.monotonic()
    result = _check(proxy.url, outdir, _present(seeded["arn"]), SIDECAR_TIMEOUT="5")
    elapsed = time.monotonic() - started

    assert result.code == 3
    assert result.stdout == ""  # no report: the check could not finish
    failed = json.loads(result.stderr.splitlines()[-1])
    assert (failed["event"], failed["exit_code"]) == ("failed", 3)
    assert failed["reason"].startswith("the SIDECAR_TIMEOUT deadline passed with 1 API call(s) still unanswered")
    assert elapsed < 15, elapsed  # the stall would hold the call for 30 s
