"""Bad input: each case gets its exit code, one precise ``failed`` line, no traceback, and loses nothing.

Every run writes into a directory that already holds a set committed by an earlier run (``previous``); after
the failed run that directory must be exactly as it was.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SecretValues, run_sidecar, sidecar_env
from tests.e2e.helpers import (
    NOBODY,
    api_calls,
    assert_failed,
    full_state,
    run_as,
    run_with_private_mount,
    secret_arn_prefix,
    secrets_json,
)

ARN = secret_arn_prefix() + "app/db-AbCdEf"
VERSION_ID = "9d4cb84b-ad69-40c0-a0ab-cead3EXAMPLE"


def _run_bad(previous: Path, secret_values: SecretValues, env: dict[str, str], exit_code: int,
             *fragments: str, args: tuple[str, ...] = ()) -> dict[str, Any]:
    before = full_state(previous)
    result = run_sidecar(env, *args, guard=secret_values)
    failed = assert_failed(result, exit_code, *fragments)
    assert full_state(previous) == before
    if exit_code == 2:
        assert api_calls(result) == []
    return failed


def _env_with(endpoint: str, previous: Path, secrets: object = None, **settings: str) -> dict[str, str]:
    extra = {} if secrets is None else {"SIDECAR_SECRETS": secrets if isinstance(secrets, str) else json.dumps(secrets)}
    return sidecar_env(endpoint, SIDECAR_OUTPUT_DIR=str(previous), **extra, **settings)


# --- configuration errors: exit 2, nothing fetched ------------------------------------------------------------

CONFIG_CASES: list[tuple[str, object, dict[str, str], tuple[str, ...]]] = [
    ("malformed-json", '[{"name": "a", "valueFrom": "/app/a"}', {},
     ("SIDECAR_SECRETS is not valid JSON at line 1 column",)),
    ("not-an-array", '{"name": "a", "valueFrom": "/app/a"}', {}, ("SIDECAR_SECRETS must be a JSON array",)),
    ("unknown-entry-key", [{"name": "a", "valueFrom": "/app/a", "optinal": True}], {},
     ("SIDECAR_SECRETS[0]", "unknown key 'optinal'", "did you mean optional?")),
    ("missing-valueFrom", [{"name": "a", "value_from": "/app/a"}], {}, ("unknown key 'value_from'", "valueFrom")),
    ("unknown-variable", [{"name": "a", "valueFrom": "/app/a"}], {"SIDECAR_OUTPUT_DIRECTORY": "/x"},
     ("unknown setting SIDECAR_OUTPUT_DIRECTORY", "did you mean SIDECAR_OUTPUT_DIR?")),
    ("kms-arn", [{"name": "a", "valueFrom": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef"}], {},
     ("'a'", "arn:aws:kms:", "service 'kms'")),
    ("s3-arn", [{"name": "a", "valueFrom": "arn:aws:s3:::bucket/key"}], {}, ("s3://bucket/key",)),
    ("secret-name-without-arn", [{"name": "a", "valueFrom": "prod/db"}], {},
     ("'prod/db'", "must begin with '/'", "Secrets Manager secret needs its full ARN")),
    ("one-trailing-field", [{"name": "a", "valueFrom": f"{ARN}:key"}], {}, ("1 field(s)", "exactly three")),
    ("two-trailing-fields", [{"name": "a", "valueFrom": f"{ARN}:key:"}], {}, ("2 field(s)", "exactly three")),
    ("four-trailing-fields", [{"name": "a", "valueFrom": f"{ARN}:key:::"}], {}, ("4 field(s)", "exactly three")),
    ("stage-and-version-id", [{"name": "a", "valueFrom": f"{ARN}::AWSPREVIOUS:{VERSION_ID}"}], {},
     ("both a version stage and a version id", "mutually exclusive")),
    ("short-version-id", [{"name": "a", "valueFrom": f"{ARN}:::abc"}], {}, ("'abc' is not a version id",)),
    ("bad-mode-string", [{"name": "a", "valueFrom": "/app/a", "mode": "rw-r-----"}], {},
     ("mode", "'rw-r-----' is not an octal mode string")),
    ("mode-not-octal", [{"name": "a", "valueFrom": "/app/a", "mode": "0489"}], {}, ("'0489' is not an octal mode",)),
    ("mode-as-number", [{"name": "a", "valueFrom": "/app/a", "mode": 400}], {}, ("400 is not an octal mode",)),
    ("group-writable-mode", [{"name": "a", "valueFrom": "/app/a", "mode": "0460"}], {},
     ("'0460' lets group or others write or execute",)),
    ("world-writable-default-mode", [{"name": "a", "valueFrom": "/app/a"}], {"SIDECAR_FILE_MODE": "0666"},
     ("SIDECAR_FILE_MODE", "'0666' lets group or others write")),
    ("setuid-mode", [{"name": "a", "valueFrom": "/app/a", "mode": "4400"}], {}, ("special bits",)),
    ("unknown-region-in-arn",
     [{"name": "a", "valueFrom": secret_arn_prefix(region="eu-middle-9") + "app/db-AbCdEf"}], {},
     ("'a'", "region 'eu-middle-9' is not a known AWS region")),
    ("not-a-region-in-arn", [{"name": "a", "valueFrom": secret_arn_prefix(region="europe") + "app/db-AbCdEf"}], {},
     ("'europe' is not a region name",)),
    ("unknown-default-region", [{"name": "a", "valueFrom": "/app/a"}], {"AWS_REGION": "mars-north-1"},
     ("region 'mars-north-1' is not a known AWS region",)),
    ("bad-account", [{"name": "a", "valueFrom": "arn:aws:secretsmanager:eu-west-1:1234:secret:x-AbCdEf"}], {},
     ("the account '1234' is not 12 digits",)),
    ("name-dotdot-first", [{"name": "../x", "valueFrom": "/app/a"}], {}, ("'../x'", "'..' component")),
    ("name-absolute", [{"name": "/abs", "valueFrom": "/app/a"}], {}, ("'/abs'", "is absolute")),
    ("name-dotdot-inside", [{"name": "a/../b", "valueFrom": "/app/a"}], {}, ("'a/../b'", "'..' component")),
    ("name-nul", [{"name": "a\u0000b", "valueFrom": "/app/a"}], {}, ("contains a NUL character",)),
    ("name-reserved", [{"name": "..data", "valueFrom": "/app/a"}], {}, ("'..data'", "reserved")),
    ("name-reserved-manifest", [{"name": "..manifest.json", "valueFrom": "/app/a"}], {}, ("reserved",)),
    ("name-empty-component", [{"name": "a//b", "valueFrom": "/app/a"}], {}, ("empty path component",)),
    ("name-control-char", [{"name": "a\nb", "valueFrom": "/app/a"}], {}, ("control character",)),
    ("duplicate-names", [{"name": "a", "valueFrom": "/app/a"}, {"name": "a", "valueFrom": "/app/b"}], {},
     ("duplicate names", "'a' and 'a'")),
    ("duplicate-after-nfc",
     [{"name": "caf\u00e9", "valueFrom": "/app/a"}, {"name": "cafe\u0301", "valueFrom": "/app/b"}], {},
     ("duplicate names", "are the same file")),
    ("duplicate-with-shorthand", [{"name": "TOKEN", "valueFrom": "/app/a"}], {"SIDECAR_SECRET_TOKEN": "/app/b"},
     ("duplicate names", "'TOKEN'")),
    ("file-and-directory", [{"name": "a", "valueFrom": "/app/a"}, {"name": "a/b", "valueFrom": "/app/b"}], {},
     ("'a' is a file, so 'a/b' cannot be inside it",)),
    ("env-file-bad-variable", [{"name": "db-password", "valueFrom": "/app/a"}], {"SIDECAR_ENV_FILE": "app.env"},
     ("'db-password' is not a valid environment variable name",)),
    ("optional-not-bool", [{"name": "a", "valueFrom": "/app/a", "optional": "yes"}], {},
     ("optional must be true or false",)),
    ("bad-timeout", [{"name": "a", "valueFrom": "/app/a"}], {"SIDECAR_TIMEOUT": "soon"},
     ("SIDECAR_TIMEOUT", "'soon' is not a positive number of seconds")),
    ("bad-sm-batch", [{"name": "a", "valueFrom": "/app/a"}], {"SIDECAR_SM_BATCH": "sometimes"},
     ("'sometimes' is not one of auto, always, never",)),
    ("nothing-configured", None, {}, ("no secrets configured",)),
]


@pytest.mark.parametrize(("secrets", "settings", "fragments"), [case[1:] for case in CONFIG_CASES],
                         ids=[case[0] for case in CONFIG_CASES])
def test_configuration_errors_exit_2(
    secrets: object, settings: dict[str, str], fragments: tuple[str, ...], *,
    moto: str, previous: Path, secret_values: SecretValues,
) -> None:
    _run_bad(previous, secret_values, _env_with(moto, previous, secrets, **settings), 2, *fragments)


def test_no_region_for_a_bare_parameter_name(moto: str, previous: Path, secret_values: SecretValues) -> None:
    env = _env_with(moto, previous, [{"name": "a", "valueFrom": "/app/a"}])
    del env["AWS_REGION"]
    _run_bad(previous, secret_values, env, 2, "'/app/a' carries no region", "AWS_REGION")


def test_config_file_errors(moto: str, previous: Path, tmp_path: Path, secret_values: SecretValues) -> None:
    config = tmp_path / "sidecar.json"
    config.write_text(json.dumps({"secrets": [], "outputdir": "/x"}))
    env = _env_with(moto, previous, SIDECAR_CONFIG_FILE=str(config))
    _run_bad(previous, secret_values, env, 2, "unknown key 'outputdir'", "did you mean outputDir?")

    env = _env_with(moto, previous, SIDECAR_CONFIG_FILE=str(tmp_path / "missing.json"))
    _run_bad(previous, secret_values, env, 2, "cannot read config file", "missing.json")


def test_unknown_flag_exits_2_without_traceback(moto: str, previous: Path, secret_values: SecretValues) -> None:
    before = full_state(previous)
    result = run_sidecar(_env_with(moto, previous, [{"name": "a", "valueFrom": "/app/a"}]), "--no-such-flag",
                         guard=secret_values)
    assert result.code == 2
    assert "unrecognized arguments: --no-such-flag" in result.stderr
    assert "Traceback" not in result.stderr
    assert full_state(previous) == before


# --- the output directory: exit 4 before any API call -----------------------------------------------------------


def test_output_directory_missing(aws: Any, tmp_path: Path, secret_values: SecretValues) -> None:
    aws.ssm.put_parameter(Name="/app/a", Value=secret_values.add("value-never-fetched"), Type="String")
    missing = tmp_path / "not-mounted"
    result = run_sidecar(sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(missing),
                                     SIDECAR_SECRETS=secrets_json({"name": "a", "valueFrom": "/app/a"})),
                         guard=secret_values)
    assert_failed(result, 4, str(missing), "does not exist")
    assert api_calls(result) == []
    assert not missing.exists()


def test_output_directory_not_writable_by_a_non_root_sidecar(
    aws: Any, open_outdir: Path, _previous_template: Path, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/app/a", Value=secret_values.add("value-never-fetched"), Type="String")
    shutil.copytree(_previous_template, open_outdir, symlinks=True, dirs_exist_ok=True)
    before = full_state(open_outdir)  # owned by root, mode 0755
    env = sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(open_outdir),
                      SIDECAR_SECRETS=secrets_json({"name": "a", "valueFrom": "/app/a"}))

    result = run_as(env, uid=NOBODY, gid=NOBODY, guard=secret_values)

    assert_failed(result, 4, str(open_outdir), f"not writable by uid {NOBODY}", "owner uid 0", "mode 0755")
    assert api_calls(result) == []
    assert full_state(open_outdir) == before


def test_non_root_sidecar_cannot_give_files_to_another_owner(
    aws: Any, open_outdir: Path, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/app/a", Value=secret_values.add("value-never-fetched"), Type="String")
    os.chown(open_outdir, NOBODY, NOBODY)
    env = sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(open_outdir), SIDECAR_UID="1000",
                      SIDECAR_SECRETS=secrets_json({"name": "a", "valueFrom": "/app/a"}))

    result = run_as(env, uid=NOBODY, gid=NOBODY, guard=secret_values)

    assert_failed(result, 4, "cannot give files to 1000:", f"runs as {NOBODY}:{NOBODY}")
    assert api_calls(result) == []
    assert os.listdir(open_outdir) == []


# --- values that do not match their reference: exit 3 -------------------------------------------------------------


def test_secret_that_does_not_exist(aws: Any, previous: Path, secret_values: SecretValues) -> None:
    missing = secret_arn_prefix() + "app/never-created-AbCdEf"
    env = _env_with(aws.endpoint, previous, [{"name": "gone", "valueFrom": missing}])
    _run_bad(previous, secret_values, env, 3, "'gone'", missing, "was not found (ResourceNotFoundException)")


def test_parameter_and_object_that_do_not_exist(aws: Any, previous: Path, secret_values: SecretValues) -> None:
    env = _env_with(aws.endpoint, previous, [{"name": "p", "valueFrom": "/app/never-created"}])
    _run_bad(previous, secret_values, env, 3, "'p'", "/app/never-created", "ParameterNotFound")

    aws.s3.create_bucket(Bucket="bad-input", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    env = _env_with(aws.endpoint, previous, [{"name": "o", "valueFrom": "s3://bad-input/nope.pem"}])
    _run_bad(previous, secret_values, env, 3, "'o'", "s3://bad-input/nope.pem", "NoSuchKey")


def test_json_key_missing_names_the_key_not_the_value(aws: Any, previous: Path, secret_values: SecretValues) -> None:
    arn = aws.secretsmanager.create_secret(
        Name="app/creds", SecretString=secret_values.add('{"username": "only-the-user-x"}'))["ARN"]
    env = _env_with(aws.endpoint, previous, [{"name": "pw", "valueFrom": f"{arn}:password::"}])
    _run_bad(previous, secret_values, env, 3, "'pw'", "has no key 'password'", "app/creds")


@pytest.mark.parametrize(("value", "entry", "fragment"), [
    ("not json at all -- plain-text-secret", {"valueFrom": "{arn}:key::"}, "json-key 'key' needs a JSON object"),
    ("not json at all -- plain-text-secret", {"valueFrom": "{arn}", "expand": True}, "expand needs a JSON object"),
    ('["a-list-value", "another-list-value"]', {"valueFrom": "{arn}", "expand": True}, "holds a JSON list"),
    ('{"key": "nested-string-value"}', {"valueFrom": "{arn}:key::", "expand": True}, "is not JSON"),
    ('{"../escape": "escape-value-1"}', {"valueFrom": "{arn}", "expand": True},
     "key #1 of the JSON secret cannot be a file name"),
    ('{"ok": "reserved-value-0", "..data": "reserved-value-1"}', {"valueFrom": "{arn}", "expand": True},
     "key #2 of the JSON secret cannot be a file name: it has a component beginning with '..'"),
], ids=["json-key-not-json", "expand-not-json", "expand-list", "key-then-expand-string", "expand-key-escapes",
        "expand-key-reserved"])
def test_json_secret_that_is_not_what_the_reference_needs(
    value: str, entry: dict[str, Any], fragment: str, *, aws: Any, previous: Path, secret_values: SecretValues
) -> None:
    arn = aws.secretsmanager.create_secret(Name="app/shape", SecretString=secret_values.add(value))["ARN"]
    resolved = {**entry, "name": "shaped", "valueFrom": entry["valueFrom"].format(arn=arn)}
    env = _env_with(aws.endpoint, previous, [resolved])
    _run_bad(previous, secret_values, env, 3, "'shaped'", fragment)


def test_oversize_values(aws: Any, previous: Path, secret_values: SecretValues) -> None:
    arn = aws.secretsmanager.create_secret(Name="app/big", SecretString=secret_values.add("x" * 33))["ARN"]
    env = _env_with(aws.endpoint, previous, [{"name": "big", "valueFrom": arn}], SIDECAR_MAX_BYTES="32")
    _run_bad(previous, secret_values, env, 3, "'big'", "larger than SIDECAR_MAX_BYTES (32 bytes)")

    aws.s3.create_bucket(Bucket="big-objects", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    aws.s3.put_object(Bucket="big-objects", Key="blob", Body=secret_values.add(b"B" * 5000))
    env = _env_with(aws.endpoint, previous, [{"name": "blob", "valueFrom": "s3://big-objects/blob"}],
                    SIDECAR_MAX_BYTES="4999")
    _run_bad(previous, secret_values, env, 3, "'blob'", "s3://big-objects/blob", "(4999 bytes)")


def test_nul_in_a_value_with_an_env_file(aws: Any, previous: Path, secret_values: SecretValues) -> None:
    arn = aws.secretsmanager.create_secret(Name="app/nul", SecretBinary=secret_values.add(b"before\x00after"))["ARN"]
    env = _env_with(aws.endpoint, previous, [{"name": "WITH_NUL", "valueFrom": arn}], SIDECAR_ENV_FILE="app.env")
    _run_bad(previous, secret_values, env, 3, "'WITH_NUL'", "NUL byte")


def test_output_directory_behind_an_unsearchable_parent_is_not_called_missing(
    aws: Any, open_outdir: Path, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/app/a", Value=secret_values.add("value-never-fetched"), Type="String")
    private = open_outdir / "private"
    target = private / "secrets"
    target.mkdir(parents=True)
    os.chown(target, NOBODY, NOBODY)
    private.chmod(0o700)  # root's: the sidecar's uid cannot reach what is inside
    env = sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(target),
                      SIDECAR_SECRETS=secrets_json({"name": "a", "valueFrom": "/app/a"}))

    result = run_as(env, uid=NOBODY, gid=NOBODY, guard=secret_values)

    failed = assert_failed(result, 4, str(target), "permission denied")
    assert "does not exist" not in failed["reason"]
    assert api_calls(result) == []


def test_output_path_that_is_a_file_is_not_called_missing(
    aws: Any, tmp_path: Path, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/app/a", Value=secret_values.add("value-never-fetched"), Type="String")
    file = tmp_path / "a-file"
    file.write_bytes(b"not a directory")
    env = sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(file),
                      SIDECAR_SECRETS=secrets_json({"name": "a", "valueFrom": "/app/a"}))

    result = run_sidecar(env, guard=secret_values)

    assert_failed(result, 4, str(file), "is not a directory")
    assert api_calls(result) == []
    assert file.read_bytes() == b"not a directory"


def test_check_reports_configuration_errors_with_exit_2(previous: Path, secret_values: SecretValues) -> None:
    env = _env_with("http://127.0.0.1:9", previous, [{"name": "../x", "valueFrom": "/app/a"}])
    before = full_state(previous)

    result = run_sidecar(env, "check", guard=secret_values)

    assert_failed(result, 2, "'../x'", "'..' component")
    assert "configuration is valid" not in result.stdout
    assert full_state(previous) == before


def test_read_only_volume(aws: Any, previous: Path, secret_values: SecretValues) -> None:
    aws.ssm.put_parameter(Name="/app/a", Value=secret_values.add("value-never-fetched"), Type="String")
    env = _env_with(aws.endpoint, previous, [{"name": "a", "valueFrom": "/app/a"}])
    before = sorted(os.listdir(previous))

    result, left = run_with_private_mount(
        env, 'mount --bind "$dir" "$dir" && mount -o remount,bind,ro "$dir"', previous, guard=secret_values)

    assert_failed(result, 4, str(previous), "not writable", "read-only volume")
    assert api_calls(result) == []
    assert sorted(left) == before


def test_full_volume(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    aws.ssm.put_parameter(Name="/app/small", Value=secret_values.add("small-value-1"), Type="String")
    arn = aws.secretsmanager.create_secret(Name="app/large", SecretString=secret_values.add("L" * 60000))["ARN"]
    env = _env_with(aws.endpoint, outdir, [{"name": "small", "valueFrom": "/app/small"},
                                           {"name": "zz_large", "valueFrom": arn}])

    result, left = run_with_private_mount(env, 'mount -t tmpfs -o size=32k,mode=0755 tmpfs "$dir"', outdir,
                                          guard=secret_values)

    assert_failed(result, 4, "the volume is full", "previous contents are untouched")
    assert left == []  # the half-written payload was removed
