"""The unchanged Dockerfile built for linux/arm64 (Graviton) and run under emulation against moto.

Opt-in (``SIDECAR_ARM64_TESTS=1``, which ``make test-arm64`` sets after ``scripts/arm64-base`` has registered
qemu and made the arm64 base image): every arm64 instruction runs under qemu, so the build takes many minutes
(docs/container-image.md has the measured times). Without it the tests skip with that reason.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from sidecar import __version__
from tests.conftest import SecretValues
from tests.container.conftest import REPO, docker, image_build_args, run_sidecar_container
from tests.container.test_run import read_all, seed_one_of_each, settings_for_each

pytestmark = [pytest.mark.container, pytest.mark.slow]

ENABLE_ENV = "SIDECAR_ARM64_TESTS"
# Docker Hub's per-architecture repository of the official image; scripts/arm64-base makes a local stand-in.
ARM64_BASE = "arm64v8/python:3.13-slim"
ARM64_IMAGE = "ecs-secrets-sidecar:arm64"
ARM64_BUILD_TIMEOUT_SECONDS = 3600
EMULATED_TIMEOUT_SECONDS = 600


def architecture(image: str) -> str:
    found = docker("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", image, check=False)
    return found.stdout.strip() if found.returncode == 0 else ""


@pytest.fixture(scope="module")
def arm64_image(engine: None) -> str:
    if os.environ.get(ENABLE_ENV) != "1":
        pytest.skip(f"the arm64 build runs under emulation and takes many minutes: make test-arm64 ({ENABLE_ENV}=1)")
    assert architecture(ARM64_BASE) == "linux/arm64", f"no arm64 base {ARM64_BASE}: run scripts/arm64-base first"
    build = subprocess.run(
        ["docker", "build", "-q", "--platform", "linux/arm64", "--build-arg", f"PYTHON_IMAGE={ARM64_BASE}",
         *image_build_args(), "-t", ARM64_IMAGE, str(REPO)],
        capture_output=True, text=True, timeout=ARM64_BUILD_TIMEOUT_SECONDS, check=False,
    )
    assert build.returncode == 0, f"arm64 build exited {build.returncode}:\n{build.stderr[-3000:]}"
    return ARM64_IMAGE


def test_the_image_is_arm64_labelled_and_runs_arm64_code(arm64_image: str) -> None:
    assert architecture(arm64_image) == "linux/arm64"
    labels = json.loads(docker("image", "inspect", arm64_image).stdout)[0]["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    machine = docker("run", "--rm", "--read-only", "--network", "none", "--entrypoint", "python", arm64_image,
                     "-c", "import platform; print(platform.machine())").stdout.strip()
    assert machine == "aarch64"
    version = docker("run", "--rm", "--read-only", "--network", "none", arm64_image, "--version").stdout
    assert version.split() == ["secrets-sidecar", __version__]


def test_arm64_sidecar_writes_every_kind_of_secret_from_moto(
    arm64_image: str, container_aws: Any, network: str, volume: str, secret_values: SecretValues
) -> None:
    """The same read-only, non-root run as tests/container/test_run.py, with the arm64 image: Secrets Manager
    (BatchGetSecretValue), SSM, and S3 with an SSE-KMS object, from the moto container."""
    expected = seed_one_of_each(container_aws, secret_values)
    # Under qemu the interpreter's start-up alone takes most of a minute, so the default 60 s deadline (which
    # counts from process start) would measure the emulator; on Graviton start-up takes well under a second.
    settings = settings_for_each(SIDECAR_SM_BATCH="always", SIDECAR_TIMEOUT=str(EMULATED_TIMEOUT_SECONDS))
    result = run_sidecar_container(network, volume, settings, image=arm64_image)
    assert result.code == 0, result.stdout + result.stderr
    operations = sorted((e["service"], e["operation"], e["outcome"]) for e in result.named("api_call"))
    assert operations == [("s3", "GetObject", "ok"), ("secretsmanager", "BatchGetSecretValue", "ok"),
                          ("ssm", "GetParameters", "ok")]
    assert read_all(volume, sorted(expected)) == expected
