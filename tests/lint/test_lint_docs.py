"""The reference page documents exactly the rules the linter has, each with the severities it reports."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "sidecar" / "lint").glob("*.py"))
DOC = ROOT / "docs" / "lint-task-definition.md"


def rules_in_code() -> dict[str, set[str]]:
    """Rule id -> the severities the code reports it with."""
    found: dict[str, set[str]] = {}
    for source in SOURCES:
        text = source.read_text()
        constant = re.search(r'^RULE: Final = "([a-z-]+)"', text, re.MULTILINE)
        for rule, severity in re.findall(r'Finding\(\s*"([a-z-]+)",\s*"(error|warning)"', text):
            found.setdefault(rule, set()).add(severity)
        for severity in re.findall(r'Finding\(\s*(?:rule=)?RULE,\s*(?:severity=)?"(error|warning)"', text):
            assert constant, source
            found.setdefault(constant[1], set()).add(severity)
    return found


def rules_in_table(doc: str) -> dict[str, set[str]]:
    rows = re.findall(r"^\| `([a-z-]+)` \| ([a-z /]+) \|", doc, re.MULTILINE)
    return {rule: set(severity.split(" / ")) for rule, severity in rows}


def test_every_rule_has_a_section_and_a_table_row_with_its_severities_and_nothing_else_does() -> None:
    doc = DOC.read_text()
    in_code = rules_in_code()
    assert len(in_code) == 23, sorted(in_code)
    assert rules_in_table(doc) == in_code
    sections = dict(re.findall(r"^### `([a-z-]+)` \(([a-z ]+)\)", doc, re.MULTILINE))
    assert {rule: set(severity.split(" or ")) for rule, severity in sections.items()} == in_code
