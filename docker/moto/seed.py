"""Seed the local moto server with the secrets that compose.yaml's sidecar asks for.

Run by the ``seed`` service (``python /opt/seed.py``); talks to ``AWS_ENDPOINT_URL``. Prints names, never values.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

import boto3

REGION = os.environ.get("AWS_REGION", "eu-west-1")
ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
READY_TIMEOUT_SECONDS = 30.0


def wait_for_moto() -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        try:
            with urllib.request.urlopen(f"{ENDPOINT}/moto-api/", timeout=2):  # noqa: S310 - local fake
                return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                sys.exit(f"seed: no moto server at {ENDPOINT} after {READY_TIMEOUT_SECONDS:g}s")
            time.sleep(0.3)


def reset_moto() -> None:
    """Start from empty state, so running the seed again (a second ``up``) gives the same result."""
    request = urllib.request.Request(f"{ENDPOINT}/moto-api/reset", method="POST")  # noqa: S310 - local fake
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - local fake
        pass


def main() -> None:
    wait_for_moto()
    reset_moto()
    session = boto3.Session(region_name=REGION)
    sm = session.client("secretsmanager")
    ssm = session.client("ssm")
    s3 = session.client("s3")
    kms = session.client("kms")

    sm.create_secret(
        Name="demo/db", SecretString=json.dumps({"username": "app", "password": "local-demo-pa55word"})
    )
    ssm.put_parameter(Name="/demo/api/key", Value="local-demo-api-key", Type="SecureString")
    key_id = kms.create_key(Description="demo")["KeyMetadata"]["KeyId"]
    s3.create_bucket(Bucket="demo-config", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(
        Bucket="demo-config",
        Key="tls/cert.pem",
        Body=b"-----BEGIN CERTIFICATE-----\nlocal-demo\n-----END CERTIFICATE-----\n",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=key_id,
    )
    print("seed: created secret demo/db, parameter /demo/api/key, object s3://demo-config/tls/cert.pem (SSE-KMS)")


if __name__ == "__main__":
    main()
