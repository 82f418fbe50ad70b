"""A container's storage and kernel options in compose terms: the task's volumes, mount points, and
``linuxParameters`` (tmpfs mounts, capabilities, init); what has no local equivalent yields a note."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sidecar.compose.notes import Note
from sidecar.compose.text import escape, objects


def linux_parameters(name: str, parameters: object, service: dict[str, Any], notes: list[Note]) -> None:
    if not isinstance(parameters, Mapping):
        return
    if parameters.get("initProcessEnabled") is True:
        service["init"] = True
    capabilities = parameters.get("capabilities")
    if isinstance(capabilities, Mapping):
        for key, target in (("add", "cap_add"), ("drop", "cap_drop")):
            if isinstance(capabilities.get(key), list):
                service[target] = [str(c) for c in capabilities[key]]
    mounts = [tmpfs(t) for t in objects(parameters.get("tmpfs")) if isinstance(t.get("containerPath"), str)]
    if mounts:
        service["tmpfs"] = mounts
    for key in sorted(set(parameters) - {"initProcessEnabled", "capabilities", "tmpfs"}):
        notes.append(Note("unmapped", name, f"linuxParameters.{key}", "not mapped: it has no effect locally"))


def tmpfs(mount: Mapping[str, Any]) -> str:
    """``path:size=<MiB>m,<options>``: Docker's --tmpfs syntax for an ECS tmpfs mount (size in MiB)."""
    options = mount.get("mountOptions")
    extra = "".join(f",{o}" for o in options) if isinstance(options, list) else ""
    return escape(f"{mount['containerPath']}:size={mount.get('size', 1)}m{extra}")


def volumes_of(task: Mapping[str, Any], notes: list[Note]) -> tuple[dict[str, Any], dict[str, str]]:
    """Compose volumes, and the kind of each task volume: ``volume`` (named) or a host path (bind)."""
    volumes: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    for volume in objects(task.get("volumes")):
        if not isinstance(volume.get("name"), str):
            continue
        name = volume["name"]
        host = volume.get("host")
        source = host.get("sourcePath") if isinstance(host, Mapping) else None
        docker = volume.get("dockerVolumeConfiguration")
        if isinstance(source, str) and source:
            kinds[name] = source
            notes.append(Note("approximated", None, f"volumes.{name}", (
                f"bind-mounts {source} of this machine, where ECS mounts the container instance's path")))
            continue
        kinds[name] = "volume"
        if isinstance(docker, Mapping):
            spec: dict[str, Any] = {}
            if isinstance(docker.get("driver"), str):
                spec["driver"] = docker["driver"]
            if isinstance(docker.get("driverOpts"), Mapping):
                spec["driver_opts"] = {str(k): escape(str(v)) for k, v in docker["driverOpts"].items()}
            if isinstance(docker.get("labels"), Mapping):
                spec["labels"] = {str(k): escape(str(v)) for k, v in docker["labels"].items()}
            if docker.get("scope") == "shared":
                notes.append(Note("approximated", None, f"volumes.{name}", (
                    "scope shared: ECS keeps the volume after the task; compose keeps it until down -v")))
            volumes[name] = spec
            continue
        for other in sorted(set(volume) - {"name", "host"}):
            notes.append(Note("unmapped", None, f"volumes.{name}.{other}", (
                "not mapped: an empty local volume stands in for it")))
        # A task-scoped volume without a host path: the agent creates a Docker local volume for it on EC2
        # (initializeDockerLocalVolumes, agent/api/task/task.go); Fargate keeps it on the task's storage.
        volumes[name] = {}
    return volumes, kinds


def mounts_of(
    name: str, container: Mapping[str, Any], kinds: Mapping[str, str], notes: list[Note]
) -> list[dict[str, Any]]:
    mounts = []
    for mount in objects(container.get("mountPoints")):
        source, path = mount.get("sourceVolume"), mount.get("containerPath")
        if not isinstance(source, str) or not isinstance(path, str):
            continue
        kind = kinds.get(source)
        if kind is None:
            notes.append(Note("unmapped", name, "mountPoints", f"the volume {source} is not among the task's volumes"))
            continue
        spec: dict[str, Any] = {"type": "volume" if kind == "volume" else "bind",
                                "source": source if kind == "volume" else escape(kind), "target": escape(path)}
        if mount.get("readOnly") is True:
            spec["read_only"] = True
        mounts.append(spec)
    return mounts
