"""The task definitions the project ships: every ``task-definitions/*.json``, and the README's snippet."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
README_SNIPPET = "README.md"


def shipped_task_definitions() -> dict[str, dict[str, Any]]:
    """File name -> parsed task definition, whatever files exist; the README's snippet as ``README.md``."""
    found = {path.name: json.loads(path.read_text()) for path in sorted((REPO / "task-definitions").glob("*.json"))}
    found[README_SNIPPET] = readme_task()
    return found


def readme_task() -> dict[str, Any]:
    """The README's task definition snippet. When it is a single container definition, it is wrapped as the
    text after it says: an app that depends on it and mounts the volume read-only; every inline
    `"key": value` in that paragraph becomes part of the app (``readOnly`` of its mount)."""
    text = (REPO / "README.md").read_text()
    match = re.search(r"## Use it in a task definition\s*```json\n(.*?)\n```\s*\n(.*?)\n\n", text, re.DOTALL)
    assert match, "README.md has no task definition snippet"
    snippet: dict[str, Any] = json.loads(match[1])
    if "containerDefinitions" in snippet:
        return snippet
    sidecar = snippet
    app: dict[str, Any] = {"name": "app", "image": "my-app:latest", "essential": True}
    read_only = False
    for span in re.findall(r"`(\"\w+\": [^`]+)`", match[2]):
        member = json.loads("{" + span + "}")
        read_only = read_only or member.pop("readOnly", False) is True
        app.update(member)
    app["mountPoints"] = [{**m, "readOnly": read_only} for m in sidecar["mountPoints"]]
    volumes = [{"name": m["sourceVolume"]} for m in sidecar["mountPoints"]]
    return {"family": "readme", "volumes": volumes, "containerDefinitions": [sidecar, app]}
