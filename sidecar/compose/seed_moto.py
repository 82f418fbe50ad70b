"""Seed a moto server with the placeholder values of a generated compose project (``secrets-sidecar compose``).

Not imported by the sidecar: ``secrets-sidecar compose`` embeds this file's text in the seed service, which runs
it with the moto image's Python and boto3. Reads the plan from SEED_PLAN, talks to AWS_ENDPOINT_URL, resets the
server first (so a second ``up`` gives the same state), and prints what it created by name, never a value.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

READY_TIMEOUT_SECONDS = 60.0


def main() -> int:
    import boto3

    endpoint = os.environ["AWS_ENDPOINT_URL"]
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):  # noqa: S310 - the local fake
                break
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                print(f"seed: no moto server at {endpoint} after {READY_TIMEOUT_SECONDS:g}s", file=sys.stderr)
                return 1
            time.sleep(0.3)
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310 - the local fake
    with urllib.request.urlopen(reset, timeout=10):  # noqa: S310 - the local fake
        pass
    buckets: set[tuple[str, str, str]] = set()
    for item in json.loads(os.environ["SEED_PLAN"]):
        session = boto3.Session(region_name=item["region"])
        role = item.get("roleArn", "")
        if role:  # moto keeps what a role's credentials create in the role's account, where the sidecar reads
            credentials = session.client("sts").assume_role(RoleArn=role, RoleSessionName="seed")["Credentials"]
            session = boto3.Session(region_name=item["region"], aws_access_key_id=credentials["AccessKeyId"],
                                    aws_secret_access_key=credentials["SecretAccessKey"],
                                    aws_session_token=credentials["SessionToken"])
        if item["service"] == "secretsmanager":
            client = session.client("secretsmanager")
            client.create_secret(Name=item["name"], SecretString=item["value"])
            for stage in item.get("stages", []):
                client.put_secret_value(SecretId=item["name"], SecretString=item["value"], VersionStages=[stage])
            print(f"seed: secret {item['name']} in {item['region']}{' as ' + role if role else ''}")
        elif item["service"] == "ssm":
            session.client("ssm").put_parameter(Name=item["name"], Value=item["value"], Type="SecureString")
            print(f"seed: parameter {item['name']} in {item['region']}{' as ' + role if role else ''}")
        elif item["service"] == "s3":
            s3 = session.client("s3")
            if (item["region"], item["name"], role) not in buckets:
                location = {} if item["region"] == "us-east-1" else {
                    "CreateBucketConfiguration": {"LocationConstraint": item["region"]}}
                s3.create_bucket(Bucket=item["name"], **location)
                buckets.add((item["region"], item["name"], role))
            s3.put_object(Bucket=item["name"], Key=item["key"], Body=item["value"].encode())
            print(f"seed: object s3://{item['name']}/{item['key']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
