"""The naive Python entrypoint: boto3, one call per secret, one after another, each value written to a file.

    python naive_boto3.py SPEC.json OUTPUT_DIR
SPEC.json: [{"name": "file name", "service": "secretsmanager" | "ssm", "id": "secret ARN or parameter name"}]
"""

import json
import os
import sys

import boto3

spec_path, out = sys.argv[1], sys.argv[2]
with open(spec_path) as f:
    spec = json.load(f)

clients = {}
for entry in spec:
    service = entry["service"]
    if service not in clients:
        clients[service] = boto3.client(service)
    if service == "secretsmanager":
        value = clients[service].get_secret_value(SecretId=entry["id"])["SecretString"]
    else:
        value = clients[service].get_parameter(Name=entry["id"], WithDecryption=True)["Parameter"]["Value"]
    fd = os.open(os.path.join(out, entry["name"]), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "w") as f:
        f.write(value)
