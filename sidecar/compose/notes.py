"""The one result type the translation reports besides the compose document itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NoteKind = Literal["unmapped", "approximated", "added"]


@dataclass(frozen=True, order=True)
class Note:
    """Where a local run differs from ECS.

    ``unmapped``: ECS does something compose does not (the field has no effect locally); ``approximated``:
    compose does something close but not the same; ``added``: the local project has something the task
    definition does not (credentials, a region, the moto service). ``container`` is None for the task as a
    whole. Messages name fields and containers, never an environment value.
    """

    kind: NoteKind
    container: str | None
    field: str
    message: str

    def line(self) -> str:
        where = f"{self.container}: " if self.container else ""
        return f"{self.kind}: {where}{self.field}: {self.message}"
