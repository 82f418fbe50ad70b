"""Create one new file whose owner and mode are final before its first byte: the single place that does it.

Used for every file of a committed set (``sidecar.commit``) and for refresh mode's health record
(``sidecar.health``). Raises ``OSError``; callers turn it into their own message.
"""

from __future__ import annotations

import os
from typing import Final

CREATE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def create_file(directory: int, name: str, content: bytes | memoryview, *, mode: int, uid: int, gid: int) -> None:
    """Create ``name`` in the directory ``directory`` (a file descriptor) and write ``content`` to it.

    ``O_EXCL|O_NOFOLLOW``: nothing already at ``name`` (a planted link, a hard link) is opened or followed.
    The file is created with mode 0, so the umask cannot matter and nobody can open it until ``fchmod``; the
    owner is set before the mode, and both before the first byte. ``fsync`` before returning."""
    fd = os.open(name, CREATE_FLAGS, 0o000, dir_fd=directory)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        data = memoryview(content)
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)
