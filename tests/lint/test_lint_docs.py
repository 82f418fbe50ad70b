"""The reference page documents exactly the rules the linter has."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "sidecar" / "lint").glob("*.py"))
DOC = ROOT / "docs" / "lint-task-definition.md"


def rule_ids_in_code() -> set[str]:
    ids: set[str] = set()
    for source in SOURCES:
        text = source.read_text()
        ids |= set(re.findall(r'^RULE: Final = "([a-z-]+)"', text, re.MULTILINE))
        ids |= set(re.findall(r'Finding\(\s*"([a-z-]+)", "(?:error|warning)"', text))
    return ids


def test_every_rule_has_a_section_and_a_table_row_and_nothing_else_does() -> None:
    doc = DOC.read_text()
    in_code = rule_ids_in_code()
    assert len(in_code) == 18, in_code
    assert set(re.findall(r"^### `([a-z-]+)`", doc, re.MULTILINE)) == in_code
    assert set(re.findall(r"^\| `([a-z-]+)` \|", doc, re.MULTILINE)) == in_code
