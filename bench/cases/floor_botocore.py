"""The floor: botocore alone, the fewest calls the APIs allow (BatchGetSecretValue by 20, GetParameters by 10),
one after another, each value written to a file. No validation, no retries, no atomic commit.

    python floor_botocore.py SPEC.json OUTPUT_DIR
SPEC.json: [{"name": "file name", "service": "secretsmanager" | "ssm", "id": "secret ARN or parameter name"}]
"""

import json
import os
import sys

from botocore.session import get_session

spec_path, out = sys.argv[1], sys.argv[2]
with open(spec_path) as f:
    spec = json.load(f)
session = get_session()
names = {(e["service"], e["id"]): e["name"] for e in spec}
values = {}

secrets = [e["id"] for e in spec if e["service"] == "secretsmanager"]
if secrets:
    sm = session.create_client("secretsmanager")
    for start in range(0, len(secrets), 20):
        response = sm.batch_get_secret_value(SecretIdList=secrets[start : start + 20])
        for item in response["SecretValues"]:
            values[("secretsmanager", item["ARN"])] = item["SecretString"]

parameters = [e["id"] for e in spec if e["service"] == "ssm"]
if parameters:
    ssm = session.create_client("ssm")
    for start in range(0, len(parameters), 10):
        response = ssm.get_parameters(Names=parameters[start : start + 10], WithDecryption=True)
        for item in response["Parameters"]:
            values[("ssm", item["Name"])] = item["Value"]

for key, name in names.items():
    fd = os.open(os.path.join(out, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "w") as f:
        f.write(values[key])
