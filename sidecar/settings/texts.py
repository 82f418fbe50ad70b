"""Files the configuration names (the config file, template files), read at the edge.

``read_file`` is the only place the configuration touches the filesystem; everything else receives the
texts it read, so that loading settings from given texts is pure and testable in-process.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

MAX_FILE_BYTES: Final = 1024 * 1024  # a config file or a template is a few kilobytes; this bounds what is read


@dataclass(frozen=True)
class Unreadable:
    """A file that could not be read, and why (the OS's reason; never its content)."""

    reason: str
    valid_path: bool = True  # False: no file can have this name (a NUL, or a lone surrogate)


FileTexts = Mapping[str, bytes | Unreadable]  # path -> content, as given in the configuration


def read_file(path: str) -> bytes | Unreadable:
    """A regular file's bytes. O_NONBLOCK: a FIFO would otherwise block start-up forever."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return Unreadable("not a regular file")
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return Unreadable(exc.strerror or type(exc).__name__)
    except ValueError:  # a NUL, or a lone surrogate no file name can hold
        return Unreadable("not a valid path", valid_path=False)
    if len(data) > MAX_FILE_BYTES:
        return Unreadable(f"larger than {MAX_FILE_BYTES} bytes")
    return data
