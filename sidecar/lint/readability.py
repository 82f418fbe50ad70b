"""Rules ``reader-cannot-read`` and ``reader-user-unknown``: each reader must be able to read each file.

The files' modes and owners come from the sidecar's own parser (SIDECAR_FILE_MODE, SIDECAR_UID/GID, each
entry's ``mode``/``uid``/``gid``; the owner defaults to the sidecar's process, whose ids come from its
``user`` and the image). A reader's ids come from its numeric ``user``; without a gid, its group comes from
its own image's /etc/passwd, which the task definition does not show. The kernel's check: the owner's bits
if the reader owns the file, else the group's bits if it is in the file's group, else the others' bits;
root reads anything while it keeps CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH (ECS and Docker grant both by
default; ``linuxParameters.capabilities.drop`` can take them). Supplementary groups from the reader's image
are not seen. A Docker tmpfs volume's own directory takes its mode and owner from the volume's ``o``
options, and the reader must be able to enter it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sidecar.lint.finding import Finding
from sidecar.lint.sidecar_config import settings_of
from sidecar.lint.task import Container, Sidecar, User, decimal, roles, user_of
from sidecar.lint.tmpfs import docker_tmpfs_volumes

UNREADABLE: Final = "reader-cannot-read"
UNKNOWN: Final = "reader-user-unknown"
READ, SEARCH = 0o4, 0o1
DAC_CAPABILITIES: Final = ("DAC_OVERRIDE", "DAC_READ_SEARCH")
MAX_NAMED: Final = 4


@dataclass(frozen=True)
class Node:
    """A file (or the volume's directory) the reader needs: its name, mode, owner and the bit it needs."""

    name: str
    mode: int
    uid: int
    gid: int
    need: int = READ

    def describe(self) -> str:
        return f"{self.mode:04o} {self.uid}:{self.gid}"


def check_readability(task: Mapping[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    for sidecar in roles(task).sidecars:
        settings = settings_of(sidecar.container) if sidecar.readers else None
        if settings is None:
            continue  # no reader (no-reader), or a configuration the sidecar would refuse (sidecar-config)
        nodes = [Node(entry.name + ("/*" if entry.is_directory else ""), entry.mode, entry.uid, entry.gid)
                 for entry in settings.entries]
        if settings.env_file:
            nodes.append(Node(settings.env_file, settings.file_mode, settings.uid, settings.gid))
        directory = _tmpfs_directory(task, sidecar)
        for reader, container in sidecar.readers:
            findings += _check_reader(sidecar, reader, container, nodes, directory)
    return findings


def can_access(node: Node, uid: int, gid: int | None, privileged: bool) -> bool | None:
    """Whether a process of ``uid``/``gid`` gets ``node.need`` on ``node``; None when it depends on the gid."""
    if uid == 0 and privileged:
        return True
    if uid == node.uid:
        return bool(node.mode >> 6 & node.need)
    others = bool(node.mode & node.need)
    if gid is None:
        return True if others else (None if node.mode >> 3 & node.need else False)
    return bool(node.mode >> 3 & node.need) if gid == node.gid else others


def _check_reader(
    sidecar: Sidecar, reader: str, container: Container, nodes: list[Node], directory: Node | None
) -> list[Finding]:
    user = user_of(container)
    if user.uid is None:
        if all(node.mode & node.need for node in [*nodes, *([directory] if directory else [])]):
            return []  # everyone may read them: who the reader is does not matter
        who = f"runs as {user.written!r}" if user.written else "sets no \"user\", so it runs as its image's user"
        return [Finding(
            UNKNOWN, "warning", reader,
            f"the container {who}, which the task definition does not show as numbers: whether it can read "
            f"the files of {sidecar.name!r} cannot be checked",
            "give it a numeric \"user\" (\"uid:gid\"), so that this check can confirm it reads its files",
        )]
    privileged = _keeps_dac_capability(container)
    if directory is not None and can_access(directory, user.uid, user.gid, privileged) is False:
        return [_unreadable(sidecar, reader, user, [directory], entered=False)]
    results = [(node, can_access(node, user.uid, user.gid, privileged)) for node in nodes]
    denied = [node for node, allowed in results if allowed is False]
    if denied:
        return [_unreadable(sidecar, reader, user, denied, entered=True)]
    undecided = [node for node, allowed in results if allowed is None]
    if undecided:
        return [Finding(
            UNKNOWN, "warning", reader,
            f"the container runs as uid {user.uid} without a gid, so its group comes from its image: it can "
            f"read {_names(undecided)} ({_modes(undecided)}) only if that group is the files' group",
            f"write its \"user\" as \"{user.uid}:{undecided[0].gid}\"",
        )]
    return []


def _unreadable(sidecar: Sidecar, reader: str, user: User, nodes: list[Node], *, entered: bool) -> Finding:
    gid = user.gid if user.gid is not None else "<the app's gid>"
    if not entered:
        (directory,) = nodes
        return Finding(
            UNREADABLE, "error", reader,
            f"the container runs as {user.written!r} and cannot enter the secrets volume of {sidecar.name!r}: "
            f"the tmpfs volume's directory is {directory.describe()} (its \"o\" options), so every file "
            "in it is out of reach",
            f"set the volume's \"o\" options to gid={gid} with mode=0750 (the sidecar's uid stays the owner)",
        )
    return Finding(
        UNREADABLE, "error", reader,
        f"the container runs as {user.written!r} and cannot read {_names(nodes)} written by {sidecar.name!r} "
        f"({_modes(nodes)}): it would get \"Permission denied\"",
        f"give the files the reader's group: \"user\": \"10001:{gid}\" on {sidecar.name!r} with "
        f"SIDECAR_FILE_MODE \"0440\" (and no per-entry mode, uid or gid that takes it away), or run the "
        f"reader as the files' owner, uid {nodes[0].uid}",
    )


def _names(nodes: list[Node]) -> str:
    shown = ", ".join(repr(node.name) for node in nodes[:MAX_NAMED])
    more = f" and {len(nodes) - MAX_NAMED} more" if len(nodes) > MAX_NAMED else ""
    return shown + more


def _modes(nodes: list[Node]) -> str:
    kinds = sorted({node.describe() for node in nodes})
    return ("mode and owner " if len(kinds) == 1 else "modes and owners ") + ", ".join(kinds)


def _keeps_dac_capability(container: Container) -> bool:
    """Whether a root process in ``container`` keeps a capability that bypasses file read permissions."""
    parameters = container.get("linuxParameters")
    capabilities = parameters.get("capabilities") if isinstance(parameters, Mapping) else None
    if not isinstance(capabilities, Mapping):
        return True

    def names(key: str) -> set[str]:
        found = capabilities.get(key)
        words = found if isinstance(found, list) else []
        return {word.upper().removeprefix("CAP_") for word in words if isinstance(word, str)}

    dropped, added = names("drop"), names("add")
    return any(cap in added or ("ALL" not in dropped and cap not in dropped) for cap in DAC_CAPABILITIES)


def _tmpfs_directory(task: Mapping[str, Any], sidecar: Sidecar) -> Node | None:
    """The secrets volume's own directory when it is a Docker tmpfs volume with numeric o options."""
    if sidecar.volume is None or sidecar.volume not in docker_tmpfs_volumes(task):
        return None
    found = task.get("volumes")
    volume = next(v for v in (found if isinstance(found, list) else [])
                  if isinstance(v, Mapping) and v.get("name") == sidecar.volume)
    raw = volume["dockerVolumeConfiguration"]["driverOpts"].get("o")
    options = dict(item.partition("=")[::2] for item in raw.split(",")) if isinstance(raw, str) else {}
    mode_text = options.get("mode", "")
    mode = int(mode_text, 8) if mode_text and all(c in "01234567" for c in mode_text) else 0o1777  # tmpfs default
    uid, gid = decimal(options.get("uid", "0")), decimal(options.get("gid", "0"))
    if uid is None or gid is None:
        return None
    return Node("the volume's directory", mode & 0o777, uid, gid, need=SEARCH)
