"""Every shipped task definition, and the README's snippet, run as ECS would run them (tests/ecs/harness.py).

The sidecar image of a task definition runs as the image these tests build; every other image as the local
stand-in python:3.13-slim, whose command is replaced by a checker: it reads each file the sidecar is configured
to write and compares it with the value seeded into moto (by SHA-256), printing names and sizes only. Both
replacements are explicit arguments of the harness.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import pytest

from sidecar.lint.task import is_sidecar
from tests.conftest import REGION, SecretValues, record_process_output
from tests.container.conftest import APP_IMAGE, MOTO_IMAGE, SIDECAR_IMAGE
from tests.ecs.examples import shipped_task_definitions
from tests.ecs.harness import TaskRun, run_task
from tests.ecs.ordering import NEVER_STARTED_EXIT_CODE
from tests.ecs.stand_in import FAST_HEALTH_INTERVAL, checker_command, expected_files, readers, sidecars

pytestmark = [pytest.mark.container, pytest.mark.slow]

CASES = [pytest.param(name, id=name) for name in shipped_task_definitions()]

def run_with_checker(
    task: Mapping[str, Any], secret_values: SecretValues, **options: Any
) -> tuple[TaskRun, dict[str, str]]:
    """Run ``task`` with the sidecar image built here, stand-in apps that check their files, and moto."""
    from sidecar.compose.seed import seed_plan

    images = {c["image"]: SIDECAR_IMAGE if is_sidecar(c) else APP_IMAGE for c in task["containerDefinitions"]}
    images["motoserver/moto:5.2.5"] = MOTO_IMAGE
    contents = seed_plan(task, REGION).contents
    for value in contents.values():
        secret_values.add(value)
    expected = expected_files(task, contents)
    commands = {
        name: checker_command(path, expected) for name, path in readers(task).items()
    }
    run = run_task(task, images=images, commands=commands, health_interval=FAST_HEALTH_INTERVAL, region=REGION,
                   **options)
    for container in run.containers.values():
        record_process_output(container.output.encode())
    return run, expected


def _instant(stamp: str) -> tuple[str, int]:
    """Docker's RFC 3339 UTC time with up to 9 fraction digits (trailing zeros dropped), comparable."""
    whole, _, fraction = stamp.rstrip("Z").split("+")[0].partition(".")
    return whole, int(fraction.ljust(9, "0"))


def _finished(run: TaskRun, name: str) -> tuple[str, int]:
    return _instant(run[name].info["State"]["FinishedAt"])


@pytest.mark.parametrize("name", CASES)
def test_shipped_task_definition_runs_and_the_app_reads_every_file(
    name: str, images: tuple[str, str], secret_values: SecretValues
) -> None:
    task = shipped_task_definitions()[name]
    run, expected = run_with_checker(task, secret_values)
    assert not run.refused, run.refused
    ((sidecar_name, sidecar),) = sidecars(task)
    sidecar_run = run[sidecar_name]
    for app, _ in readers(task).items():
        app_run = run[app]
        assert app_run.started, (run.stop_reason, app_run.never_reason, sidecar_run.output[-2000:])
        lines = [line for line in app_run.output.splitlines() if line.startswith("app: read")]
        assert [line.split(" (")[0] for line in lines] == [f"app: read {name}" for name in expected], app_run.output
        assert all("as seeded" in line and "NOT" not in line for line in lines), app_run.output
        assert app_run.exit_code == 0, app_run.output
        assert [m["RW"] for m in app_run.info["Mounts"]] == [False], app_run.info["Mounts"]  # readOnly: true
        conditions = {d["containerName"]: d["condition"] for d in
                      next(c for c in task["containerDefinitions"] if c["name"] == app).get("dependsOn", [])}
        assert conditions.get(sidecar_name) in ("SUCCESS", "HEALTHY"), conditions
        assert sidecar_run.started_at is not None and app_run.started_at is not None
        if conditions[sidecar_name] == "SUCCESS":  # the app started only after the sidecar exited 0
            assert sidecar_run.exit_code == 0
            assert _finished(run, sidecar_name) < _instant(app_run.info["State"]["StartedAt"])
        else:  # HEALTHY: the sidecar was still running, healthy, when the app started
            app_start = _instant(app_run.info["State"]["StartedAt"])
            checks = sidecar_run.info["State"]["Health"]["Log"]
            assert any(c["ExitCode"] == 0 and _instant(c["End"]) < app_start for c in checks), checks
            assert _finished(run, sidecar_name) > app_start
    assert run.stop_reason.startswith("essential container"), run.stop_reason
    assert sidecar["user"] == sidecar_run.info["Config"]["User"]
    assert sidecar_run.info["HostConfig"]["ReadonlyRootfs"] is bool(sidecar.get("readonlyRootFilesystem"))


def _pair(volume: dict[str, Any], *, sidecar_extra: Mapping[str, Any] = {}) -> dict[str, Any]:
    """A run-once sidecar writing one SSM parameter into ``volume``, and an app that needs it."""
    return {
        "family": "pair",
        "volumes": [volume],
        "containerDefinitions": [
            {"name": "sidecar", "image": "example/ecs-secrets-sidecar:1", "essential": False, "user": "10001:1000",
             "readonlyRootFilesystem": True,
             "environment": [{"name": "SIDECAR_SECRET_api_key", "value": "/prod/api-key"},
                             {"name": "SIDECAR_SECRET_db", "value": "/prod/db"},
                             {"name": "SIDECAR_FILE_MODE", "value": "0440"},
                             {"name": "SIDECAR_TIMEOUT", "value": "20"}],
             "mountPoints": [{"sourceVolume": "secrets", "containerPath": "/run/secrets"}], **sidecar_extra},
            {"name": "app", "image": "example/app:1", "essential": True, "user": "1000:1000",
             "readonlyRootFilesystem": True,
             "dependsOn": [{"containerName": "sidecar", "condition": "SUCCESS"}],
             "mountPoints": [{"sourceVolume": "secrets", "containerPath": "/run/secrets", "readOnly": True}]},
        ],
    }


TMPFS_VOLUME = {"name": "secrets", "dockerVolumeConfiguration": {
    "scope": "task", "driver": "local",
    "driverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=10001,gid=1000,mode=0750"}}}


def test_a_run_once_sidecar_writing_to_a_tmpfs_docker_volume_leaves_the_app_an_empty_directory(
    images: tuple[str, str], secret_values: SecretValues
) -> None:
    run, _ = run_with_checker(_pair(copy.deepcopy(TMPFS_VOLUME)), secret_values)
    assert run["sidecar"].exit_code == 0  # it wrote both files, then exited: Docker unmounted the tmpfs
    assert '"event": "done"' in run["sidecar"].output or '"event":"done"' in run["sidecar"].output
    assert run["app"].started
    assert "app: /run/secrets holds 0 entries" in run["app"].output
    assert "app: cannot read api_key: FileNotFoundError" in run["app"].output
    assert run["app"].exit_code == 1
    assert run.stop_reason == "essential container app exited with code 1"


def test_the_same_pair_on_a_task_volume_reads_its_files(images: tuple[str, str], secret_values: SecretValues) -> None:
    run, _ = run_with_checker(_pair({"name": "secrets"}), secret_values)
    assert "app: /run/secrets holds" in run["app"].output and "holds 0 entries" not in run["app"].output
    assert run["app"].exit_code == 0, run["app"].output


def test_a_failing_sidecar_never_starts_the_app_and_the_task_stops(
    images: tuple[str, str], secret_values: SecretValues
) -> None:
    run, _ = run_with_checker(_pair({"name": "secrets"}), secret_values, unseeded={"/prod/db"})
    assert run["sidecar"].exit_code == 3
    failed = [json.loads(line) for line in run["sidecar"].output.splitlines() if '"failed"' in line]
    assert failed and "/prod/db" in failed[-1]["reason"]
    assert not run["app"].started
    assert run["app"].exit_code == NEVER_STARTED_EXIT_CODE
    assert run["app"].never_reason == "dependency sidecar did not exit successfully (exit code 3)"
    assert run.stop_reason == "essential container app never started"


def _slow_dependency(timeout_on: str) -> dict[str, Any]:
    """``slow`` runs 6 s before exiting 0; ``app`` waits for its SUCCESS; a 2 s startTimeout on ``timeout_on``."""
    task: dict[str, Any] = {"family": "slow", "containerDefinitions": [
        {"name": "slow", "image": "example/slow:1", "essential": False,
         "command": ["python", "-c", "import time; time.sleep(6)"]},
        {"name": "app", "image": "example/app:1", "essential": True,
         "command": ["python", "-c", "print('app: started')"],
         "dependsOn": [{"containerName": "slow", "condition": "SUCCESS"}]},
    ]}
    next(c for c in task["containerDefinitions"] if c["name"] == timeout_on)["startTimeout"] = 2
    return task


STAND_INS = {"example/slow:1": APP_IMAGE, "example/app:1": APP_IMAGE, "motoserver/moto:5.2.5": MOTO_IMAGE}


def test_a_dependency_exceeding_its_own_start_timeout_stops_the_task(images: tuple[str, str]) -> None:
    run = run_task(_slow_dependency("slow"), images=STAND_INS)
    assert not run["app"].started
    assert run["app"].never_reason is not None and "slow has timed out" in run["app"].never_reason
    assert run.stop_reason == "essential container app never started"
    assert run["slow"].started_at is not None and run.stopped_at is not None
    assert 2 <= run.stopped_at - run["slow"].started_at < 4  # at its startTimeout, not when it exited


def test_a_start_timeout_on_the_waiting_container_bounds_nothing(images: tuple[str, str]) -> None:
    run = run_task(_slow_dependency("app"), images=STAND_INS)
    assert run["slow"].exit_code == 0
    assert run["app"].started and "app: started" in run["app"].output
    assert run["app"].started_at is not None and run["app"].started_at >= 6


def test_complete_and_start_conditions_on_docker(images: tuple[str, str]) -> None:
    """``first`` fails; ``second`` waits for it to COMPLETE (any exit code) and starts; ``app`` waits for
    ``second`` to START; the task runs until ``app``, the essential container, exits."""
    def container(name: str, code: str, *depends: tuple[str, str], essential: bool = False) -> dict[str, Any]:
        return {"name": name, "image": "example/app:1", "essential": essential,
                "command": ["python", "-c", code],
                "dependsOn": [{"containerName": n, "condition": c} for n, c in depends]}

    task = {"family": "conditions", "containerDefinitions": [
        container("first", "import sys; sys.exit(1)"),
        container("second", "import time; print('second: started'); time.sleep(2)", ("first", "COMPLETE")),
        container("app", "print('app: started')", ("second", "START"), essential=True),
    ]}
    run = run_task(task, images=STAND_INS)
    assert run["first"].exit_code == 1
    assert run["second"].started and "second: started" in run["second"].output
    assert run["app"].started and "app: started" in run["app"].output
    first_end = _instant(run["first"].info["State"]["FinishedAt"])
    assert first_end < _instant(run["second"].info["State"]["StartedAt"]) < _instant(
        run["app"].info["State"]["StartedAt"])
    assert run.stop_reason == "essential container app exited with code 0"


def test_tasks_ecs_refuses_are_not_run(images: tuple[str, str]) -> None:
    task = _slow_dependency("slow")
    task["containerDefinitions"][0]["essential"] = True
    run = run_task(task, images=STAND_INS)
    assert run.refused == ["app depends on slow with SUCCESS, but slow is essential: RegisterTaskDefinition rejects it"]
    assert run.containers == {}
