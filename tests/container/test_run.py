"""The image at work: read-only root, non-root user, a fresh named volume, moto on a Docker network."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

from tests.conftest import ACCOUNT, REGION, SecretValues
from tests.container.conftest import (
    SIDECAR_IMAGE,
    SIDECAR_UID,
    docker,
    fake_aws_env,
    run_in_app,
    run_sidecar_container,
    volume_tree,
)

pytestmark = [pytest.mark.container, pytest.mark.slow]


def seed_one_of_each(aws: Any, guard: SecretValues) -> dict[str, bytes]:
    """A JSON secret, a binary secret, an SSM SecureString and an SSE-KMS S3 object; returns the expected
    bytes of each file the settings from ``settings_for_each`` produce."""
    password = str(guard.add("container-pa55word-7f3a"))
    aws.secretsmanager.create_secret(
        Name="app/db", SecretString=json.dumps({"username": "app_user", "password": password})
    )
    binary = bytes(range(256)) + b"\x00tail"
    guard.add(binary)
    aws.secretsmanager.create_secret(Name="app/signing", SecretBinary=binary)
    api_key = str(guard.add("ssm-api-key-91c2"))
    aws.ssm.put_parameter(Name="/app/api/key", Value=api_key, Type="SecureString")
    key_id = aws.kms.create_key(Description="objects")["KeyMetadata"]["KeyId"]
    aws.s3.create_bucket(Bucket="app-config", CreateBucketConfiguration={"LocationConstraint": REGION})
    cert = b"-----BEGIN CERTIFICATE-----\nc0ntainer\n-----END CERTIFICATE-----\n"
    guard.add(cert)
    aws.s3.put_object(Bucket="app-config", Key="tls/cert.pem", Body=cert,
                      ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    head = aws.s3.head_object(Bucket="app-config", Key="tls/cert.pem")
    assert head["ServerSideEncryption"] == "aws:kms"
    return {"db_password": password.encode(), "signing.key": binary, "api_key": api_key.encode(),
            "tls/cert.pem": cert}


def settings_for_each(**extra: str) -> dict[str, str]:
    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret"
    return {
        "SIDECAR_SECRETS": json.dumps([
            {"name": "db_password", "valueFrom": f"{secret}:app/db:password::"},
            {"name": "signing.key", "valueFrom": f"{secret}:app/signing"},
            {"name": "api_key", "valueFrom": "/app/api/key"},
            {"name": "tls/cert.pem", "valueFrom": "s3://app-config/tls/cert.pem"},
        ]),
        **extra,
    }


def read_all(volume: str, names: list[str], user: str = "0:0") -> dict[str, bytes]:
    """The bytes of each named file, read through its link in a second container."""
    script = ("import json,sys; print(json.dumps({n: open('/run/secrets/' + n, 'rb').read().hex() "
              "for n in sys.argv[1:]}))")
    result = run_in_app(volume, user, "python", "-c", script, *names)
    assert result.code == 0, result.stderr
    return {name: bytes.fromhex(value) for name, value in json.loads(result.stdout).items()}


def test_read_only_non_root_run_writes_every_kind_of_secret(
    container_aws: Any, network: str, volume: str, secret_values: SecretValues
) -> None:
    expected = seed_one_of_each(container_aws, secret_values)
    # SIDECAR_SM_BATCH=always: the two secrets come from one BatchGetSecretValue call.
    result = run_sidecar_container(network, volume, settings_for_each(SIDECAR_SM_BATCH="always"))
    assert result.code == 0, result.stdout + result.stderr

    operations = sorted((e["service"], e["operation"], e["outcome"]) for e in result.named("api_call"))
    assert operations == [("s3", "GetObject", "ok"), ("secretsmanager", "BatchGetSecretValue", "ok"),
                          ("ssm", "GetParameters", "ok")]
    assert result.named("done")[0]["files"] == 4

    assert read_all(volume, list(expected)) == expected
    tree = volume_tree(volume)
    payloads = [path for path, entry in tree.items() if path.startswith("..2") and "/" not in path]
    assert len(payloads) == 1
    payload = payloads[0]
    assert tree["."][:4] == ("d", "755", SIDECAR_UID, SIDECAR_UID)  # copied from the image into the volume
    assert tree["..data"] == ("l", "777", SIDECAR_UID, SIDECAR_UID, payload)
    for name in ("db_password", "signing.key", "api_key", "..manifest.json"):
        assert tree[name][4] == f"..data/{name}"
        assert tree[f"{payload}/{name}"][:4] == ("f", "400", SIDECAR_UID, SIDECAR_UID)
    assert tree["tls"][4] == "..data/tls"
    assert tree[f"{payload}/tls"][:4] == ("d", "755", SIDECAR_UID, SIDECAR_UID)
    assert tree[f"{payload}/tls/cert.pem"][:4] == ("f", "400", SIDECAR_UID, SIDECAR_UID)


def test_single_calls_work_too(
    container_aws: Any, network: str, volume: str, secret_values: SecretValues
) -> None:
    expected = seed_one_of_each(container_aws, secret_values)
    result = run_sidecar_container(network, volume, settings_for_each(SIDECAR_SM_BATCH="never"))
    assert result.code == 0, result.stdout + result.stderr
    operations = sorted(e["operation"] for e in result.named("api_call"))
    assert operations == ["GetObject", "GetParameters", "GetSecretValue", "GetSecretValue"]
    assert read_all(volume, list(expected)) == expected


def test_kms_and_sts_clients_work_in_the_trimmed_image(
    container_aws: Any, network: str
) -> None:
    """kms and sts models are kept for the credential chain and SSE-KMS: real calls through them work."""
    key_id = container_aws.kms.create_key(Description="probe")["KeyMetadata"]["KeyId"]
    script = textwrap.dedent("""
        import json
        from botocore.session import get_session
        session = get_session()
        kms = session.create_client("kms", region_name="eu-west-1")
        sts = session.create_client("sts", region_name="eu-west-1")
        print(json.dumps({"keys": [k["KeyId"] for k in kms.list_keys()["Keys"]],
                          "account": sts.get_caller_identity()["Account"]}))
    """)
    env = [item for key, value in fake_aws_env().items() for item in ("-e", f"{key}={value}")]
    completed = docker("run", "--rm", "--read-only", "--network", network, *env, "--entrypoint", "python",
                       SIDECAR_IMAGE, "-c", script)
    assert json.loads(completed.stdout) == {"keys": [key_id], "account": ACCOUNT}


def test_missing_secret_exits_3_and_writes_nothing(
    container_aws: Any, network: str, volume: str
) -> None:
    result = run_sidecar_container(
        network, volume, {"SIDECAR_SECRET_db": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:absent"}
    )
    assert result.code == 3
    failed = result.named("failed")[0]
    assert failed["exit_code"] == 3 and "not found" in failed["reason"]
    assert set(volume_tree(volume)) == {"."}


def test_root_owned_mount_without_the_image_directory_exits_4(
    container_aws: Any, network: str, volume: str, secret_values: SecretValues
) -> None:
    """Why the image declares /run/secrets: mounted anywhere else, a fresh volume is root's and 0755,
    and the non-root sidecar says so before any API call."""
    seed_one_of_each(container_aws, secret_values)
    result = run_sidecar_container(network, volume, settings_for_each(SIDECAR_OUTPUT_DIR="/secrets"),
                                   mount="/secrets")
    assert result.code == 4
    reason = result.named("failed")[0]["reason"]
    assert "not writable by uid 10001" in reason and "owner uid 0" in reason
    assert result.named("api_call") == []


def test_non_root_sidecar_cannot_give_files_to_another_uid(
    container_aws: Any, network: str, volume: str, secret_values: SecretValues
) -> None:
    seed_one_of_each(container_aws, secret_values)
    result = run_sidecar_container(network, volume, settings_for_each(SIDECAR_UID="2000", SIDECAR_GID="2000"))
    assert result.code == 4
    assert "only root may change a file's owner" in result.named("failed")[0]["reason"]
    assert result.named("api_call") == []
    assert set(volume_tree(volume)) == {"."}
