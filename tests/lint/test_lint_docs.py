"""The reference page documents exactly the rules the linter has, each with the severities it reports."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "sidecar" / "lint").glob("*.py"))
DOC = ROOT / "docs" / "lint-task-definition.md"


def rules_in_code() -> dict[str, set[str]]:
    """Rule id -> the severities the code reports it with (ids written out, or through a module constant)."""
    found: dict[str, set[str]] = {}
    for source in SOURCES:
        text = source.read_text()
        constants = dict(re.findall(r'^([A-Z_]+): Final = "([a-z]+(?:-[a-z]+)+)"', text, re.MULTILINE))
        pattern = r'Finding\(\s*(?:rule=)?("[a-z-]+"|[A-Z_]+),\s*(?:severity=)?"(error|warning)"'
        findings = re.findall(pattern, text)
        # Every Finding the module builds is one this reads: a rule built another way cannot go unnoticed.
        assert len(findings) == len(re.findall(r"\bFinding\(", text)), f"{source.name}: a Finding this cannot read"
        for rule, severity in findings:
            rule_id = rule.strip('"') if rule.startswith('"') else constants[rule]
            found.setdefault(rule_id, set()).add(severity)
    return found


def rules_in_table(doc: str) -> dict[str, set[str]]:
    rows = re.findall(r"^\| `([a-z-]+)` \| ([a-z /]+) \|", doc, re.MULTILINE)
    return {rule: set(severity.split(" / ")) for rule, severity in rows}


def test_every_rule_has_a_section_and_a_table_row_with_its_severities_and_nothing_else_does() -> None:
    doc = DOC.read_text()
    in_code = rules_in_code()
    assert rules_in_table(doc) == in_code
    sections = dict(re.findall(r"^### `([a-z-]+)` \(([a-z ]+)\)", doc, re.MULTILINE))
    assert {rule: set(severity.split(" or ")) for rule, severity in sections.items()} == in_code
