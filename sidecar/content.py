"""Secret content read as JSON or as text. Every way that can fail becomes a short reason that never quotes
the content: the decoder's own exceptions carry the document, so none of them leaves this module.
"""

from __future__ import annotations

import json


class ContentProblem(Exception):
    """Content that cannot be read as asked; ``reason`` completes "the value ..."."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


NOT_JSON = "is not JSON"
TOO_DEEP = "is JSON nested too deeply to read"
LONE_SURROGATE = "holds an escaped lone surrogate (\\ud800-\\udfff), which UTF-8 cannot represent"


def json_document(raw: bytes) -> object:
    """The JSON document ``raw`` holds."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ContentProblem(TOO_DEEP) from None
    except (ValueError, UnicodeDecodeError):
        raise ContentProblem(NOT_JSON) from None


def json_text(value: object) -> str:
    """A JSON string as its text; anything else as compact, key-sorted JSON, so output is deterministic."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    except RecursionError:
        raise ContentProblem(TOO_DEEP) from None


def utf8(text: str) -> bytes:
    """``text`` as UTF-8. A JSON string may escape a lone surrogate (``"\\ud800"``), which no UTF-8 file can
    hold: that is bad content, not a crash."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ContentProblem(LONE_SURROGATE) from None
