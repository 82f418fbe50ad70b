"""The stand-in app of the task definition runs: a checker that reads each file the sidecar is configured to write
and compares it with the value seeded into moto, by SHA-256, printing names and sizes only."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sidecar.config import load_settings
from sidecar.lint.task import containers, environment, is_sidecar, mount_points, output_dir
from tests.conftest import REGION

FAST_HEALTH_INTERVAL = 2  # seconds: Docker runs the first health check one interval after the start

# Reads /root/<name> for every name=sha256 argument; prints what it found, never a value.
CHECKER = """
import hashlib, os, sys
root, wanted = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])
print(f"app: {root} holds {len(os.listdir(root))} entries")
ok = True
for name, digest in wanted.items():
    try:
        data = open(os.path.join(root, name), "rb").read()
    except OSError as exc:
        print(f"app: cannot read {name}: {type(exc).__name__}")
        ok = False
        continue
    same = hashlib.sha256(data).hexdigest() == digest
    ok = ok and same
    print(f"app: read {name} ({len(data)} bytes, {'as seeded' if same else 'NOT as seeded'}) "
          f"as uid {os.getuid()} gid {os.getgid()}")
sys.exit(0 if ok else 1)
"""


def checker_command(root: str, expected: Mapping[str, str]) -> list[str]:
    """argv of the stand-in app: read every file of ``expected`` (name -> SHA-256) under ``root``."""
    return ["python", "-c", CHECKER, root, *(f"{name}={digest}" for name, digest in expected.items())]


def sidecars(task: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(name, container) for name, container in containers(task) if is_sidecar(container)]


def expected_files(task: Mapping[str, Any], contents: Mapping[str, str]) -> dict[str, str]:
    """Each file the task's sidecar writes -> the SHA-256 of what the seed put behind its reference."""
    ((_, sidecar),) = sidecars(task)
    environ = {"AWS_REGION": REGION, **environment(sidecar)}
    settings = load_settings({}, environ, process_uid=0, process_gid=0)
    return {e.name: hashlib.sha256(contents[e.value_from].encode()).hexdigest() for e in settings.entries}


def readers(task: Mapping[str, Any]) -> dict[str, str]:
    """Every container that mounts the sidecar's volume -> the path it mounts it at."""
    ((_, sidecar),) = sidecars(task)
    volumes = {m["sourceVolume"] for m in mount_points(sidecar) if m.get("containerPath") == output_dir(sidecar)}
    return {
        c["name"]: m["containerPath"]
        for c in task["containerDefinitions"] if not is_sidecar(c)
        for m in mount_points(c) if m.get("sourceVolume") in volumes
    }
