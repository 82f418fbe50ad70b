"""Run a task definition on the local Docker engine, ordered as the ECS agent orders it, against moto.

The containers are created by docker-compose v1 from ``secrets-sidecar compose``'s translation (so volumes
with their driver options, users, read-only roots, environment, mounts and health checks are exactly what the
command gives users), then started one by one by this harness, which applies ECS's rules (tests/ecs/ordering.py)
instead of compose's: dependsOn with all four conditions, the dependency's startTimeout, essential containers
stopping the task. The moto server and the seeding job of the translation run first.

Images named in the task definition are replaced only through the explicit ``images`` mapping, and commands
only through the explicit ``commands`` mapping (a stand-in app that checks its files); the run's record says
which were replaced. ``health_interval`` shortens the health checks' interval for speed and is recorded too.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sidecar.compose.translate import MOTO_SERVICE, SEED_SERVICE, Options, Translation, translate
from tests.conftest import run_captured
from tests.ecs.ordering import NEVER_STARTED_EXIT_CODE, Decision, Spec, State, decide, invalid

POLL_SECONDS: Final = 0.2
DEFAULT_STOP_TIMEOUT: Final = 30  # ECS's default stopTimeout: SIGTERM, then SIGKILL after 30 s
NEVER_STARTED: Final = "0001-01-01T00:00:00Z"


@dataclass
class ContainerRun:
    name: str
    started: bool = False
    exit_code: int | None = None
    never_reason: str | None = None
    started_at: float | None = None  # seconds since the task's first start
    finished_at: float | None = None
    output: str = ""
    info: dict[str, Any] = field(default_factory=dict)  # docker inspect at the end


@dataclass
class TaskRun:
    stop_reason: str
    containers: dict[str, ContainerRun]
    translation: Translation
    seed_log: str = ""
    replaced: dict[str, str] = field(default_factory=dict)  # what was replaced explicitly, for the record
    refused: list[str] = field(default_factory=list)  # why ECS would not run this task at all
    stopped_at: float | None = None  # seconds from the first start to the decision to stop the task

    def __getitem__(self, name: str) -> ContainerRun:
        return self.containers[name]


def compose_command() -> list[str]:
    return ["docker-compose"] if shutil.which("docker-compose") else ["docker", "compose"]


def _container_logs(container: str) -> tuple[str, str]:
    """A container's stdout and stderr, read through the capturing helper so the secrecy guard scans them."""
    logs = run_captured(["docker", "logs", container], timeout=120)
    return logs.stdout.decode(errors="replace"), logs.stderr.decode(errors="replace")


def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def run_task(
    task: Mapping[str, Any],
    *,
    images: Mapping[str, str],
    commands: Mapping[str, Sequence[str]] = {},
    unseeded: Collection[str] = (),
    health_interval: int | None = None,
    region: str | None = None,
    deadline_seconds: float = 120,
) -> TaskRun:
    definitions = list(task["containerDefinitions"])
    specs = [Spec.of(c) for c in definitions]
    translation = translate(task, Options(images=images, moto=True, unseeded=unseeded, region=region))
    refused = invalid(specs)
    if refused:
        return TaskRun("ECS would not run this task", {}, translation, refused=refused)
    replaced = {f"image {k}": v for k, v in images.items()}
    services = translation.document["services"]
    for name, argv in commands.items():
        services[name]["entrypoint"] = [word.replace("$", "$$") for word in argv]
        services[name].pop("command", None)
        replaced[f"command of {name}"] = " ".join(argv[:2]) + " ..."
    if health_interval is not None:
        for name in translation.services:
            if "healthcheck" in services[name]:
                services[name]["healthcheck"]["interval"] = f"{health_interval}s"
                replaced[f"health check interval of {name}"] = f"{health_interval}s"
    for service in services.values():
        # The harness orders the containers itself; compose v1 would wait on these even with --no-start.
        service.pop("depends_on", None)
    project = f"ecstask{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "compose.yaml")
        with open(path, "w") as handle:
            json.dump(translation.document, handle)
        compose = [*compose_command(), "-p", project, "-f", path]
        try:
            created = subprocess.run([*compose, "up", "--no-start"], capture_output=True, text=True, timeout=180,
                                     check=False)
            if created.returncode != 0:
                raise AssertionError(f"compose up --no-start failed:\n{created.stderr[-3000:]}")
            ids = {service: _container_id(project, service) for service in [*translation.services, MOTO_SERVICE,
                                                                               SEED_SERVICE]}
            # No sidecar references anything: the task does not need moto.
            seed_log = _seed(ids) if translation.seed and translation.seed.items else ""
            stop_timeouts = {str(c["name"]): int(c.get("stopTimeout", DEFAULT_STOP_TIMEOUT)) for c in definitions}
            reason, containers, stopped_at = _orchestrate(specs, {s.name: ids[s.name] for s in specs},
                                                          stop_timeouts, deadline_seconds)
            return TaskRun(reason, containers, translation, seed_log, replaced, stopped_at=stopped_at)
        finally:
            subprocess.run([*compose, "down", "-v", "-t", "2"], capture_output=True, timeout=180, check=False)


def _container_id(project: str, service: str) -> str:
    found = _docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}",
                    "--filter", f"label=com.docker.compose.service={service}").stdout.split()
    assert len(found) == 1, f"{service}: {found}"
    return found[0]


def _seed(ids: Mapping[str, str]) -> str:
    _docker("start", ids[MOTO_SERVICE])
    _docker("start", ids[SEED_SERVICE])
    code = _docker("wait", ids[SEED_SERVICE], timeout=120).stdout.strip()
    stdout, stderr = _container_logs(ids[SEED_SERVICE])
    if code != "0":
        raise AssertionError(f"seeding moto failed ({code}):\n{stdout[-2000:]}{stderr[-2000:]}")
    return stdout


def _orchestrate(
    specs: Sequence[Spec], ids: Mapping[str, str], stop_timeouts: Mapping[str, int], deadline_seconds: float
) -> tuple[str, dict[str, ContainerRun], float]:
    runs = {spec.name: ContainerRun(spec.name) for spec in specs}
    started_at: dict[str, float] = {}
    never: dict[str, str] = {}
    origin = time.monotonic()
    deadline = origin + deadline_seconds
    stop_reason = f"the harness's deadline ({deadline_seconds:g} s) passed"
    while time.monotonic() < deadline:
        now = time.monotonic()
        states = _observe(ids, started_at, never)
        decision: Decision = decide(specs, states, now)
        if decision.stop_task:
            stop_reason = decision.stop_task
            break
        for name, reason in decision.never_start:
            never[name] = reason
        for name in decision.start:
            result = _docker("start", ids[name])
            started_at[name] = time.monotonic()
            assert result.returncode == 0, f"docker start {name}: {result.stderr}"
        if not decision.start and not decision.never_start:
            time.sleep(POLL_SECONDS)
    stopped_at = time.monotonic() - origin
    _stop(specs, ids, stop_timeouts)
    for spec in specs:
        run = runs[spec.name]
        info: dict[str, Any] = json.loads(_docker("inspect", ids[spec.name]).stdout)[0]
        run.info = info
        run.started = info["State"]["StartedAt"] != NEVER_STARTED
        run.never_reason = never.get(spec.name)
        run.exit_code = NEVER_STARTED_EXIT_CODE if run.never_reason else (
            info["State"]["ExitCode"] if run.started else None)
        run.started_at = started_at[spec.name] - origin if spec.name in started_at else None
        stdout, stderr = _container_logs(ids[spec.name])
        run.output = stdout + stderr
    return stop_reason, runs, stopped_at


def _observe(ids: Mapping[str, str], started_at: Mapping[str, float], never: Mapping[str, str]) -> dict[str, State]:
    found = json.loads(_docker("inspect", *ids.values()).stdout)
    by_id = {info["Id"]: info for info in found}
    states = {}
    for name, container in ids.items():
        info = next(v for k, v in by_id.items() if k.startswith(container))
        state = info["State"]
        if name in never:
            states[name] = State("never", NEVER_STARTED_EXIT_CODE)
        elif state["Status"] == "running":
            health = (state.get("Health") or {}).get("Status")
            states[name] = State("running", started_at=started_at.get(name), healthy=health == "healthy")
        elif state["Status"] in ("exited", "dead"):
            states[name] = State("exited", state["ExitCode"], started_at.get(name))
        else:
            states[name] = State("pending")
    return states


def _stop(specs: Sequence[Spec], ids: Mapping[str, str], stop_timeouts: Mapping[str, int]) -> None:
    """The task stops: every running container gets SIGTERM, then SIGKILL after its stopTimeout (ECS's default
    30 s). All at once: ECS's reverse shutdown order (dependents first) is not modelled."""
    running = [spec.name for spec in specs if _docker("inspect", "-f", "{{.State.Running}}", ids[spec.name])
               .stdout.strip() == "true"]
    stoppers = [subprocess.Popen(["docker", "stop", "-t", str(stop_timeouts[name]), ids[name]],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for name in running]
    for stopper in stoppers:
        stopper.wait(timeout=max(stop_timeouts.values(), default=0) + 30)
