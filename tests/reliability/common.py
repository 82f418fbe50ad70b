"""Shared by the reliability tests: the expected set, reading what the app sees, and figures."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.helpers import payload_dirs

GET_SECRET = "secretsmanager.GetSecretValue"
BATCH_GET = "secretsmanager.BatchGetSecretValue"
GET_PARAMETERS = "AmazonSSM.GetParameters"
S3_GET = "s3 GET"


@dataclass(frozen=True)
class MixedSet:
    entries: list[dict[str, Any]]
    expected: dict[str, tuple[bytes, str]]  # relative path -> (bytes, mode)
    bucket: str

    @property
    def secrets(self) -> str:
        return json.dumps(self.entries)


def written(directory: Path) -> dict[str, tuple[bytes, str]]:
    """Every file the app sees through the links (bytes and mode), by relative path; the sidecar's own
    ``..`` files are left out."""
    found = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if relative.parts[0].startswith(".."):
            continue
        targets = sorted(path.rglob("*")) if path.is_symlink() and path.is_dir() else [path]
        for inner in targets:
            if inner.is_file():
                name = relative / inner.relative_to(path) if inner != path else relative
                found[str(name)] = (inner.read_bytes(), f"{stat.S_IMODE(inner.stat().st_mode):04o}")
    return found


def assert_clean(directory: Path) -> None:
    """Exactly one payload, the one ``..data`` names, and no temporary link."""
    current = os.readlink(directory / "..data")
    assert payload_dirs(directory) == [current], os.listdir(directory)
    assert not os.path.lexists(directory / "..data_tmp")


def figure(name: str, **values: Any) -> None:
    """One line a reader of the test log can quote: ``FIGURE name key=value ...``."""
    print(f"FIGURE {name} " + " ".join(f"{k}={v}" for k, v in values.items()))
