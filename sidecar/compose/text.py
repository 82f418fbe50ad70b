"""Reading the task definition's JSON leniently, and writing strings compose will not interpolate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def objects(value: object) -> list[Mapping[str, Any]]:
    """The objects of a JSON array; anything else (a wrong type the linter reports) counts as empty."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def escape(value: str) -> str:
    """``value`` with ``$`` doubled: compose would otherwise interpolate ``${...}`` from the shell."""
    return value.replace("$", "$$")
