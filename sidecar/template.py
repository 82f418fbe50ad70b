"""A small, sandboxed template language for files built from several secrets.

    postgresql://{{ db.username | url }}:{{ db.password | url }}@{{ db.host }}:{{ db.port }}/app

A placeholder is ``{{ input }}`` (the input's whole value) or ``{{ input.key }}`` (one top-level key of a
JSON object value), optionally followed by one escaping filter: ``url`` (a URL component), ``sh`` (a POSIX
shell word), ``json`` (a JSON string literal), ``pgpass`` (a .pgpass field). ``{{ "{{" }}`` writes a literal
``{{``. There is nothing else: no expressions, no code, no access to files or the environment, so a template
cannot do more than place values. A missing input or key is an error naming it, never an empty string.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from sidecar.content import ContentProblem, json_document, json_text, utf8
from sidecar.errors import ConfigError, FetchError
from sidecar.secret import SecretBytes
from sidecar.shell import shell_quoted_text

_PLACEHOLDER = re.compile(
    r"""\{\{\s*(?:
        "(?P<literal>[^"]*)"
      | (?P<input>[A-Za-z_][A-Za-z0-9_]*)(?:\.(?P<key>[^\s|{}]+))?(?:\s*\|\s*(?P<filter>[a-z]+))?
    )\s*\}\}""",
    re.VERBOSE,
)


def _pgpass_field(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


FILTERS: Final[dict[str, Callable[[str], str]]] = {
    "url": lambda text: quote(text, safe=""),
    "sh": shell_quoted_text,
    "json": _json_string,
    "pgpass": _pgpass_field,
}


@dataclass(frozen=True)
class Placeholder:
    input: str
    key: str | None
    filter: str | None

    def describe(self) -> str:
        return "{{ " + self.input + (f".{self.key}" if self.key else "") + " }}"


Segment = str | Placeholder


@dataclass(frozen=True)
class Template:
    segments: tuple[Segment, ...]

    @property
    def inputs(self) -> frozenset[str]:
        return frozenset(s.input for s in self.segments if isinstance(s, Placeholder))


def parse_template(text: str, where: str) -> Template:
    """Parse a template; any ``{{`` that does not open a valid placeholder is an error, with its position."""
    segments: list[Segment] = []
    position = 0
    while True:
        start = text.find("{{", position)
        if start < 0:
            segments.append(text[position:])
            break
        match = _PLACEHOLDER.match(text, start)
        if not match:
            line = text.count("\n", 0, start) + 1
            snippet = text[start : start + 30].split("\n", 1)[0]
            raise ConfigError(f"{where}: malformed placeholder at line {line}: {snippet!r}")
        segments.append(text[position:start])
        if match["literal"] is not None:
            segments.append(match["literal"])
        else:
            name = match["filter"]
            if name is not None and name not in FILTERS:
                line = text.count("\n", 0, start) + 1
                close = difflib.get_close_matches(name, sorted(FILTERS), n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise ConfigError(
                    f"{where}: unknown filter {name!r} at line {line} ({hint}known: {', '.join(sorted(FILTERS))})"
                )
            segments.append(Placeholder(match["input"], match["key"], name))
        position = match.end()
    return Template(tuple(s for s in segments if s != ""))


def render_template(template: Template, values: Mapping[str, SecretBytes], where: str, max_bytes: int) -> SecretBytes:
    """Fill the template. Errors name the entry, the placeholder and the key, never a value. The output is
    bounded like every value (SIDECAR_MAX_BYTES): one input placed many times cannot make it larger."""
    parts: list[bytes] = []
    size = 0
    for segment in template.segments:
        if isinstance(segment, str):
            text = segment
        else:
            value = _lookup(segment, values, where)
            try:
                utf8(value)  # before a filter: ``url`` would trip over a lone surrogate
            except ContentProblem as problem:
                raise FetchError(f"{where}: {segment.describe()}: the value {problem.reason}") from None
            text = FILTERS[segment.filter](value) if segment.filter else value
        part = text.encode("utf-8")  # the template's own text is checked when it is parsed
        size += len(part)
        if size > max_bytes:
            raise FetchError(f"{where}: the rendered template is larger than SIDECAR_MAX_BYTES ({max_bytes} bytes)")
        parts.append(part)
    return SecretBytes(b"".join(parts))


def _lookup(placeholder: Placeholder, values: Mapping[str, SecretBytes], where: str) -> str:
    if placeholder.input not in values:
        raise FetchError(f"{where}: {placeholder.describe()} has no input {placeholder.input!r}")
    raw = values[placeholder.input].reveal()
    if placeholder.key is None:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FetchError(f"{where}: input {placeholder.input!r} is not UTF-8 text") from None
    try:
        document = json_document(raw)
    except ContentProblem as problem:
        raise FetchError(
            f"{where}: {placeholder.describe()} needs a JSON object, but the input {problem.reason}"
        ) from None
    if not isinstance(document, dict):
        raise FetchError(f"{where}: {placeholder.describe()} needs a JSON object, but the input is not one")
    if placeholder.key not in document:
        raise FetchError(f"{where}: {placeholder.describe()}: the input has no key {placeholder.key!r}")
    try:
        return json_text(document[placeholder.key])
    except ContentProblem as problem:
        raise FetchError(f"{where}: {placeholder.describe()}: the value {problem.reason}") from None
