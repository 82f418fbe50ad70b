"""Task definition -> compose document, and the notes that say where a local run differs from ECS.

Pure: a parsed task definition and the options in, a dict (the compose document, JSON-serialisable, which
compose reads as YAML) and notes out. Every field of a container definition or task that is not mapped
below yields a note, so nothing is dropped silently. Every string taken from the task definition has its
``$`` doubled: compose would otherwise interpolate ``${...}`` in it from the shell.

The sidecar is wired exactly as in the task definition: its image (or the explicit ``--image`` replacement),
user, read-only root, environment, mounts, health check and dependencies. For the local run, ECS's own
additions are made explicit: AWS_REGION/AWS_DEFAULT_REGION (which the ECS agent sets in every container that
has neither, agent/api/task/task.go) and, with moto, credentials and the endpoint standing in for the task
role.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sidecar.compose.notes import Note
from sidecar.compose.seed import SeedPlan, seed_plan
from sidecar.compose.storage import linux_parameters, mounts_of, volumes_of
from sidecar.compose.text import escape, objects

MOTO_SERVICE: Final = "local-moto"
SEED_SERVICE: Final = "local-seed"
DEFAULT_MOTO_IMAGE: Final = "motoserver/moto:5.2.5"
MOTO_PORT: Final = 5000
DEFAULT_REGION: Final = "us-east-1"
LOCAL_CREDENTIALS: Final = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# ECS's defaults for a container health check (AWS API reference, HealthCheck); Docker's own differ
# (timeout 30 s), so they are always written out.
HEALTH_DEFAULTS: Final = {"interval": 30, "timeout": 5, "retries": 3}
CONDITIONS: Final = {
    "START": "service_started",
    "HEALTHY": "service_healthy",
    "SUCCESS": "service_completed_successfully",
    # Compose has no "exited with any code": the nearest is stricter, a failed dependency stops the dependent.
    "COMPLETE": "service_completed_successfully",
}
MAPPED_CONTAINER_FIELDS: Final = frozenset({
    "name", "image", "essential", "entryPoint", "command", "environment", "user", "readonlyRootFilesystem",
    "workingDirectory", "mountPoints", "volumesFrom", "dependsOn", "healthCheck", "startTimeout", "stopTimeout",
    "dockerLabels", "hostname", "linuxParameters",
})
MAPPED_TASK_FIELDS: Final = frozenset({"family", "containerDefinitions", "volumes", "requiresCompatibilities"})
# What each unmapped field means locally, for the fields users meet most; any other field gets a generic note.
UNMAPPED_MEANING: Final = {
    "secrets": "ECS's agent injects these as variables at start-up; they are not set locally (add them to an "
               "env file if the container needs them)",
    "logConfiguration": "logs go to Docker's default driver: read them with docker-compose logs",
    "portMappings": "no port is published; add ports: to the service to reach it from the host",
    "cpu": "not enforced", "memory": "not enforced", "memoryReservation": "not enforced",
    "environmentFiles": "files in S3 are not fetched: the variables they hold are not set",
    "repositoryCredentials": "pull the image yourself (docker login), or map it with --image",
    "restartPolicy": "compose does not restart it",
    "taskRoleArn": "no task role: with --moto the containers get dummy credentials for the moto server; "
                   "without, give the sidecar credentials yourself (e.g. an env file or a mounted profile)",
    "executionRoleArn": "the agent's role (image pulls, logs, native secrets): nothing uses it locally",
    "networkMode": "containers share a compose network and reach each other by service name, not localhost",
    "pidMode": "each container has its own process namespace: a sidecar's signal to the app fails locally "
               "(logged as notify_failed, never fatal)",
    "ipcMode": "each container has its own IPC namespace",
    "cpu@task": "not enforced", "memory@task": "not enforced",
    "runtimePlatform": "the local engine's platform is used",
    "ephemeralStorage": "not enforced",
}
_SERVICE_NAME: Final = re.compile(r"[^a-zA-Z0-9._-]")


@dataclass(frozen=True)
class Options:
    """``images``: image as written in the task definition -> local image to run instead (explicit, reported).
    ``moto``: add a moto server and a seeding job. ``unseeded``: valueFroms to leave out of the seed (to watch
    the sidecar fail). ``region``: the task's region (default: the region of the first ARN the sidecar
    references, else us-east-1)."""

    images: Mapping[str, str] = field(default_factory=dict)
    moto: bool = False
    moto_image: str = DEFAULT_MOTO_IMAGE
    unseeded: Collection[str] = ()
    region: str | None = None


@dataclass
class Translation:
    document: dict[str, Any]
    notes: list[Note]
    services: list[str]  # the task's containers, in task definition order (local services not included)
    seed: SeedPlan | None = None
    unused_images: list[str] = field(default_factory=list)  # --image keys that matched no image


def translate(task: Mapping[str, Any], options: Options) -> Translation:
    notes: list[Note] = []
    definitions = objects(task.get("containerDefinitions"))
    names = [str(c.get("name", f"container{i}")) for i, c in enumerate(definitions)]
    region = options.region or _region_of(task) or DEFAULT_REGION
    if not options.region and not _region_of(task):
        notes.append(Note("approximated", None, "region", (
            f"no ARN names the task's region: {DEFAULT_REGION} stands in (set --region)")))
    volumes, volume_kinds = volumes_of(task, notes)
    services: dict[str, Any] = {}
    waited_on = {
        d.get("containerName") for c in definitions for d in objects(c.get("dependsOn"))
        if d.get("condition") in ("SUCCESS", "COMPLETE", "HEALTHY")
    }
    context = _Context(names, volume_kinds, options, waited_on, notes=notes)
    for name, container in zip(names, definitions, strict=True):
        services[_service(name)] = _container(name, container, context)
        _add_region(services[_service(name)], region)
    used_images = context.used_images
    notes.append(Note("added", None, "environment", (
        f"AWS_REGION and AWS_DEFAULT_REGION ({region}) in every container that sets neither, as the ECS agent "
        "does")))
    _task_notes(task, notes)
    plan = None
    if options.moto:
        plan = seed_plan(task, region, options.unseeded)
        notes += plan.notes
        _add_moto(services, list(zip(names, definitions, strict=True)), plan, region, context)
    document: dict[str, Any] = {"services": services}
    if volumes:
        document["volumes"] = volumes
    unused = sorted(set(options.images) - used_images)
    return Translation(document, list(dict.fromkeys(notes)), [_service(n) for n in names], plan, unused)


def _service(name: str) -> str:
    return _SERVICE_NAME.sub("-", name)


@dataclass
class _Context:
    """What translating one container needs to know about the others, and where its results go."""

    names: list[str]
    volume_kinds: Mapping[str, str]
    options: Options
    waited_on: Collection[object]
    used_images: set[str] = field(default_factory=set)
    notes: list[Note] = field(default_factory=list)


def _container(name: str, container: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    service: dict[str, Any] = {}
    image = container.get("image")
    if isinstance(image, str):
        service["image"] = _image(name, image, context.options, context.used_images, context.notes)
    _process(container, service)
    linux_parameters(name, container.get("linuxParameters"), service, context.notes)
    mounts = mounts_of(name, container, context.volume_kinds, context.notes)
    if mounts:
        service["volumes"] = mounts
    sources = [
        f"{_service(str(v['sourceContainer']))}:{'ro' if v.get('readOnly') else 'rw'}"
        for v in objects(container.get("volumesFrom"))
        if v.get("sourceContainer") in context.names
    ]
    if sources:
        service["volumes_from"] = sources
    health = _health_check(container.get("healthCheck"))
    if health:
        service["healthcheck"] = health
    depends = _depends_on(name, container, context.names, context.notes)
    if depends:
        service["depends_on"] = depends
    _lifecycle_notes(name, container, context)
    return service


def _process(container: Mapping[str, Any], service: dict[str, Any]) -> None:
    """How the process runs: program, environment, user, root filesystem, directory, labels."""
    for key, target in (("entryPoint", "entrypoint"), ("command", "command")):
        words = container.get(key)
        if isinstance(words, list):
            service[target] = [escape(str(w)) for w in words]
    environment = {
        str(e["name"]): escape(str(e.get("value", "")))
        for e in objects(container.get("environment")) if "name" in e
    }
    if environment:
        service["environment"] = environment
    for key, target in (("user", "user"), ("workingDirectory", "working_dir"), ("hostname", "hostname")):
        if isinstance(container.get(key), str):
            service[target] = escape(container[key])
    if container.get("readonlyRootFilesystem") is True:
        service["read_only"] = True
    if isinstance(container.get("stopTimeout"), int):
        service["stop_grace_period"] = f"{container['stopTimeout']}s"
    if isinstance(container.get("dockerLabels"), Mapping):
        service["labels"] = {str(k): escape(str(v)) for k, v in container["dockerLabels"].items()}


def _lifecycle_notes(name: str, container: Mapping[str, Any], context: _Context) -> None:
    notes = context.notes
    if container.get("essential", True) is not False:
        notes.append(Note("unmapped", name, "essential", (
            "when it stops, ECS stops every other container of the task; compose leaves them running")))
    if "startTimeout" in container:
        notes.append(Note("unmapped", name, "startTimeout", (
            "ECS stops the task when this container, waited on with SUCCESS, COMPLETE or HEALTHY, has not got "
            "there within it; compose waits without limit" if name in context.waited_on else
            "no container waits on this one with SUCCESS, COMPLETE or HEALTHY, so on ECS it bounds nothing "
            "(the agent reads startTimeout from the container waited on)")))
    for key in sorted(set(container) - MAPPED_CONTAINER_FIELDS):
        notes.append(Note("unmapped", name, key, UNMAPPED_MEANING.get(key, "not mapped: it has no effect locally")))


def _image(name: str, image: str, options: Options, used_images: set[str], notes: list[Note]) -> str:
    local = options.images.get(image)
    if local is None:
        if ".dkr.ecr." in image:
            notes.append(Note("unmapped", name, "image", (
                "an ECR image: log in and pull it first (aws ecr get-login-password), or map it to a local "
                "image with --image")))
        return escape(image)
    used_images.add(image)
    notes.append(Note("approximated", name, "image", f"runs the local image {local} instead of {image}"))
    return escape(local)


def _health_check(check: object) -> dict[str, Any] | None:
    if not isinstance(check, Mapping) or not isinstance(check.get("command"), list):
        return None
    health: dict[str, Any] = {"test": [escape(str(w)) for w in check["command"]]}
    for key in ("interval", "timeout"):
        health[key] = f"{check.get(key, HEALTH_DEFAULTS[key])}s"
    health["retries"] = check.get("retries", HEALTH_DEFAULTS["retries"])
    if isinstance(check.get("startPeriod"), int):
        health["start_period"] = f"{check['startPeriod']}s"
    return health


def _depends_on(name: str, container: Mapping[str, Any], names: list[str], notes: list[Note]) -> dict[str, Any]:
    depends: dict[str, Any] = {}
    for dependency in objects(container.get("dependsOn")):
        target, condition = dependency.get("containerName"), dependency.get("condition")
        if target not in names or condition not in CONDITIONS:
            notes.append(Note("unmapped", name, "dependsOn", f"{target} {condition}: no such container or condition"))
            continue
        depends[_service(str(target))] = {"condition": CONDITIONS[str(condition)]}
        if condition == "COMPLETE":
            notes.append(Note("approximated", name, "dependsOn", (
                f"COMPLETE on {target} maps to service_completed_successfully: ECS starts {name} whatever "
                f"{target}'s exit code, compose only after exit 0")))
    return depends


def _add_region(service: dict[str, Any], region: str) -> None:
    environment = service.setdefault("environment", {})
    if "AWS_REGION" not in environment and "AWS_DEFAULT_REGION" not in environment:
        environment.update({"AWS_REGION": region, "AWS_DEFAULT_REGION": region})


def _task_notes(task: Mapping[str, Any], notes: list[Note]) -> None:
    for key in sorted(set(task) - MAPPED_TASK_FIELDS):
        meaning = UNMAPPED_MEANING.get(f"{key}@task", UNMAPPED_MEANING.get(key, "not mapped: no effect locally"))
        notes.append(Note("unmapped", None, key, meaning))


def _add_moto(
    services: dict[str, Any], containers: list[tuple[str, Mapping[str, Any]]], plan: SeedPlan, region: str,
    context: _Context,
) -> None:
    from sidecar.lint.task import is_sidecar

    options, notes = context.options, context.notes
    for reserved in (MOTO_SERVICE, SEED_SERVICE):
        if reserved in services:
            raise ValueError(f"a container is named {reserved}, the name of a local service")
    image = _image(MOTO_SERVICE, options.moto_image, options, context.used_images, notes)
    endpoint = f"http://{MOTO_SERVICE}:{MOTO_PORT}"
    fake_aws = {**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "AWS_EC2_METADATA_DISABLED": "true"}
    from importlib.resources import files

    script = files("sidecar.compose").joinpath("seed_moto.py").read_text()
    listen = ["-H", "0.0.0.0", "-p", str(MOTO_PORT)]  # noqa: S104 - all interfaces of its own container
    services[MOTO_SERVICE] = {"image": image, "entrypoint": ["moto_server", *listen]}
    services[SEED_SERVICE] = {
        "image": image,
        "entrypoint": ["python", "-c", escape(script)],
        "environment": {**fake_aws, "AWS_REGION": region, "SEED_PLAN": escape(json.dumps(plan.as_json()))},
        "depends_on": {MOTO_SERVICE: {"condition": "service_started"}},
    }
    for name, container in containers:
        service = services[_service(name)]
        environment = service["environment"]
        for key, value in fake_aws.items():
            environment.setdefault(key, value)
        if is_sidecar(container):
            service.setdefault("depends_on", {})[SEED_SERVICE] = {"condition": "service_completed_successfully"}
    notes.append(Note("added", None, "services", (
        f"{MOTO_SERVICE} (a moto server, image {image}) and {SEED_SERVICE} (creates {len(plan.items)} "
        "placeholder secrets, parameters and objects); every sidecar waits for the seed")))
    notes.append(Note("added", None, "environment", (
        f"dummy credentials and AWS_ENDPOINT_URL={endpoint} in every container, standing in for the task role")))


def _region_of(task: Mapping[str, Any]) -> str | None:
    """The region of the first ARN in any container's environment (the task's region, most likely)."""
    text = json.dumps([c.get("environment") for c in objects(task.get("containerDefinitions"))])
    match = re.search(r"arn:aws[a-z-]*:(?:secretsmanager|ssm):([a-z]{2}(?:-[a-z]+)+-\d+):", text)
    return match[1] if match else None
