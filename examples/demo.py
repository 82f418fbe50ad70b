"""Run the real sidecar end to end against an embedded moto server seeded with example secrets.

    make demo        (or: python examples/demo.py, with the `demo` extra installed: pip install -e '.[demo]')

No AWS account is used: the moto server listens on 127.0.0.1, the credentials are dummies. Two runs:
one that succeeds, and one whose configuration names a secret that does not exist, logged as JSON the
way CloudWatch shows it. The output directory is kept, and its path printed, so the files can be read.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

REGION = "eu-west-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def seed(endpoint: str) -> dict[str, str]:
    """Create one secret of each kind; return the references the sidecar is configured with."""
    session = boto3.Session(region_name=REGION, **{k.lower(): v for k, v in DUMMY_CREDENTIALS.items()})
    sm = session.client("secretsmanager", endpoint_url=endpoint)
    ssm = session.client("ssm", endpoint_url=endpoint)
    s3 = session.client("s3", endpoint_url=endpoint)
    kms = session.client("kms", endpoint_url=endpoint)

    db = sm.create_secret(
        Name="demo/db", SecretString=json.dumps({"username": "app", "password": "demo-pa55word", "port": 5432})
    )
    signing = sm.create_secret(Name="demo/signing-key", SecretBinary=bytes(range(16)))
    ssm.put_parameter(Name="/demo/api/key", Value="demo-api-key-123", Type="SecureString")
    key_id = kms.create_key(Description="demo")["KeyMetadata"]["KeyId"]
    s3.create_bucket(Bucket="demo-config", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(
        Bucket="demo-config",
        Key="tls/cert.pem",
        Body=b"-----BEGIN CERTIFICATE-----\ndemo\n-----END CERTIFICATE-----\n",
        ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id,
    )
    return {
        "db_password": f"{db['ARN']}:password::",
        "db": db["ARN"],
        "signing.key": signing["ARN"],
        "api_key": "/demo/api/key",
        "tls/cert.pem": "s3://demo-config/tls/cert.pem",
    }


MISSING_SECRET = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:demo/missing-AbCdEf"
DEPLOY_GUIDE = "docs/deploy-on-ecs.md"


def configuration(references: dict[str, str]) -> list[dict[str, object]]:
    """One entry of each kind: plain values, a JSON key, binary, SSM, S3, an expanded JSON secret, a template."""
    secrets: list[dict[str, object]] = [
        {"name": name, "valueFrom": ref} for name, ref in references.items() if name != "db"
    ]
    secrets.append({"name": "db", "valueFrom": references["db"], "expand": True})
    secrets.append({
        "name": "db.url",
        "template": "postgresql://{{ db.username | url }}:{{ db.password | url }}@db.internal:{{ db.port }}/app",
        "inputs": {"db": references["db"]},
    })
    return secrets


def run_sidecar(endpoint: str, out: Path, secrets: list[dict[str, object]], log_format: str) -> int:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIDECAR_"))},
        **DUMMY_CREDENTIALS,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "SIDECAR_OUTPUT_DIR": str(out),
        "SIDECAR_SECRETS": json.dumps(secrets),
        "SIDECAR_FILE_MODE": "0440",
        "SIDECAR_LOG_FORMAT": log_format,
    }
    sidecar = shutil.which("secrets-sidecar", path=os.path.dirname(sys.executable)) or "secrets-sidecar"
    return subprocess.run([sidecar], env=env, check=False).returncode


def list_files(out: Path) -> list[str]:
    lines = []
    for path in sorted((out / "..data").rglob("*")):
        info = path.lstat()
        size = "" if path.is_dir() else f"{info.st_size:6d} bytes"
        lines.append(f"  {stat.filemode(info.st_mode)} {info.st_uid}:{info.st_gid} {size:>12}  "
                     f"{path.relative_to(out / '..data')}")
    return lines


def contents(out: Path) -> dict[str, bytes]:
    """Every file of the committed set with its bytes: what the app would read."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "..data").rglob("*")) if p.is_file()}


def heading(text: str) -> None:
    print(f"\n=== {text}\n", flush=True)


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log would drown the sidecar's
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    out = Path(tempfile.mkdtemp(prefix="secrets-demo-"))
    try:
        secrets = configuration(seed(endpoint))

        heading("1. a run that succeeds (console log format; on ECS the default is JSON)")
        print(f"$ secrets-sidecar   # SIDECAR_SECRETS={json.dumps(secrets)[:100]}...\n", flush=True)
        code = run_sidecar(endpoint, out, secrets, os.environ.get("SIDECAR_LOG_FORMAT", "console"))
        print(f"\nexit code {code}; files in {out}:")
        print("\n".join(list_files(out)))
        if code != 0:
            return code
        print("\nas the app reads them (demo values):")
        for name in ("db_password", "db/port", "db.url", "tls/cert.pem"):
            print(f"  {name}: {(out / name).read_bytes()!r}")
        before = (list_files(out), contents(out))

        heading("2. a run that fails: one entry names a secret that does not exist")
        print("This is the sidecar's log as the awslogs driver puts it in CloudWatch Logs, one JSON object per")
        print("line; the last line, event `failed`, says which entry, which reference and why.\n", flush=True)
        failing: list[dict[str, object]] = [*secrets, {"name": "payments_token", "valueFrom": MISSING_SECRET}]
        failed_code = run_sidecar(endpoint, out, failing, "json")
        unchanged = (list_files(out), contents(out)) == before
        print(f"\nexit code {failed_code} (3: a secret could not be fetched; docs/exit-codes.md). On ECS the app")
        print("container, which depends on the sidecar with condition SUCCESS, does not start.")
        print(f"The files of run 1 are {'untouched' if unchanged else 'CHANGED (a bug: please report it)'}.")

        heading("next")
        print(f"  - deploy it on ECS (Fargate, from zero): {DEPLOY_GUIDE}")
        print("  - every setting and valueFrom form: docs/configuration.md")
        print("  - check a task definition: secrets-sidecar lint-task-definition task-definition.json")
        print(f"  - the demo's files are kept in {out}; remove them with: rm -rf {out}")
        return 0 if failed_code == 3 and unchanged else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
