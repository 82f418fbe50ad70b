"""The one result type every task definition rule returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Finding:
    """One problem in a task definition.

    ``container`` is the container's name, or None when the problem belongs to the task as a whole.
    ``message`` says what is wrong and why it matters; ``fix`` says what to change. Neither ever quotes
    an environment value.
    """

    rule: str
    severity: Severity
    container: str | None
    message: str
    fix: str

    def as_dict(self) -> dict[str, str | None]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "container": self.container,
            "message": self.message,
            "fix": self.fix,
        }
