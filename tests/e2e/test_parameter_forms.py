"""``valueFrom`` forms ECS accepts for Parameter Store, sent as written and mapped back whatever the answer's
shape: a parameter ARN (another account's parameter can only be read by its ARN), Parameter Store's reference
to a Secrets Manager secret, and AWS's public parameters."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import ACCOUNT, REGION, SecretValues, run_sidecar, sidecar_env
from tests.e2e.faultproxy import FaultProxy, rewrite
from tests.e2e.helpers import api_calls, assert_failed, assert_ok, parameter_arn, secrets_json

GET_PARAMETERS = "AmazonSSM.GetParameters"
REFERENCE = "/aws/reference/secretsmanager/"
OTHER_ACCOUNT = "210987654321"


def _env(proxy: FaultProxy, outdir: Path, *entries: dict[str, Any], **settings: str) -> dict[str, str]:
    return sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries), **settings)


def _recording(requests: list[dict[str, Any]],
               change: Callable[[dict[str, Any], dict[str, Any]], None] = lambda _q, _a: None,
               ) -> Callable[[bytes, bytes], bytes]:
    """A rewrite that records every GetParameters request body and lets ``change`` reshape the answer."""

    def transform(request: bytes, response: bytes) -> bytes:
        asked, answer = json.loads(request), json.loads(response)
        requests.append(asked)
        change(asked, answer)
        return json.dumps(answer).encode()

    return transform


def test_an_arn_is_sent_as_the_arn_and_its_answer_mapped_back(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    aws.ssm.put_parameter(Name="/shared/db", Value=secret_values.add("shared-db-v1"), Type="SecureString")
    aws.ssm.put_parameter(Name="/shared/db", Value=secret_values.add("shared-db-v2"), Type="SecureString",
                          Overwrite=True)
    requests: list[dict[str, Any]] = []

    def arn_as_name(asked: dict[str, Any], answer: dict[str, Any]) -> None:
        # AWS may name an answer by the ARN it was asked for; moto names it by the bare name.
        for parameter in answer["Parameters"]:
            if parameter["Version"] == 1:
                parameter["Name"] = parameter["ARN"]

    proxy.add(rewrite(GET_PARAMETERS, _recording(requests, arn_as_name)))
    entries = [{"name": "by_arn", "valueFrom": parameter_arn("/shared/db")},
               {"name": "by_arn_v1", "valueFrom": parameter_arn("/shared/db") + ":1"},
               {"name": "by_name", "valueFrom": "/shared/db"}]

    result = run_sidecar(_env(proxy, outdir, *entries), guard=secret_values)

    assert_ok(result)
    assert (outdir / "by_arn").read_bytes() == b"shared-db-v2"
    assert (outdir / "by_arn_v1").read_bytes() == b"shared-db-v1"
    assert (outdir / "by_name").read_bytes() == b"shared-db-v2"
    sent = sorted(name for request in requests for name in request["Names"])
    assert sent == sorted([f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/shared/db",
                           f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/shared/db:1", "/shared/db"])
    # One parameter name per call: the three forms of /shared/db never share one.
    assert [c["ids"] for c in api_calls(result)] == [1, 1, 1]


def test_another_accounts_parameter_is_asked_for_by_its_arn_not_by_our_own_name(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    """Our account holds /team/key too: sending the bare name would read it, silently, instead of the
    shared one. Sent as the ARN, moto (which holds only our account) reports it missing."""
    aws.ssm.put_parameter(Name="/team/key", Value=secret_values.add("our-own-team-key"), Type="SecureString")
    requests: list[dict[str, Any]] = []
    proxy.add(rewrite(GET_PARAMETERS, _recording(requests)))
    shared = parameter_arn("/team/key", account=OTHER_ACCOUNT)

    result = run_sidecar(_env(proxy, outdir, {"name": "key", "valueFrom": shared}), guard=secret_values)

    assert_failed(result, 3, f"'key': parameter {shared} was not found (ParameterNotFound)")
    assert [r["Names"] for r in requests] == [[shared]]
    assert list(outdir.iterdir()) == []


def _as_aws_answers_a_reference(secret_arn: str, version_id: str) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    """Reshape moto's answer to a Secrets Manager reference into the one the SSM user guide documents
    ("Referencing AWS Secrets Manager secrets from Parameter Store parameters"): ``Name`` is the reference as
    asked, without its selector, which comes back in ``Selector``; ``ARN`` is the secret's; ``SourceResult``
    is the GetSecretValue answer. moto names it by the secret's name and sends DescribeSecret's answer."""

    def change(asked: dict[str, Any], answer: dict[str, Any]) -> None:
        (requested,) = asked["Names"]
        (parameter,) = answer["Parameters"]
        name, _, selector = requested.partition(":")
        parameter.pop("Version", None)  # a reference has no Parameter Store version
        parameter.update(Name=name, ARN=secret_arn, SourceResult=json.dumps({
            "ARN": secret_arn, "Name": name[len(REFERENCE):], "VersionId": version_id,
            "SecretString": parameter["Value"], "VersionStages": ["AWSCURRENT"]}))
        if selector:
            parameter["Selector"] = f":{selector}"

    return change


def test_a_reference_to_secrets_manager_is_read_with_decryption(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    created = aws.secretsmanager.create_secret(Name="app/db+main", SecretString=secret_values.add("ref-pa55word"))
    requests: list[dict[str, Any]] = []
    proxy.add(rewrite(GET_PARAMETERS, _recording(requests, _as_aws_answers_a_reference(
        created["ARN"], created["VersionId"]))))
    entries = [{"name": "db", "valueFrom": f"{REFERENCE}app/db+main"},
               {"name": "db_current", "valueFrom": f"{REFERENCE}app/db+main:AWSCURRENT"}]

    result = run_sidecar(_env(proxy, outdir, *entries), guard=secret_values)

    assert_ok(result)
    assert (outdir / "db").read_bytes() == b"ref-pa55word"
    assert (outdir / "db_current").read_bytes() == b"ref-pa55word"
    assert sorted((r["Names"], r["WithDecryption"]) for r in requests) == [
        ([f"{REFERENCE}app/db+main"], True), ([f"{REFERENCE}app/db+main:AWSCURRENT"], True)]
    manifest = json.loads((outdir / "..manifest.json").read_bytes())
    versions = {e["name"]: e["source"]["versionId"] for e in manifest["entries"]}
    assert versions == {"db": created["VersionId"], "db_current": created["VersionId"]}


def test_a_reference_answered_under_another_name_is_not_taken_for_it(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    """moto 5.2.5 answers a reference under the secret's own name (AWS: under the reference). An answer that
    names no request is never guessed onto one: the run fails, naming the reference."""
    aws.secretsmanager.create_secret(Name="app/other", SecretString=secret_values.add("moto-shaped-answer"))

    result = run_sidecar(_env(proxy, outdir, {"name": "db", "valueFrom": f"{REFERENCE}app/other"}),
                         guard=secret_values)

    assert_failed(result, 3, f"'db': GetParameters did not answer for parameter {REFERENCE}app/other in {REGION}")
    assert list(outdir.iterdir()) == []


def test_a_public_parameter_is_read_like_any_other(aws: Any, outdir: Path, proxy: FaultProxy,
                                                   secret_values: SecretValues) -> None:
    name = f"/aws/service/global-infrastructure/regions/{REGION}/longName"
    requests: list[dict[str, Any]] = []
    proxy.add(rewrite(GET_PARAMETERS, _recording(requests)))

    result = run_sidecar(_env(proxy, outdir, {"name": "region_name", "valueFrom": name}), guard=secret_values)

    assert_ok(result)
    assert (outdir / "region_name").read_bytes() == b"Europe (Ireland)"  # moto's copy of AWS's public data
    assert requests == [{"Names": [name], "WithDecryption": True}]


def test_a_missing_secret_behind_a_reference_fails_only_its_own_entry(
    aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues
) -> None:
    """moto fails a whole GetParameters call for a reference to a missing secret: each reference is asked
    for alone, so the other parameter is still fetched and the optional entry is skipped."""
    aws.ssm.put_parameter(Name="/app/plain", Value=secret_values.add("plain-beside-ref"), Type="SecureString")
    entries = [{"name": "plain", "valueFrom": "/app/plain"},
               {"name": "gone", "valueFrom": f"{REFERENCE}app/missing", "optional": True}]

    result = run_sidecar(_env(proxy, outdir, *entries), guard=secret_values)

    assert_ok(result)
    assert (outdir / "plain").read_bytes() == b"plain-beside-ref"
    assert not (outdir / "gone").exists()
    assert sorted((c["ids"], c["outcome"]) for c in api_calls(result)) == [(1, "ParameterNotFound"), (1, "ok")]
    assert result.event("optional_skipped")["name"] == "gone"
