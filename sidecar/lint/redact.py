"""Keep a task definition's values out of the linter's messages.

The sidecar's own configuration errors quote what they reject (``valueFrom 'postgres://user:pw@db' is not
...``), which is right inside the container and wrong in a report about a task definition: a value
misplaced in ``environment`` may be the very secret that belongs in a secret store. Every value of the
sidecar's environment and command, and every string inside its JSON settings, is hidden: whole, in its
quoted forms, as any quoted part of one, and as any run of 8 or more of its characters (a value cut short).
Names of files are kept: they are configuration, and the
message needs them to say which entry is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Final

HIDDEN: Final = "<value hidden>"
# Shorter values are not replaced where they stand unquoted: "60" or "true" would hide parts of the
# message's own words and numbers. Quoted, they are still hidden.
MIN_UNQUOTED_LENGTH: Final = 4
MAX_JSON_DEPTH: Final = 64
# A run this long shared with a value is hidden wherever it stands; shorter shared runs are ordinary words
# ("secret", "prod/") more often than pieces of a value.
MIN_FRAGMENT: Final = 8


def hide_values(message: str, values: Iterable[str], shown: Iterable[str] = ()) -> str:
    """``message`` with every occurrence of ``values`` (every quoted part, every long run) replaced by HIDDEN.

    A quoted string equal to one of ``shown`` stays.
    """
    secrets = sorted({v for v in values if v}, key=len, reverse=True)
    keep = set(shown)
    for value in secrets:
        for form in (repr(value), json.dumps(value), json.dumps(value, ensure_ascii=False)):
            message = message.replace(form, HIDDEN)
        if len(value) >= MIN_UNQUOTED_LENGTH:
            message = message.replace(value, HIDDEN)

    message = _hide_quoted(message, secrets, keep)
    return _hide_fragments(message, [*secrets, *(_escaped_forms(v) for v in secrets)])


def _escaped_forms(value: str) -> str:
    return repr(value)[1:-1]


def _hide_fragments(message: str, secrets: list[str]) -> str:
    """Replace every run of at least MIN_FRAGMENT characters that is also part of a secret.

    Catches what the forms above miss: a value cut short (``'postgres://app:pw@db.inter...``), or only
    part of one, shown without quotes.
    """
    out: list[str] = []
    index = 0
    while index < len(message):
        end = index + MIN_FRAGMENT
        if end <= len(message) and any(message[index:end] in value for value in secrets):
            while end < len(message) and any(message[index : end + 1] in value for value in secrets):
                end += 1
            out.append(HIDDEN)
            index = end
        else:
            out.append(message[index])
            index += 1
    return "".join(out)


def _hide_quoted(message: str, secrets: list[str], keep: set[str]) -> str:
    """Replace each quoted part of ``message`` that is part of a secret.

    Quotes are paired by trying every quote character as an opening one, so that an apostrophe in the
    prose ("the sidecar's") cannot pair with the opening quote of a value and leave the value shown.
    """
    out: list[str] = []
    position = 0
    start = 0
    while start < len(message):
        quote = message[start]
        end = _closing(message, start) if quote in "'\"" else -1
        if end < 0:
            start += 1
            continue
        inner = message[start + 1 : end]
        if inner and inner not in keep and inner != HIDDEN and any(
            inner in value or _unescaped(inner) in value for value in secrets
        ):
            out += [message[position:start], HIDDEN]
            position = start = end + 1
        else:
            start += 1
    out.append(message[position:])
    return "".join(out)


def _closing(message: str, start: int) -> int:
    """Index of the quote that closes the one at ``start`` (backslash escapes skipped), or -1."""
    index = start + 1
    while index < len(message):
        if message[index] == "\\":
            index += 2
            continue
        if message[index] == message[start]:
            return index
        index += 1
    return -1


def json_strings(text: str, *, skip_keys: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every string in the JSON document ``text`` (keys excluded, and values under ``skip_keys``).

    Nothing when ``text`` is not JSON or nests deeper than MAX_JSON_DEPTH.
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return
    stack: list[tuple[object, int]] = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            yield node
        elif depth < MAX_JSON_DEPTH and isinstance(node, list):
            stack += [(item, depth + 1) for item in node]
        elif depth < MAX_JSON_DEPTH and isinstance(node, dict):
            stack += [(item, depth + 1) for key, item in node.items() if key not in skip_keys]


def _unescaped(text: str) -> str:
    try:
        decoded: str = text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return text
    return decoded
