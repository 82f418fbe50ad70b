"""The seed of ``secrets-sidecar compose --moto`` is enough for each shipped task definition's sidecar: the seed
script runs against the moto server, then the real sidecar process with the environment the generated project
gives it writes every file, holding what the seed plan says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sidecar.compose.translate import SEED_SERVICE, Options, translate
from sidecar.config import load_settings
from tests.conftest import REGION, SecretValues, run_sidecar, sidecar_env
from tests.ecs.examples import shipped_task_definitions
from tests.ecs.stand_in import sidecars
from tests.lint.tasks import set_env

SEED_SCRIPT = Path(__file__).resolve().parents[2] / "sidecar" / "compose" / "seed_moto.py"
RUN_ONCE_ONLY = ("SIDECAR_REFRESH_INTERVAL", "SIDECAR_NOTIFY_SIGNAL", "SIDECAR_NOTIFY_PROCESS")


def _unescaped(environment: dict[str, str]) -> dict[str, str]:
    return {key: value.replace("$$", "$") for key, value in environment.items()}


@pytest.mark.parametrize("name", list(shipped_task_definitions()))
def test_the_seed_lets_the_sidecar_write_every_file(
    name: str, moto: str, outdir: Path, secret_values: SecretValues
) -> None:
    task: dict[str, Any] = shipped_task_definitions()[name]
    translation = translate(task, Options(moto=True, region=REGION))
    assert translation.seed is not None and translation.seed.items
    for value in translation.seed.contents.values():
        secret_values.add(value)
    seed_env = _unescaped(translation.document["services"][SEED_SERVICE]["environment"])
    seeded = subprocess.run([sys.executable, str(SEED_SCRIPT)], env={**seed_env, "AWS_ENDPOINT_URL": moto},
                            capture_output=True, text=True, timeout=60, check=False)
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    assert len(seeded.stdout.splitlines()) == len(translation.seed.items)

    ((sidecar_name, _),) = sidecars(task)
    environment = _unescaped(translation.document["services"][sidecar_name]["environment"])
    settings = {k: v for k, v in environment.items() if k.startswith("SIDECAR_") and k not in RUN_ONCE_ONLY}
    result = run_sidecar(sidecar_env(moto, **settings, SIDECAR_OUTPUT_DIR=str(outdir)), guard=secret_values)
    assert result.code == 0, result.stdout[-2000:]
    entries = load_settings({}, {**environment, "AWS_REGION": REGION}).entries
    assert entries
    for entry in entries:
        assert (outdir / entry.name).read_text() == translation.seed.contents[entry.value_from], entry.name


def test_the_seed_creates_what_a_role_reads_in_the_roles_account(
    moto: str, outdir: Path, secret_values: SecretValues
) -> None:
    """A global role, an entry's own role, and the same parameter name in the task's account: each is seeded
    where the sidecar reads it (moto keeps what a role's credentials create in the role's account)."""
    reader, auditor = "arn:aws:iam::111111111111:role/reader", "arn:aws:iam::222222222222:role/auditor"
    task: dict[str, Any] = json.loads(json.dumps(shipped_task_definitions()["fargate.json"]))
    set_env(task, "secrets-sidecar", "SIDECAR_ROLE_ARN", reader)
    set_env(task, "secrets-sidecar", "SIDECAR_SECRETS", json.dumps([
        {"name": "by_auditor", "valueFrom": "/shared/api-key", "roleArn": auditor},
        {"name": "db", "valueFrom": "arn:aws:secretsmanager:eu-west-1:111111111111:secret:shared/db-AbCdEf"},
    ]))
    translation = translate(task, Options(moto=True, region=REGION))
    assert translation.seed is not None
    assert {i.role_arn for i in translation.seed.items} == {reader, auditor}
    for value in translation.seed.contents.values():
        secret_values.add(value)
    seed_env = _unescaped(translation.document["services"][SEED_SERVICE]["environment"])
    seeded = subprocess.run([sys.executable, str(SEED_SCRIPT)], env={**seed_env, "AWS_ENDPOINT_URL": moto},
                            capture_output=True, text=True, timeout=60, check=False)
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    ((sidecar_name, _),) = sidecars(task)
    environment = _unescaped(translation.document["services"][sidecar_name]["environment"])
    settings = {k: v for k, v in environment.items() if k.startswith("SIDECAR_") and k not in RUN_ONCE_ONLY}
    result = run_sidecar(sidecar_env(moto, **settings, SIDECAR_OUTPUT_DIR=str(outdir)), guard=secret_values)
    assert result.code == 0, result.stdout[-2000:]
    entries = load_settings({}, {**environment, "AWS_REGION": REGION}).entries
    assert {e.name for e in entries} == {"by_auditor", "db"}
    for entry in entries:
        assert (outdir / entry.name).read_text() == translation.seed.contents[entry.value_from], entry.name
