"""Files the configuration names (the config file, template files), read at the edge.

``read_file`` is the only place the configuration touches the filesystem; everything else receives the
texts it read, so that loading settings from given texts is pure and testable in-process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Unreadable:
    """A file that could not be read, and why (the OS's reason; never its content)."""

    reason: str
    valid_path: bool = True  # False: no file can have this name (a NUL, or a lone surrogate)


FileTexts = Mapping[str, bytes | Unreadable]  # path -> content, as given in the configuration


def read_file(path: str) -> bytes | Unreadable:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        return Unreadable(exc.strerror or type(exc).__name__)
    except ValueError:  # a NUL, or a lone surrogate no file name can hold
        return Unreadable("not a valid path", valid_path=False)
