"""Rules for the file names entries write: always relative, always inside the output directory.

A name is rejected rather than rewritten: a silently "fixed" path is a path nobody reviewed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Final

MAX_COMPONENT_BYTES: Final = 255
MAX_NAME_BYTES: Final = 1024
RESERVED_PREFIX: Final = ".."  # the committed set's internals and the manifest live under such names
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A lone surrogate: a JSON "\ud800" escape, or an environment variable's invalid UTF-8 bytes as Python decodes them.
NOT_UTF8: Final = "is not valid UTF-8 text (it holds a lone surrogate or undecodable bytes)"


def is_utf8(text: str) -> bool:
    """Whether ``text`` is valid Unicode text, so that a file name made of it is valid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a file name under the output directory, or None when it can."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty string"
    if "\x00" in name:
        return "contains a NUL character"
    if not is_utf8(name):
        return NOT_UTF8
    if name.startswith("/"):
        return "is absolute; names are relative to the output directory"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES} bytes"
    for component in name.split("/"):
        problem = component_problem(component)
        if problem:
            return problem
    return None


def component_problem(component: str) -> str | None:
    """Why ``component`` cannot be one path component, or None when it can."""
    if component == "":
        return "has an empty path component ('//' or a trailing '/')"
    if component in (".", ".."):
        return f"has a {component!r} component"
    if component.startswith(RESERVED_PREFIX):
        return "has a component beginning with '..' (reserved for the sidecar's own files)"
    if "/" in component or "\x00" in component:
        return "contains '/' or NUL"
    if not is_utf8(component):
        return NOT_UTF8
    if len(component.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES:
        return f"has a component longer than {MAX_COMPONENT_BYTES} bytes"
    if any(unicodedata.category(char) == "Cc" for char in component):
        return "contains a control character"
    return None


def collision_problems(
    names: Iterable[str], directories: Iterable[str] = (), labels: Iterable[str] | None = None
) -> list[str]:
    """Pairs of names that would land on the same file, or where a file would need to be a directory.

    ``directories`` are names that are directories rather than files (``expand`` entries): other names may
    lie inside them; the files they will hold are only known after fetching, and checked again then.
    ``labels`` (one per name) are how messages name them, when a name must not be shown (it holds a JSON key).
    """
    as_directories = {unicodedata.normalize("NFC", name) for name in directories}
    listed = list(names)
    shown = [repr(name) for name in listed] if labels is None else [repr(label) for label in labels]
    problems = []
    seen: dict[str, str] = {}  # normalized name -> how messages show it
    for name, label in zip(listed, shown, strict=True):
        key = unicodedata.normalize("NFC", name)
        if key in seen:
            problems.append(f"names {seen[key]} and {label} are the same file")
        else:
            seen[key] = label
    for key, label in seen.items():
        parts = key.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in seen and parent not in as_directories:
                problems.append(f"{seen[parent]} is a file, so {label} cannot be inside it")
    return problems


def is_env_name(name: str) -> bool:
    return bool(_ENV_NAME.match(name))
