"""Read-only views over a parsed task definition: containers, their roles (sidecar or app) and settings.

Every accessor tolerates malformed input (a wrong type is treated as absent): the botocore model rule
reports the malformation itself, and the other rules still run on what can be read.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sidecar.settings.options import ENV_PREFIX, NOTIFY_SIGNAL, OUTPUT_DIR, REFRESH_INTERVAL, Named

SIDECAR_IMAGE_MARKERS: Final = ("secrets-sidecar",)  # also matches ecs-secrets-sidecar
SIDECAR_PROGRAM: Final = "secrets-sidecar"
HEALTHCHECK_COMMAND: Final = "healthcheck"
_ASCII_DIGITS: Final = re.compile(r"[0-9]{1,10}")
IMAGE_UID: Final = 10001  # the image's USER (Dockerfile): uid and gid 10001, named sidecar
IMAGE_USERS: Final = {"sidecar": IMAGE_UID, "root": 0}

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


def runs_project_image(container: Container) -> bool:
    """Whether the container's image is this project's (its name says so), whose USER is 10001:10001."""
    image = container.get("image")
    return isinstance(image, str) and any(marker in image for marker in SIDECAR_IMAGE_MARKERS)


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


def setting(container: Container, named: Named) -> str | None:
    """A sidecar setting as the sidecar reads it: the command's flag wins over the environment variable."""
    from_flag = flag_value(container, named.flag)
    return from_flag if from_flag is not None else environment(container).get(named.env)


def output_dir(container: Container) -> str:
    """The sidecar's output directory: ``--output-dir`` in its command, else SIDECAR_OUTPUT_DIR, else default."""
    return setting(container, OUTPUT_DIR) or OUTPUT_DIR.default


def is_refresh_mode(container: Container) -> bool:
    """A sidecar with a refresh interval (``--refresh-interval`` or SIDECAR_REFRESH_INTERVAL) keeps running."""
    return bool(setting(container, REFRESH_INTERVAL))


def notifies_by_signal(container: Container) -> bool:
    return bool(setting(container, NOTIFY_SIGNAL))


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


def decimal(text: object) -> int | None:
    """``text`` as a whole number when it is ASCII digits only (not a superscript or other digit), else None."""
    return int(text) if isinstance(text, str) and _ASCII_DIGITS.fullmatch(text) else None


@dataclass(frozen=True)
class User:
    """A container's ``user``, as far as the task definition tells: ``uid``, ``uid:gid``, or names.

    ``uid`` is None when ``user`` is absent (the image's user) or not numeric; ``gid`` is None when it is not
    given (it then comes from the image's /etc/passwd) or not numeric.
    """

    written: str | None
    uid: int | None
    gid: int | None

    @property
    def numeric(self) -> bool:
        return self.uid is not None


def user_of(container: Container) -> User:
    user = container.get("user")
    if not isinstance(user, str) or not user:
        return User(None, None, None)
    uid, _, gid = user.partition(":")
    return User(user, decimal(uid), decimal(gid))


def sidecar_process_ids(container: Container) -> tuple[int, int] | None:
    """The uid and gid the sidecar's process runs as, from its ``user`` and the image's /etc/passwd.

    The image runs as ``10001:10001`` when ``user`` is absent and knows two names, ``sidecar`` and ``root``.
    A numeric uid without a gid takes its passwd entry's group, or gid 0 when it has none (Docker's rule).
    None when ``user`` names someone the image does not know.
    """
    user = user_of(container)
    if user.written is None:
        return IMAGE_UID, IMAGE_UID
    name, _, group = user.written.partition(":")
    uid = user.uid if user.uid is not None else IMAGE_USERS.get(name)
    if uid is None:
        return None
    if not group:
        return uid, {IMAGE_UID: IMAGE_UID}.get(uid, 0)
    gid = user.gid if user.gid is not None else IMAGE_USERS.get(group)
    return (uid, gid) if gid is not None else None


def user_id(container: Container) -> int | None:
    """The numeric uid in the container's ``user`` (``uid`` or ``uid:gid``); None when absent or symbolic."""
    return user_of(container).uid


def start_timeout(container: Container) -> int | None:
    """The container's ``startTimeout`` in seconds, None when absent or not a number."""
    value = container.get("startTimeout")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def same_path(left: object, right: str) -> bool:
    return isinstance(left, str) and bool(left) and posixpath.normpath(left) == posixpath.normpath(right)


def secrets_volume(container: Container) -> str | None:
    """The task volume a sidecar mounts at its output directory (its last such mount, as Docker applies it)."""
    directory = output_dir(container)
    mounts = [m for m in mount_points(container) if same_path(m.get("containerPath"), directory)]
    volume = mounts[-1].get("sourceVolume") if mounts else None
    return volume if isinstance(volume, str) and volume else None


def volumes_from(container: Container) -> list[Mapping[str, Any]]:
    found = container.get("volumesFrom")
    return [v for v in found if isinstance(v, Mapping)] if isinstance(found, list) else []


@dataclass(frozen=True)
class Sidecar:
    """A secrets sidecar and the containers that read what it writes.

    Its readers are the other containers that mount its secrets volume, or take the sidecar's volumes with
    ``volumesFrom``. Containers that do neither (a log router, a service-mesh proxy, a metrics agent) never
    see the files and owe the sidecar nothing.
    """

    name: str
    container: Container
    volume: str | None
    readers: tuple[tuple[str, Container], ...]

    def reader_mounts(self, container: Container) -> list[Mapping[str, Any]]:
        """How ``container`` sees the secrets: its mountPoints of the volume, and its volumesFrom the sidecar."""
        mounts = [m for m in mount_points(container) if self.volume and m.get("sourceVolume") == self.volume]
        return mounts + [v for v in volumes_from(container) if v.get("sourceContainer") == self.name]


@dataclass(frozen=True)
class Roles:
    """The sidecars of a task, each with its readers."""

    sidecars: tuple[Sidecar, ...]


def roles(task: Mapping[str, Any]) -> Roles:
    named = containers(task)
    found: list[Sidecar] = []
    for name, container in named:
        if not is_sidecar(container):
            continue
        volume = secrets_volume(container)
        sidecar = Sidecar(name, container, volume, ())
        readers = tuple(
            (other, other_container) for other, other_container in named
            if not is_sidecar(other_container) and sidecar.reader_mounts(other_container)
        )
        found.append(Sidecar(name, container, volume, readers))
    return Roles(tuple(found))
