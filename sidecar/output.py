"""One file of a set to write: what rendering produces and the disk layer commits. Its own module, so that the
disk layer (``sidecar.commit``) does not import the renderer above it."""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.secret import SecretBytes


@dataclass(frozen=True)
class OutputFile:
    path: str  # relative to the output directory, already checked by sidecar.names
    content: SecretBytes
    mode: int
    uid: int
    gid: int
    # How messages and log lines name the file: its path, except under ``expand``, where the path holds a JSON
    # key (secret content) and the file is named by its entry and the key's position instead.
    label: str = ""

    @property
    def shown(self) -> str:
        return self.label or self.path
