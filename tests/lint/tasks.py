"""Task definitions for the linter's tests: one that passes every rule, and helpers to break it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from sidecar.lint import Finding, lint

EXAMPLES = Path(__file__).resolve().parents[2] / "task-definitions"


def good_task() -> dict[str, Any]:
    """A fresh copy of the Fargate example, which passes every rule."""
    return copy.deepcopy(json.loads((EXAMPLES / "fargate.json").read_text()))


def refresh_task() -> dict[str, Any]:
    """A fresh copy of the Fargate refresh-mode example, which passes every rule."""
    return copy.deepcopy(json.loads((EXAMPLES / "fargate-refresh.json").read_text()))


def container(task: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [c for c in task["containerDefinitions"] if c.get("name") == name]
    assert len(matches) == 1
    return matches[0]


def set_env(task: dict[str, Any], name: str, variable: str, value: str) -> None:
    entries = container(task, name).setdefault("environment", [])
    entries[:] = [e for e in entries if e["name"] != variable] + [{"name": variable, "value": value}]


def unset_env(task: dict[str, Any], name: str, variable: str) -> None:
    entries = container(task, name).get("environment", [])
    entries[:] = [e for e in entries if e["name"] != variable]


def hits(task: dict[str, Any], rule: str) -> list[Finding]:
    return [f for f in lint(task) if f.rule == rule]


def rules_hit(task: dict[str, Any]) -> set[tuple[str, str, str | None]]:
    return {(f.rule, f.severity, f.container) for f in lint(task)}
