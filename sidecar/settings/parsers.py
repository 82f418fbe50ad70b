"""One parser per kind of scalar value: ``(source, raw) -> value`` or ``ConfigError`` naming the source.

``source`` is where the value came from (a flag, an environment variable, a config file key or an entry's
key), so that a message points at what to correct. ``raw`` is a string (flags, environment) or any JSON value
(the config file). Pure.
"""

from __future__ import annotations

import difflib
import json
import signal
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sidecar.errors import ConfigError
from sidecar.metrics import namespace_problem
from sidecar.names import NOT_UTF8, is_utf8, name_problem
from sidecar.references import parse_role_arn as role_arn_shape
from sidecar.settings.model import MAX_SECONDS

C = TypeVar("C", bound=str)


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the nearest of ``choices``, or nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def parse_json(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ConfigError(f"{what} is JSON nested too deeply to read") from None
    except (ValueError, UnicodeDecodeError) as exc:
        position = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        # from None: the decoder's exception keeps the whole document, which may hold secrets.
        raise ConfigError(f"{what} is not valid JSON{position}: {reason}") from None


def parse_mode(source: str, raw: object) -> int:
    text = str(raw) if isinstance(raw, str) else ""
    digits = text[2:] if text.lower().startswith("0o") else text
    if not digits or len(digits) > 4 or any(c not in "01234567" for c in digits):
        raise ConfigError(f"{source}: {raw!r} is not an octal mode string such as \"0400\" or \"0440\"")
    mode = int(digits, 8)
    if mode & ~0o777:
        raise ConfigError(f"{source}: {raw!r} sets special bits (setuid, setgid or sticky); use 0400-style modes")
    if mode & 0o033:
        raise ConfigError(f"{source}: {raw!r} lets group or others write or execute the file")
    if not mode & 0o400:
        raise ConfigError(f"{source}: {raw!r} does not let the owner read the file")
    return mode


def parse_int(source: str, raw: object, minimum: int, maximum: int | None = None) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise ConfigError(f"{source}: {shown(raw)} is not a whole number")
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{source}: {shown(raw)} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{source}: {shown(value)} is below the minimum of {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{source}: {shown(value)} is above the maximum of {maximum}")
    return value


def whole_number(minimum: int, maximum: int | None = None) -> Callable[[str, object], int]:
    return lambda source, raw: parse_int(source, raw, minimum, maximum)


def parse_id(source: str, raw: object) -> int:
    value = parse_int(source, raw, 0)
    if value > 2**32 - 2:
        raise ConfigError(f"{source}: {value} is not a valid uid or gid")
    return value


def parse_seconds(source: str, raw: object) -> float:
    try:
        value = float(raw) if isinstance(raw, (int, float, str)) and not isinstance(raw, bool) else None
    except (ValueError, OverflowError):  # OverflowError: an integer past any float
        value = None
    if value is None or not value > 0 or value == float("inf"):
        raise ConfigError(f"{source}: {shown(raw)} is not a positive number of seconds")
    if value > MAX_SECONDS:
        raise ConfigError(f"{source}: {value:g} seconds is more than the maximum of {MAX_SECONDS} (one week)")
    return value


def shown(raw: object, limit: int = 40) -> str:
    """A configuration value as messages quote it: repr, cut short (a 5,000-digit number is one line too)."""
    text = repr(raw)
    return text if len(text) <= limit else f"{text[:limit]}..."


def choice(choices: tuple[C, ...]) -> Callable[[str, object], C]:
    """A parser for one of ``choices``, case-insensitive; typed as the choices' ``Literal``."""

    def parse(source: str, raw: object) -> C:
        value = str(raw).lower() if isinstance(raw, str) else ""
        for known in choices:
            if value == known:
                return known
        raise ConfigError(f"{source}: {raw!r} is not one of {', '.join(choices)}")

    return parse


def parse_output_dir(source: str, raw: object) -> str:
    if not isinstance(raw, str) or not raw or "\x00" in raw:
        raise ConfigError(f"{source}: must be a directory path")
    if not is_utf8(raw):
        raise ConfigError(f"{source}: the directory path {NOT_UTF8}")
    return raw


def parse_env_file(source: str, raw: object) -> str:
    problem = name_problem(raw)
    if problem or "/" in str(raw):
        raise ConfigError(f"{source}: the env file name {raw!r} {problem or 'must be a plain file name'}")
    return str(raw)


def parse_region(source: str, raw: object) -> str:
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"{source}: must be a region name such as eu-west-1")
    return raw


def parse_role_arn(source: str, raw: object) -> str:
    try:
        return role_arn_shape(raw)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc.message}") from None


def parse_signal(source: str, raw: object) -> int:
    name = str(raw).upper() if isinstance(raw, str) else ""
    name = name if name.startswith("SIG") else f"SIG{name}"
    number = getattr(signal, name, None)
    if not isinstance(number, int) or name.startswith("SIG_") or name in ("SIGKILL", "SIGSTOP"):
        raise ConfigError(f"{source}: {raw!r} is not a signal name such as HUP or USR1")
    return int(number)


def parse_process_name(source: str, raw: object) -> str:
    if not isinstance(raw, str) or not raw or "/" in raw or "\x00" in raw or not is_utf8(raw):
        raise ConfigError(f"{source}: must be a process name such as nginx")
    return raw


def parse_command(source: str, raw: object) -> tuple[str, ...]:
    value = parse_json(raw, source) if isinstance(raw, str) else raw
    if not isinstance(value, list) or not value or not all(isinstance(a, str) and a for a in value):
        raise ConfigError(f"{source}: must be a JSON array of strings, e.g. [\"/usr/bin/reload\", \"--now\"]")
    for position, argument in enumerate(value):
        # exec() cannot pass either: refused now rather than at the first rotation.
        if "\x00" in argument or not is_utf8(argument):
            raise ConfigError(f"{source}: argument #{position} holds a NUL character or is not valid UTF-8")
    return tuple(value)


def parse_namespace(source: str, raw: object) -> str:
    problem = namespace_problem(raw) if isinstance(raw, str) else "must be a string"
    if problem:
        raise ConfigError(f"{source}: the CloudWatch namespace {shown(raw)} {problem}")
    return str(raw)
