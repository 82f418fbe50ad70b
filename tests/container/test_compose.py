"""compose.yaml end to end: the app starts only after the sidecar succeeded, and never when it failed.

Runs with Compose v1 (``docker-compose``) where it is installed, else with v2 (``docker compose``). Each test
uses its own project name and removes its containers, network and volume. Exit codes are read with
``docker inspect``: with v1, ``--exit-code-from``/``--abort-on-container-exit`` would stop the run at the
first container that exits, which is the seeding job.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import SecretValues, run_captured
from tests.container.conftest import REPO, REQUIRE_ENV, TAG, docker, run_in_app

pytestmark = [pytest.mark.container, pytest.mark.slow]

# What docker/moto/seed.py stores, and so what the sidecar must write.
SEEDED = {
    "db_password": b"local-demo-pa55word",
    "api_key": b"local-demo-api-key",
    "tls/cert.pem": b"-----BEGIN CERTIFICATE-----\nlocal-demo\n-----END CERTIFICATE-----\n",
}
NEVER_STARTED = "0001-01-01T00:00:00Z"


def _instant(stamp: str) -> tuple[str, int]:
    """Docker's RFC 3339 time with up to 9 fraction digits (trailing zeros dropped), comparable."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return whole, int(fraction.ljust(9, "0"))


def _compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0:
        return ["docker", "compose"]
    message = "neither docker-compose (v1) nor the docker compose plugin (v2) is installed"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(message)
    pytest.skip(message)


class Project:
    def __init__(self, name: str) -> None:
        self.name = name
        self.command = [*_compose_command(), "-p", name]

    def compose(self, *args: str, files: tuple[str, ...] = ("compose.yaml",)) -> subprocess.CompletedProcess[str]:
        flags = [item for file in files for item in ("-f", file)]
        # Through run_captured: an attached `up` prints the sidecar's log, which the secrecy guard must read.
        command = [*self.command, *flags, *args]
        completed = run_captured(command, {**os.environ, "IMAGE_TAG": TAG}, cwd=REPO, timeout=300)
        return subprocess.CompletedProcess(command, completed.returncode, completed.stdout.decode(),
                                           completed.stderr.decode())

    def container(self, service: str) -> dict[str, Any] | None:
        ids = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={self.name}",
                     "--filter", f"label=com.docker.compose.service={service}").stdout.split()
        if not ids:
            return None
        assert len(ids) == 1, f"{service}: {ids}"
        info: dict[str, Any] = json.loads(docker("inspect", ids[0]).stdout)[0]
        return info

    def logs(self, service: str) -> str:
        info = self.container(service)
        assert info is not None, f"no {service} container"
        completed = run_captured(["docker", "logs", info["Id"]])
        return (completed.stdout + completed.stderr).decode()

    def volume(self) -> str:
        names = docker("volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={self.name}").stdout
        (name,) = names.split()
        return name


@pytest.fixture
def project(images: tuple[str, str]) -> Iterator[Project]:
    project = Project(f"ssctest{secrets.token_hex(4)}")
    try:
        yield project
    finally:
        project.compose("logs", "--no-color", files=("compose.yaml", "compose.fail.yaml"))  # for the guard
        project.compose("down", "-v", "--remove-orphans", "-t", "2",
                        files=("compose.yaml", "compose.fail.yaml"))


def test_app_starts_after_the_sidecar_succeeded_and_reads_its_files(
    project: Project, secret_values: SecretValues
) -> None:
    for value in SEEDED.values():
        secret_values.add(value)
    up = project.compose("up", "-d")
    assert up.returncode == 0, up.stderr

    app = project.container("app")
    assert app is not None
    assert docker("wait", app["Id"]).stdout.strip() == "0", project.logs("app")
    for service in ("seed", "sidecar"):
        info = project.container(service)
        assert info is not None and info["State"]["ExitCode"] == 0, project.logs(service)
    sidecar = project.container("sidecar")
    assert sidecar is not None
    assert sidecar["Config"]["User"] == "10001:3000" and sidecar["HostConfig"]["ReadonlyRootfs"] is True
    assert _instant(sidecar["State"]["FinishedAt"]) < _instant(app["State"]["StartedAt"])

    lines = [line for line in project.logs("app").splitlines() if line.startswith("app: read")]
    assert lines == [f"app: read {name} ({len(value)} bytes) as uid 2000 gid 3000" for name, value in SEEDED.items()]
    events = [json.loads(line) for line in project.logs("sidecar").splitlines() if line.startswith("{")]
    assert [(e["name"], e["mode"], e["owner"]) for e in events if e["event"] == "file"] == [
        (name, "0440", "10001:3000") for name in SEEDED
    ]
    for name, value in SEEDED.items():
        read = run_in_app(project.volume(), "2000:3000", "cat", f"/run/secrets/{name}")
        assert read.code == 0 and read.stdout.encode() == value


def test_app_never_starts_when_the_sidecar_failed(project: Project) -> None:
    up = project.compose("up", "-d", files=("compose.yaml", "compose.fail.yaml"))
    assert up.returncode != 0

    sidecar = project.container("sidecar")
    assert sidecar is not None and sidecar["State"]["ExitCode"] == 3
    failed = [json.loads(line) for line in project.logs("sidecar").splitlines() if '"failed"' in line]
    assert failed and failed[-1]["exit_code"] == 3 and "demo/does-not-exist" in failed[-1]["reason"]
    app = project.container("app")
    assert app is None or (app["State"]["StartedAt"] == NEVER_STARTED and app["State"]["Status"] == "created")
    listing = run_in_app(project.volume(), "0:0", "ls", "-A", "/run/secrets")
    assert listing.code == 0 and listing.stdout == ""
