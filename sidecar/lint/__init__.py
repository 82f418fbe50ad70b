"""``secrets-sidecar lint-task-definition``: check an ECS task definition that runs the secrets sidecar.

``lint`` runs every rule over a parsed task definition and returns the findings, errors first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from sidecar.lint.finding import Finding, Severity
from sidecar.lint.model import check_register_input
from sidecar.lint.plaintext import check_plain_secrets
from sidecar.lint.readability import check_readability
from sidecar.lint.refresh import (
    check_notify_pid_mode,
    check_notify_uid,
    check_refresh_essential,
    check_refresh_health_check,
)
from sidecar.lint.rules import (
    check_app_dependency,
    check_secrets_volume,
    check_sidecar_essential,
    check_sidecar_present,
    check_sidecar_readonly_root,
    check_sidecar_restart,
    check_sidecar_user,
    check_task_role,
)
from sidecar.lint.sidecar_config import check_sidecar_config
from sidecar.lint.start_timeout import check_start_timeout
from sidecar.lint.tmpfs import check_tmpfs_run_once

Rule = Callable[[Mapping[str, Any]], list[Finding]]
RULES: Final[tuple[Rule, ...]] = (
    check_register_input,
    check_sidecar_present,
    check_sidecar_essential,
    check_refresh_essential,
    check_sidecar_restart,
    check_app_dependency,
    check_start_timeout,
    check_refresh_health_check,
    check_secrets_volume,
    check_tmpfs_run_once,
    check_readability,
    check_task_role,
    check_sidecar_config,
    check_sidecar_user,
    check_sidecar_readonly_root,
    check_notify_pid_mode,
    check_notify_uid,
    check_plain_secrets,
)
_SEVERITY_ORDER: Final[dict[Severity, int]] = {"error": 0, "warning": 1}


def lint(task: Mapping[str, Any]) -> list[Finding]:
    """Every finding of every rule for ``task`` (RegisterTaskDefinition input), errors before warnings."""
    findings = [finding for rule in RULES for finding in rule(task)]
    return sorted(findings, key=lambda f: _SEVERITY_ORDER[f.severity])


__all__ = ["RULES", "Finding", "Severity", "lint"]
