"""Render findings for people (text) or programs (JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from sidecar.lint.finding import Finding

OutputFormat = Literal["text", "json"]


def counts(findings: Sequence[Finding]) -> tuple[int, int]:
    errors = sum(1 for f in findings if f.severity == "error")
    return errors, len(findings) - errors


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on, or UTF-8 cannot encode, escaped.

    Container names and paths come from the document: a newline in one must not forge a finding, and a lone
    surrogate must not stop the report half-way.
    """
    if text.isprintable():
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def render_text(source: str, findings: Sequence[Finding]) -> str:
    source = printable(source)
    lines = []
    for finding in findings:
        where = f" [{printable(finding.container)}]" if finding.container else ""
        lines.append(f"{source}: {finding.severity} {finding.rule}{where}: {printable(finding.message)}")
        lines.append(f"    fix: {printable(finding.fix)}")
    errors, warnings = counts(findings)
    verdict = "fails" if errors else "passes"
    lines.append(f"{source}: {verdict}: {_plural(errors, 'error')}, {_plural(warnings, 'warning')}")
    return "\n".join(lines) + "\n"


def render_json(source: str, findings: Sequence[Finding]) -> str:
    errors, warnings = counts(findings)
    document = {
        "file": source,
        "findings": [finding.as_dict() for finding in findings],
        "errors": errors,
        "warnings": warnings,
    }
    return json.dumps(document, indent=2) + "\n"


def render(output_format: OutputFormat, source: str, findings: Sequence[Finding]) -> str:
    return render_json(source, findings) if output_format == "json" else render_text(source, findings)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
