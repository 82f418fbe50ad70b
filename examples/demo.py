"""Run the real sidecar end to end against an embedded moto server seeded with example secrets.

    make demo        (or: python examples/demo.py, with the test extras installed)

No AWS account is used: the moto server listens on 127.0.0.1, the credentials are dummies.
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


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log would drown the sidecar's
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    out = Path(tempfile.mkdtemp(prefix="secrets-demo-"))
    try:
        references = seed(endpoint)
        secrets = [{"name": name, "valueFrom": ref} for name, ref in references.items() if name != "db"]
        secrets.append({"name": "db", "valueFrom": references["db"], "expand": True})
        secrets.append({
            "name": "db.url",
            "template": "postgresql://{{ db.username | url }}:{{ db.password | url }}@db.internal:{{ db.port }}/app",
            "inputs": {"db": references["db"]},
        })
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIDECAR_"))},
            **DUMMY_CREDENTIALS,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
            "SIDECAR_OUTPUT_DIR": str(out),
            "SIDECAR_SECRETS": json.dumps(secrets),
            "SIDECAR_FILE_MODE": "0440",
            "SIDECAR_LOG_FORMAT": os.environ.get("SIDECAR_LOG_FORMAT", "console"),
        }
        sidecar = shutil.which("secrets-sidecar", path=os.path.dirname(sys.executable)) or "secrets-sidecar"
        print(f"$ secrets-sidecar   # SIDECAR_SECRETS={json.dumps(secrets, indent=None)[:120]}...\n", flush=True)
        code = subprocess.run([sidecar], env=env, check=False).returncode
        print(f"\nexit code {code}; files in {out}:")
        for path in sorted((out / "..data").rglob("*")):
            info = path.lstat()
            size = "" if path.is_dir() else f"{info.st_size:6d} bytes"
            print(f"  {stat.filemode(info.st_mode)} {info.st_uid}:{info.st_gid} {size:>12}  "
                  f"{path.relative_to(out / '..data')}")
        if code == 0:
            print("\nas the app reads them (demo values):")
            for name in ("db_password", "db/port", "db.url", "tls/cert.pem"):
                print(f"  {name}: {(out / name).read_bytes()!r}")
        return code
    finally:
        shutil.rmtree(out, ignore_errors=True)
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
