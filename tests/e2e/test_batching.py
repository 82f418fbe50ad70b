"""The fewest calls the APIs allow: batches within their limits, every value under its own name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import SecretValues, run_sidecar, sidecar_env
from tests.e2e.helpers import api_calls, assert_failed, assert_ok, secrets_json


def _env(aws: Any, outdir: Path, entries: list[dict[str, Any]], **settings: str) -> dict[str, str]:
    return sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries),
                       **settings)


def _seed_secrets(aws: Any, secret_values: SecretValues, count: int, prefix: str = "batch") -> list[tuple[str, str]]:
    """``count`` secrets, each with a distinct value; returns (ARN, value) pairs."""
    seeded = []
    for index in range(count):
        value = secret_values.add(f"{prefix}-value-{index:02d}-\u00df")
        seeded.append((aws.secretsmanager.create_secret(Name=f"{prefix}/s{index:02d}", SecretString=value)["ARN"],
                       value))
    return seeded


def test_sm_batch_always_uses_batches_of_20_and_pinned_refs_go_single(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    seeded = _seed_secrets(aws, secret_values, 21)
    entries = [{"name": f"s{i:02d}", "valueFrom": arn} for i, (arn, _) in enumerate(seeded)]
    # A partial ARN in a batch is matched back by identity, too.
    entries[3]["valueFrom"] = seeded[3][0][: -len("-AbCdEf")]
    aws.secretsmanager.put_secret_value(SecretId=seeded[0][0], SecretString=secret_values.add("batch-newer-00"))
    entries.append({"name": "pinned", "valueFrom": f"{seeded[0][0]}::AWSPREVIOUS:"})

    result = run_sidecar(_env(aws, outdir, entries, SIDECAR_SM_BATCH="always"), guard=secret_values)

    assert_ok(result)
    assert sorted(c["ids"] for c in api_calls(result, "BatchGetSecretValue")) == [1, 20]
    assert [c["ids"] for c in api_calls(result, "GetSecretValue")] == [1]
    assert (outdir / "s00").read_bytes() == b"batch-newer-00"
    assert (outdir / "pinned").read_bytes() == seeded[0][1].encode()
    for index, (_, value) in enumerate(seeded[1:], start=1):
        assert (outdir / f"s{index:02d}").read_bytes() == value.encode(), index
    assert result.final["api_calls"] == 3


def test_sm_batch_never_uses_one_get_secret_value_each(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    seeded = _seed_secrets(aws, secret_values, 3)
    entries = [{"name": f"s{i}", "valueFrom": arn} for i, (arn, _) in enumerate(seeded)]

    result = run_sidecar(_env(aws, outdir, entries, SIDECAR_SM_BATCH="never", SIDECAR_CONCURRENCY="1"),
                         guard=secret_values)

    assert_ok(result)
    assert api_calls(result, "BatchGetSecretValue") == []
    assert [c["ids"] for c in api_calls(result, "GetSecretValue")] == [1, 1, 1]
    for index, (_, value) in enumerate(seeded):
        assert (outdir / f"s{index}").read_bytes() == value.encode()


def test_sm_batch_auto_batches_only_beyond_one_round_of_the_pool(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    seeded = _seed_secrets(aws, secret_values, 3)
    entries = [{"name": f"s{i}", "valueFrom": arn} for i, (arn, _) in enumerate(seeded)]

    within = run_sidecar(_env(aws, outdir, entries, SIDECAR_CONCURRENCY="3"), guard=secret_values)
    beyond = run_sidecar(_env(aws, outdir, entries, SIDECAR_CONCURRENCY="2"), guard=secret_values)

    assert_ok(within)
    assert [c["operation"] for c in api_calls(within)] == ["GetSecretValue"] * 3
    assert_ok(beyond)
    assert [(c["operation"], c["ids"]) for c in api_calls(beyond)] == [("BatchGetSecretValue", 3)]
    for index, (_, value) in enumerate(seeded):
        assert (outdir / f"s{index}").read_bytes() == value.encode()


def test_more_than_ten_parameters_are_split_into_batches_of_ten(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    names = [f"/fleet/p{index:02d}" for index in range(23)]
    for index, name in enumerate(names):
        # Values in reverse order of names: a result mapped by position would land under the wrong name.
        aws.ssm.put_parameter(Name=name, Value=secret_values.add(f"param-value-{22 - index:02d}"), Type="SecureString")
    entries = [{"name": f"p{index:02d}", "valueFrom": name} for index, name in reversed(list(enumerate(names)))]

    result = run_sidecar(_env(aws, outdir, entries), guard=secret_values)

    assert_ok(result)
    calls = api_calls(result)
    assert {c["operation"] for c in calls} == {"GetParameters"}
    assert sorted(c["ids"] for c in calls) == [3, 10, 10]
    for index in range(23):
        assert (outdir / f"p{index:02d}").read_bytes() == f"param-value-{22 - index:02d}".encode()


def test_batch_errors_map_to_their_entries(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    (present, value), = _seed_secrets(aws, secret_values, 1)
    missing = present.replace("batch/s00", "batch/never-created")[: -len("-AbCdEf")] + "-ZyXwVu"
    entries = [{"name": "present", "valueFrom": present},
               {"name": "maybe", "valueFrom": missing, "optional": True}]

    optional = run_sidecar(_env(aws, outdir, entries, SIDECAR_SM_BATCH="always"), guard=secret_values)

    assert_ok(optional)
    assert [(c["operation"], c["ids"]) for c in api_calls(optional)] == [("BatchGetSecretValue", 2)]
    assert (outdir / "present").read_bytes() == value.encode()
    (skipped,) = [e for e in optional.events if e["event"] == "optional_skipped"]
    assert skipped["name"] == "maybe" and "ResourceNotFoundException" in skipped["reason"]

    entries[1]["optional"] = False
    required = run_sidecar(_env(aws, outdir, entries, SIDECAR_SM_BATCH="always"), guard=secret_values)

    failed = assert_failed(required, 3, "'maybe'", "batch/never-created", "was not found (ResourceNotFoundException)")
    assert "present" not in failed["reason"]
