"""Fixtures for the end-to-end tests: output directories (empty, or holding a previous run's set) and the
fault-injecting proxy in front of the moto server."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.conftest import DUMMY_CREDENTIALS, REGION, SecretValues, run_sidecar, sidecar_env
from tests.e2e.faultproxy import FaultProxy

# The values of the previous run's set that "loses nothing" tests start from: registered with the secrecy guard
# for the whole session, like every seeded value.
PREVIOUS_VALUES = ("previous-db-user", "previous-db-pa55", "previous-api-k3y")


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


@pytest.fixture
def open_outdir() -> Iterator[Path]:
    """An output directory every user can reach (pytest's own temporary directories are private to root),
    for runs as another uid."""
    parent = Path(tempfile.mkdtemp(prefix="sidecar-e2e-"))
    try:
        parent.chmod(0o755)
        directory = parent / "out"
        directory.mkdir()
        directory.chmod(0o755)
        yield directory
    finally:
        shutil.rmtree(parent)


@pytest.fixture(scope="session")
def _previous_template(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a set committed by a real run: expanded JSON secret, plain parameter, manifest."""
    for value in PREVIOUS_VALUES:
        SecretValues().add(value)
    session = boto3.Session(region_name=REGION, aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    sm = session.client("secretsmanager", endpoint_url=moto_endpoint)
    ssm = session.client("ssm", endpoint_url=moto_endpoint)
    arn = sm.create_secret(Name="template/previous-db",
                           SecretString=json.dumps({"user": "previous-db-user", "password": "previous-db-pa55"}))["ARN"]
    ssm.put_parameter(Name="/template/previous-api", Value="previous-api-k3y", Type="SecureString")
    template = tmp_path_factory.mktemp("previous") / "out"
    template.mkdir()
    result = run_sidecar(sidecar_env(
        moto_endpoint,
        SIDECAR_OUTPUT_DIR=str(template),
        SIDECAR_SECRETS=json.dumps([{"name": "db", "valueFrom": arn, "expand": True},
                                    {"name": "api_key", "valueFrom": "/template/previous-api"}]),
    ))
    assert result.code == 0, result.stdout + result.stderr
    for value in PREVIOUS_VALUES:
        assert value not in result.stdout + result.stderr
    assert (template / "api_key").read_bytes() == b"previous-api-k3y"
    return template


@pytest.fixture
def previous(_previous_template: Path, tmp_path: Path, moto: str) -> Path:
    """An output directory holding the set of an earlier successful run (links, payload, manifest)."""
    directory = tmp_path / "out"
    shutil.copytree(_previous_template, directory, symlinks=True)
    return directory


@pytest.fixture
def proxy(moto: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto) as running:
        yield running
