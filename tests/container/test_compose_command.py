"""``secrets-sidecar compose`` end to end: the generated project runs under docker-compose v1 with compose's own
ordering, and the app reads its files; with a reference left out of the seed, the app never starts.

The app's image is replaced with the stand-in through ``--image``, and its command through a compose override
file (the ordinary compose way), with the checker of test_task_definitions. Exit codes are read with
``docker inspect``: with v1, ``--abort-on-container-exit`` would stop at the seeding job's normal exit.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REGION, Completed, SecretValues, run_captured
from tests.container.conftest import APP_IMAGE, MOTO_IMAGE, REPO, SIDECAR_IMAGE, docker
from tests.ecs.harness import NEVER_STARTED, compose_command
from tests.ecs.stand_in import FAST_HEALTH_INTERVAL, checker_command, expected_files, readers, sidecars

pytestmark = [pytest.mark.container, pytest.mark.slow]

SIDECAR_IN_EXAMPLES = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ecs-secrets-sidecar:0.1.0"
APP_IN_EXAMPLES = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-app:1.0.0"


def _text(completed: Completed) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], completed.returncode, completed.stdout.decode(), completed.stderr.decode())


class Generated:
    def __init__(self, directory: Path) -> None:
        self.name = f"ssccompose{secrets.token_hex(4)}"
        self.directory = directory

    def generate(self, example: str, *extra: str) -> subprocess.CompletedProcess[str]:
        from tests.conftest import SIDECAR

        return _text(run_captured(
            [SIDECAR, "compose", str(REPO / "task-definitions" / example), "-o", str(self.directory), "--moto",
             "--image", f"{SIDECAR_IN_EXAMPLES}={SIDECAR_IMAGE}", "--image", f"{APP_IN_EXAMPLES}={APP_IMAGE}",
             "--image", f"motoserver/moto:5.2.5={MOTO_IMAGE}", *extra],
            timeout=60,
        ))

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        files = ["-f", str(self.directory / "compose.yaml"), "-f", str(self.directory / "override.yaml")]
        # Through run_captured: an attached `up` prints the sidecar's log, which the secrecy guard must read.
        return _text(run_captured([*compose_command(), "-p", self.name, *files, *args], timeout=300))

    def container(self, service: str) -> dict[str, Any]:
        (found,) = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={self.name}",
                          "--filter", f"label=com.docker.compose.service={service}").stdout.split()
        info: dict[str, Any] = json.loads(docker("inspect", found).stdout)[0]
        return info

    def logs(self, service: str) -> str:
        completed = run_captured(["docker", "logs", self.container(service)["Id"]])
        return (completed.stdout + completed.stderr).decode()


@pytest.fixture
def generated(images: tuple[str, str], tmp_path: Path) -> Iterator[Generated]:
    project = Generated(tmp_path)
    try:
        yield project
    finally:
        if (tmp_path / "compose.yaml").exists():
            project.compose("down", "-v", "-t", "2")


def _sidecar_name(example: str) -> str:
    ((name, _),) = sidecars(json.loads((REPO / "task-definitions" / example).read_text()))
    return name


def _override(project: Generated, example: str, secret_values: SecretValues) -> None:
    """The app's command becomes the checker; health checks run every FAST_HEALTH_INTERVAL seconds."""
    from sidecar.compose.seed import seed_plan

    task = json.loads((REPO / "task-definitions" / example).read_text())
    contents = seed_plan(task, REGION).contents
    for value in contents.values():
        secret_values.add(value)
    expected = expected_files(task, contents)
    services: dict[str, Any] = {
        name: {"entrypoint": [word.replace("$", "$$") for word in checker_command(path, expected)]}
        for name, path in readers(task).items()
    }
    for container in task["containerDefinitions"]:
        if "healthCheck" in container:
            services.setdefault(container["name"], {})["healthcheck"] = {"interval": f"{FAST_HEALTH_INTERVAL}s"}
    (project.directory / "override.yaml").write_text(json.dumps({"services": services}))


@pytest.mark.parametrize("example", ["fargate.json", "fargate-refresh.json"])
def test_generated_project_runs_under_compose_and_the_app_reads_its_files(
    generated: Generated, example: str, secret_values: SecretValues
) -> None:
    made = generated.generate(example)
    assert made.returncode == 0, made.stderr
    _override(generated, example, secret_values)
    up = generated.compose("up", "-d")
    assert up.returncode == 0, up.stderr[-3000:]
    app = generated.container("app")
    assert docker("wait", app["Id"]).stdout.strip() == "0", generated.logs("app")
    reads = [line for line in generated.logs("app").splitlines() if line.startswith("app: read")]
    assert reads and all("(" in line and "as seeded" in line and "NOT" not in line for line in reads), reads
    sidecar = generated.container(_sidecar_name(example))
    app = generated.container("app")
    if example == "fargate.json":
        assert sidecar["State"]["ExitCode"] == 0 and sidecar["State"]["FinishedAt"] < app["State"]["StartedAt"]
    else:
        assert sidecar["State"]["Running"] and sidecar["State"]["Health"]["Status"] == "healthy"
    assert sidecar["Config"]["User"] == "10001:1000" and sidecar["HostConfig"]["ReadonlyRootfs"] is True


def test_a_reference_left_out_of_the_seed_fails_the_sidecar_and_the_app_never_starts(
    generated: Generated, secret_values: SecretValues
) -> None:
    made = generated.generate("fargate.json", "--no-seed", "/prod/app/api-key")
    assert made.returncode == 0, made.stderr
    _override(generated, "fargate.json", secret_values)
    up = generated.compose("up", "-d")
    assert up.returncode != 0
    sidecar = generated.container(_sidecar_name("fargate.json"))
    assert sidecar["State"]["ExitCode"] == 3
    assert "/prod/app/api-key" in generated.logs(_sidecar_name("fargate.json"))
    app = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={generated.name}",
                 "--filter", "label=com.docker.compose.service=app").stdout.split()
    assert not app or generated.container("app")["State"]["StartedAt"] == NEVER_STARTED
