from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.errors import ConfigError
from sidecar.references import ObjectTarget, ParameterTarget, SecretTarget, parse_value_from

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"
VERSION = "9d4cb84b-ad69-40c0-a0ab-cead3EXAMPLE"


@pytest.mark.parametrize(
    ("suffix", "json_key", "stage", "version_id"),
    [
        ("", None, None, None),
        (":password::", "password", None, None),
        ("::AWSPREVIOUS:", None, "AWSPREVIOUS", None),
        (f":::{VERSION}", None, None, VERSION),
        (":username:AWSPREVIOUS:", "username", "AWSPREVIOUS", None),
        (f":username::{VERSION}", "username", None, VERSION),
        ("::AWSCURRENT:", None, None, None),  # the default stage, so it shares a fetch with the plain ARN
        (":::", None, None, None),
    ],
)
def test_secrets_manager_arn_forms(
    suffix: str, json_key: str | None, stage: str | None, version_id: str | None
) -> None:
    ref = parse_value_from(ARN + suffix, None)
    assert ref.target == SecretTarget("eu-west-1", ARN, stage, version_id)
    assert ref.json_key == json_key


def test_partial_arn_and_other_partitions() -> None:
    partial = "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:prod/db"
    assert parse_value_from(partial, None).target == SecretTarget("cn-north-1", partial)


@pytest.mark.parametrize(
    ("value_from", "message"),
    [
        (f"{ARN}:password:", "exactly three"),
        (f"{ARN}:password", "exactly three"),
        (f"{ARN}:a:b:c:d", "exactly three"),
        (f"{ARN}::AWSPREVIOUS:{VERSION}", "mutually exclusive"),
        (f"{ARN}:::short", "not a version id"),
        ("arn:aws:secretsmanager:eu-west-1:1234:secret:x", "12 digits"),
        ("arn:aws:secretsmanager:EU:123456789012:secret:x", "not a region"),
        ("arn:aws:secretsmanager:eu-west-1:123456789012:key:x", "expected arn:"),
        ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:bad name", "not a secret name"),
        ("arn:aws:kms:eu-west-1:123456789012:key/abc", "service 'kms'"),
        ("arn:aws:s3:::bucket/key", "s3://bucket/key"),
        ("arn:nope", "not a well-formed ARN"),
        (" /prod/x", "whitespace"),
        ("/prod/x\n", "whitespace"),
        ("prod/db", "must begin with '/'"),
        ("/prod//x", "not a valid SSM parameter name"),
        ("/prod/x:", "selector"),
        ("/prod/x:1:2", "selector"),
        ("/aws/reserved", "no parameter name can begin with 'aws' or 'ssm'"),
        ("ssm-thing", "no parameter name can begin with 'aws' or 'ssm'"),
        ("/aws/reference/secretsmanager/bad name", "not a secret name"),
        ("/aws/reference/secretsmanager/db:a:b", "not a secret version id or stage"),
        ("s3://Bad_Bucket/key", "bucket name"),
        ("s3://bucket", "no object key"),
        ("s3://bucket/key?versionId=", "versionId is empty"),
        ("", "non-empty"),
        ("/a\x00b", "NUL"),
    ],
)
def test_malformed_references_are_configuration_errors(value_from: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        parse_value_from(value_from, "eu-west-1")
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("value_from", "name"),
    [
        ("/prod/api/key", "/prod/api/key"),
        ("api_key", "api_key"),
        ("/prod/api/key:3", "/prod/api/key:3"),
        ("/prod/api/key:live", "/prod/api/key:live"),
        # AWS's own names: read like any parameter (only creating such names is forbidden).
        ("/aws/reference/secretsmanager/prod/db+x=y@z", "/aws/reference/secretsmanager/prod/db+x=y@z"),
        ("/aws/reference/secretsmanager/db:AWSPREVIOUS", "/aws/reference/secretsmanager/db:AWSPREVIOUS"),
        ("/aws/service/global-infrastructure/regions/us-east-1/longName",
         "/aws/service/global-infrastructure/regions/us-east-1/longName"),
    ],
)
def test_parameter_names_are_requested_as_named(value_from: str, name: str) -> None:
    target = parse_value_from(value_from, "eu-west-1").target
    assert target == ParameterTarget("eu-west-1", name)
    assert target.request_name == value_from


@pytest.mark.parametrize(
    ("value_from", "name", "account"),
    [
        ("arn:aws:ssm:us-east-2:123456789012:parameter/prod/flags", "/prod/flags", "123456789012"),
        ("arn:aws:ssm:us-east-2:210987654321:parameter/flags", "flags", "210987654321"),
        ("arn:aws:ssm:us-east-2:123456789012:parameter/prod/flags:2", "/prod/flags:2", "123456789012"),
        ("arn:aws:ssm:us-east-2:123456789012:parameter/aws/reference/secretsmanager/db",
         "/aws/reference/secretsmanager/db", "123456789012"),
    ],
)
def test_parameter_arns_are_requested_as_arns(value_from: str, name: str, account: str) -> None:
    """A parameter shared from another account can only be read by its ARN: the ARN is what is sent."""
    target = parse_value_from(value_from, "eu-west-1").target
    assert target == ParameterTarget("us-east-2", name, account)
    assert isinstance(target, ParameterTarget)
    assert target.request_name == value_from
    assert target.base_name == name.partition(":")[0]
    assert target.describe() == f"parameter {value_from}"


def test_only_references_to_secrets_manager_need_decryption() -> None:
    reference = parse_value_from("/aws/reference/secretsmanager/db", "eu-west-1").target
    public = parse_value_from("/aws/service/ecs/optimized-ami/amazon-linux-2/recommended", "eu-west-1").target
    assert isinstance(reference, ParameterTarget) and reference.is_secret_reference
    assert isinstance(public, ParameterTarget) and not public.is_secret_reference


def test_bare_parameter_name_needs_a_region() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_value_from("/prod/x", None)
    assert "AWS_REGION" in caught.value.message


def test_s3_forms() -> None:
    assert parse_value_from("s3://my-bucket/certs/cert.pem", "eu-west-1").target == ObjectTarget(
        "eu-west-1", "my-bucket", "certs/cert.pem"
    )
    assert parse_value_from("s3://my-bucket/a?b?versionId=v1", "eu-west-1").target == ObjectTarget(
        "eu-west-1", "my-bucket", "a?b", "v1"
    )


@given(st.text(max_size=300))
def test_any_string_parses_or_is_a_configuration_error(value_from: str) -> None:
    try:
        ref = parse_value_from(value_from, "eu-west-1")
    except ConfigError as exc:
        assert exc.message
    else:
        assert ref.target.region


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://my-bucket.s3.amazonaws.com/tls/cert.pem", "write it as s3://my-bucket/tls/cert.pem"),
        ("https://my.bucket.s3-eu-west-1.amazonaws.com/a%20b", "write it as s3://my.bucket/a b"),
        ("https://s3.eu-west-1.amazonaws.com/my-bucket/tls/cert.pem", "write it as s3://my-bucket/tls/cert.pem"),
        ("https://b.s3.dualstack.us-east-1.amazonaws.com/k?versionId=v1", "write it as s3://b/k?versionId=v1"),
        ("https://b.s3.cn-north-1.amazonaws.com.cn/k", "write it as s3://b/k"),
        ("https://s3.amazonaws.com/only-a-bucket", "write S3 objects as s3://bucket/key"),
        ("https://vault.example.com/v1/secret", "is a URL; expected a secretsmanager or ssm ARN"),
    ],
)
def test_a_url_is_answered_with_the_form_to_write(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_value_from(url + ("&" if "?" in url else "?") + "X-Amz-Signature=abc123", "eu-west-1")
    assert message in caught.value.message
    assert "X-Amz-Signature" not in caught.value.message
