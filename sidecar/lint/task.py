"""Read-only views over a parsed task definition: containers, their roles (sidecar or app) and settings.

Every accessor tolerates malformed input (a wrong type is treated as absent): the botocore model rule
reports the malformation itself, and the other rules still run on what can be read.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sidecar.config import DEFAULT_OUTPUT_DIR, ENV_PREFIX

SIDECAR_IMAGE_MARKERS: Final = ("secrets-sidecar",)  # also matches ecs-secrets-sidecar
SIDECAR_PROGRAM: Final = "secrets-sidecar"
OUTPUT_DIR_ENV: Final = "SIDECAR_OUTPUT_DIR"
OUTPUT_DIR_FLAG: Final = "--output-dir"
REFRESH_ENV: Final = "SIDECAR_REFRESH_INTERVAL"
REFRESH_FLAG: Final = "--refresh-interval"
NOTIFY_SIGNAL_ENV: Final = "SIDECAR_NOTIFY_SIGNAL"
NOTIFY_SIGNAL_FLAG: Final = "--notify-signal"
HEALTHCHECK_COMMAND: Final = "healthcheck"

Container = Mapping[str, Any]


def containers(task: Mapping[str, Any]) -> list[tuple[str, Container]]:
    """``(name, definition)`` for every container definition that is an object, in order.

    A container without a usable name is called after its position, ``containerDefinitions[N]``.
    """
    found = task.get("containerDefinitions")
    return [
        (name_of(container, index), container)
        for index, container in enumerate(found if isinstance(found, list) else [])
        if isinstance(container, Mapping)
    ]


def name_of(container: Container, index: int) -> str:
    name = container.get("name")
    return name if isinstance(name, str) and name else f"containerDefinitions[{index}]"


def is_essential(container: Container) -> bool:
    """ECS's default: a container without ``essential`` is essential."""
    return container.get("essential", True) is not False


def environment(container: Container) -> dict[str, str]:
    """The ``environment`` entries that have a string name and a string value."""
    result: dict[str, str] = {}
    entries = container.get("environment")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str) and isinstance(entry.get("value"), str):
            result[entry["name"]] = entry["value"]
    return result


def secret_names(container: Container) -> list[str]:
    """Names of variables ECS injects from the container's native ``secrets``."""
    entries = container.get("secrets")
    return [
        entry["name"]
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str)
    ]


def argv(container: Container) -> list[str]:
    """``entryPoint`` followed by ``command``, the strings only."""
    words: list[str] = []
    for key in ("entryPoint", "command"):
        value = container.get(key)
        if isinstance(value, list):
            words += [word for word in value if isinstance(word, str)]
    return words


def sidecar_arguments(container: Container) -> list[str]:
    """The words passed to the sidecar program: ``argv`` without a leading ``secrets-sidecar`` program."""
    words = argv(container)
    for position, word in enumerate(words):
        if posixpath.basename(word) == SIDECAR_PROGRAM:
            return words[position + 1 :]
    return words


def mount_points(container: Container) -> list[Mapping[str, Any]]:
    found = container.get("mountPoints")
    return [m for m in found if isinstance(m, Mapping)] if isinstance(found, list) else []


def volume_names(task: Mapping[str, Any]) -> set[str]:
    found = task.get("volumes")
    return {
        v["name"]
        for v in (found if isinstance(found, list) else [])
        if isinstance(v, Mapping) and isinstance(v.get("name"), str)
    }


def depends_on(container: Container) -> dict[str, object]:
    """``containerName`` -> ``condition`` for every dependency of ``container``."""
    found = container.get("dependsOn")
    return {
        d["containerName"]: d.get("condition")
        for d in (found if isinstance(found, list) else [])
        if isinstance(d, Mapping) and isinstance(d.get("containerName"), str)
    }


def is_sidecar(container: Container) -> bool:
    """Recognised by its image, its program, or its ``SIDECAR_*`` environment."""
    image = container.get("image")
    if isinstance(image, str) and any(marker in image for marker in SIDECAR_IMAGE_MARKERS):
        return True
    if any(SIDECAR_PROGRAM in posixpath.basename(word) for word in argv(container)):
        return True
    return any(name.startswith(ENV_PREFIX) for name in environment(container))


def flag_value(container: Container, flag: str) -> str | None:
    """The value of ``flag`` (``--flag value`` or ``--flag=value``) in the sidecar's command, else None."""
    words = sidecar_arguments(container)
    for position, word in enumerate(words):
        if word == flag and position + 1 < len(words):
            return words[position + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    return None


def setting(container: Container, flag: str, variable: str) -> str | None:
    """A sidecar setting as the sidecar reads it: the command's flag wins over the environment variable."""
    from_flag = flag_value(container, flag)
    return from_flag if from_flag is not None else environment(container).get(variable)


def output_dir(container: Container) -> str:
    """The sidecar's output directory: ``--output-dir`` in its command, else SIDECAR_OUTPUT_DIR, else default."""
    return setting(container, OUTPUT_DIR_FLAG, OUTPUT_DIR_ENV) or DEFAULT_OUTPUT_DIR


def is_refresh_mode(container: Container) -> bool:
    """A sidecar with a refresh interval (``--refresh-interval`` or SIDECAR_REFRESH_INTERVAL) keeps running."""
    return bool(setting(container, REFRESH_FLAG, REFRESH_ENV))


def notifies_by_signal(container: Container) -> bool:
    return bool(setting(container, NOTIFY_SIGNAL_FLAG, NOTIFY_SIGNAL_ENV))


def health_check_words(container: Container) -> list[str] | None:
    """The words of the container's ``healthCheck`` command (``CMD`` or ``CMD-SHELL``), None without one."""
    check = container.get("healthCheck")
    command = check.get("command") if isinstance(check, Mapping) else None
    if not isinstance(command, list) or not command:
        return None
    words = [word for word in command if isinstance(word, str)]
    if words[:1] == ["CMD-SHELL"]:
        try:
            return shlex.split(" ".join(words[1:]))
        except ValueError:
            return words[1:]
    return words[1:] if words[:1] == ["CMD"] else words


def runs_sidecar_healthcheck(words: list[str]) -> bool:
    """Whether ``words`` run ``secrets-sidecar healthcheck`` (the program by any path)."""
    return any(
        posixpath.basename(word) == SIDECAR_PROGRAM and words[position + 1 : position + 2] == [HEALTHCHECK_COMMAND]
        for position, word in enumerate(words)
    )


def user_id(container: Container) -> int | None:
    """The numeric uid in the container's ``user`` (``uid`` or ``uid:gid``); None when absent or symbolic."""
    user = container.get("user")
    uid = user.split(":", 1)[0] if isinstance(user, str) else ""
    return int(uid) if uid.isdigit() else None


def same_path(left: object, right: str) -> bool:
    return isinstance(left, str) and bool(left) and posixpath.normpath(left) == posixpath.normpath(right)


@dataclass(frozen=True)
class Roles:
    """Which containers are sidecars and which are the apps they serve (every other essential container)."""

    sidecars: tuple[tuple[str, Container], ...]
    apps: tuple[tuple[str, Container], ...]


def roles(task: Mapping[str, Any]) -> Roles:
    sidecars: list[tuple[str, Container]] = []
    apps: list[tuple[str, Container]] = []
    for named in containers(task):
        if is_sidecar(named[1]):
            sidecars.append(named)
        elif is_essential(named[1]):
            apps.append(named)
    return Roles(tuple(sidecars), tuple(apps))
