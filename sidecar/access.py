"""Who may read a file, judged from its mode and owner alone: the rule that keeps the env file, which holds
every entry's value, from letting anyone read an entry its own file keeps from them.

Pure: group membership is not known here (the app's users and groups live in the app's image, not the
sidecar's), so a reader counts as covered only when the modes and ids prove it. Root reads everything and is
out of scope (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

_GROUP_READ = 0o040
_OTHER_READ = 0o004


@dataclass(frozen=True)
class Access:
    mode: int  # always lets the owner read: the configuration refuses a mode without 0400
    uid: int
    gid: int

    def describe(self) -> str:
        return f"mode {self.mode:04o}, owner {self.uid}:{self.gid}"

    @property
    def readable_by_anyone(self) -> bool:
        # Group and others both: a user in the file's group gets the group bits, never the others bits.
        return self.mode & (_GROUP_READ | _OTHER_READ) == _GROUP_READ | _OTHER_READ


def uncovered_readers(wider: Access, narrower: Access) -> list[str]:
    """Who can read a file with ``wider`` access but is not proven able to read one with ``narrower``."""
    if narrower.readable_by_anyone:
        return []
    gaps = []
    if narrower.uid != wider.uid:  # the owner of the wider file reads it; the narrower one's owner bits are not theirs
        gaps.append(f"uid {wider.uid}")
    if wider.mode & _GROUP_READ and not (narrower.mode & _GROUP_READ and narrower.gid == wider.gid):
        gaps.append(f"group {wider.gid}")
    if wider.mode & _OTHER_READ:
        gaps.append("every user")
    return gaps


def env_file_problem(env_file: str, env: Access, entries: Iterable[tuple[str, Access]]) -> str | None:
    """Why the env file would widen some entry's access (naming every such entry), or None."""
    exposed = [(name, access, gaps) for name, access in entries if (gaps := uncovered_readers(env, access))]
    if not exposed:
        return None
    readers = sorted({gap for _, _, gaps in exposed for gap in gaps})
    listed = "; ".join(f"{name!r} ({access.describe()})" for name, access, _ in exposed)
    return (
        f"the env file {env_file!r} ({env.describe()}) holds every entry's value, so {', '.join(readers)} could "
        f"read through it what their own files keep from them: {listed}. Give the env file no wider access than "
        "these entries (SIDECAR_FILE_MODE, SIDECAR_UID, SIDECAR_GID set its mode and owner), widen the entries, "
        "or do without SIDECAR_ENV_FILE"
    )


def world_readable_warning(what: str, access: Access) -> str | None:
    if access.mode & _OTHER_READ:
        return f"{what} will be readable by every user (mode {access.mode:04o})"
    return None
