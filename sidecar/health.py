"""Refresh mode's health record: a small value-free JSON file beside the committed set.

The long-running process writes it after every refresh cycle; ``secrets-sidecar healthcheck`` (a separate
process, run by ECS as the container's health check) reads it. Written with a rename, so the reader sees a
whole record or the previous one.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Final

from sidecar.files import create_file

HEALTH: Final = "..health.json"
_TMP: Final = "..health.json.tmp"


@dataclass(frozen=True)
class Health:
    last_success: float  # epoch seconds of the last cycle that ended with every secret current
    last_attempt: float
    last_error: str | None  # the last failed cycle's reason, until a cycle succeeds
    generation: int  # how many sets have been committed
    pid: int


def write_health(output_dir: str, health: Health, *, mode: int, uid: int, gid: int) -> None:
    root = os.open(output_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_TMP, dir_fd=root)
        record = json.dumps(asdict(health), sort_keys=True).encode()
        create_file(root, _TMP, record, mode=mode, uid=uid, gid=gid)
        os.replace(_TMP, HEALTH, src_dir_fd=root, dst_dir_fd=root)
    finally:
        os.close(root)


def read_health(output_dir: str) -> Health | None:
    try:
        with open(os.path.join(output_dir, HEALTH), "rb") as handle:
            return Health(**json.loads(handle.read()))
    except (OSError, ValueError, TypeError):
        return None


def assess(health: Health | None, max_age: float, now: float | None = None) -> tuple[bool, str]:
    """Healthy while the last good cycle is no older than ``max_age`` seconds."""
    if health is None:
        return False, "no health record yet: the first commit has not happened"
    age = (time.time() if now is None else now) - health.last_success
    if age > max_age:
        error = f"; last error: {health.last_error}" if health.last_error else ""
        return False, f"last good refresh {age:.0f}s ago, over the {max_age:g}s limit{error}"
    failing = f" (the last attempt failed: {health.last_error})" if health.last_error else ""
    return True, f"healthy: generation {health.generation}, last good refresh {age:.0f}s ago{failing}"
