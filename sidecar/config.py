"""Load and validate the sidecar's configuration.

Three sources, highest precedence first: command-line flags, ``SIDECAR_*`` environment variables, and the JSON
file named by ``SIDECAR_CONFIG_FILE``. Everything is validated here, before any network access, into frozen
dataclasses; the rest of the program never sees raw strings.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypedDict

from sidecar.access import Access, env_file_problem, world_readable_warning
from sidecar.errors import ConfigError
from sidecar.names import NOT_UTF8, collision_problems, is_env_name, is_utf8, name_problem
from sidecar.references import Reference, parse_value_from
from sidecar.template import Template, parse_template

ENV_PREFIX: Final = "SIDECAR_"
SHORTHAND_PREFIX: Final = "SIDECAR_SECRET_"
DEFAULT_OUTPUT_DIR: Final = "/run/secrets"
DEFAULT_FILE_MODE: Final = 0o400
DEFAULT_TIMEOUT_SECONDS: Final = 60.0
DEFAULT_MAX_BYTES: Final = 1024 * 1024
DEFAULT_CONCURRENCY: Final = 8
# Upper bounds: a duration past these is a typo, and past ~9e9 s the process's waits overflow.
MAX_SECONDS: Final = 7 * 24 * 3600  # SIDECAR_TIMEOUT, SIDECAR_REFRESH_INTERVAL, SIDECAR_HEALTH_MAX_AGE
MAX_MAX_BYTES: Final = 1024**3  # SIDECAR_MAX_BYTES: no secret comes near it; memory is bounded by it
MAX_CONCURRENCY: Final = 64  # threads and pooled connections; far past any quota's useful parallelism
ECS_MAX_START_TIMEOUT_SECONDS: Final = 120

SmBatch = Literal["auto", "always", "never"]
LogFormat = Literal["json", "console"]
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
ENTRY_KEYS: Final = ("name", "valueFrom", "mode", "uid", "gid", "optional", "expand", "template", "templateFile",
                     "inputs")
TEMPLATE_KEYS: Final = ("name", "template", "templateFile", "inputs", "mode", "uid", "gid")


@dataclass(frozen=True)
class Entry:
    """One file to write (or directory, with ``expand``): from one reference, or from a template whose
    inputs are references."""

    name: str
    value_from: str
    reference: Reference | None
    mode: int
    uid: int
    gid: int
    optional: bool = False
    expand: bool = False
    template: Template | None = None
    inputs: tuple[tuple[str, str, Reference], ...] = ()  # (input name, valueFrom, reference), templates only

    @property
    def references(self) -> tuple[Reference, ...]:
        return (self.reference,) if self.reference else tuple(ref for _, _, ref in self.inputs)


@dataclass(frozen=True)
class Settings:
    entries: tuple[Entry, ...]
    output_dir: str = DEFAULT_OUTPUT_DIR
    file_mode: int = DEFAULT_FILE_MODE
    uid: int = -1
    gid: int = -1
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    log_level: str = "info"
    log_format: LogFormat = "json"
    max_bytes: int = DEFAULT_MAX_BYTES
    env_file: str | None = None
    sm_batch: SmBatch = "auto"
    concurrency: int = DEFAULT_CONCURRENCY
    region: str | None = None
    refresh_interval: float | None = None  # None: run once and exit
    health_max_age: float | None = None
    notify_signal: int | None = None
    notify_process: str | None = None
    notify_command: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Option:
    """One scalar setting: its key in the config file, its environment variable and its flag."""

    key: str
    env: str
    flag: str
    help: str


OPTIONS: Final = (
    Option("outputDir", "SIDECAR_OUTPUT_DIR", "--output-dir", f"directory to write into ({DEFAULT_OUTPUT_DIR})"),
    Option("fileMode", "SIDECAR_FILE_MODE", "--file-mode", "octal mode of every file (default 0400)"),
    Option("uid", "SIDECAR_UID", "--uid", "owner of the files (default: the process's uid)"),
    Option("gid", "SIDECAR_GID", "--gid", "group of the files (default: the process's gid)"),
    Option("timeout", "SIDECAR_TIMEOUT", "--timeout", "overall deadline in seconds (default 60)"),
    Option("logLevel", "SIDECAR_LOG_LEVEL", "--log-level", "debug, info, warning or error (default info)"),
    Option("logFormat", "SIDECAR_LOG_FORMAT", "--log-format", "json (default) or console"),
    Option("maxBytes", "SIDECAR_MAX_BYTES", "--max-bytes", "largest value accepted per entry (default 1048576)"),
    Option("envFile", "SIDECAR_ENV_FILE", "--env-file", "also write this dotenv file in the output directory"),
    Option("smBatch", "SIDECAR_SM_BATCH", "--sm-batch", "BatchGetSecretValue use: auto (default), always, never"),
    Option("concurrency", "SIDECAR_CONCURRENCY", "--concurrency",
           f"API calls in flight at once, 1-{MAX_CONCURRENCY} (default {DEFAULT_CONCURRENCY})"),
    Option("region", "SIDECAR_REGION", "--region", "region for references without one (default AWS_REGION)"),
    Option("refreshInterval", "SIDECAR_REFRESH_INTERVAL", "--refresh-interval",
           "keep running and check for new versions every N seconds (default: run once)"),
    Option("healthMaxAge", "SIDECAR_HEALTH_MAX_AGE", "--health-max-age",
           "healthcheck fails when the last good refresh is older (default 3 intervals)"),
    Option("notifySignal", "SIDECAR_NOTIFY_SIGNAL", "--notify-signal", "signal to send on change, e.g. HUP"),
    Option("notifyProcess", "SIDECAR_NOTIFY_PROCESS", "--notify-process", "name of the process to signal"),
    Option("notifyCommand", "SIDECAR_NOTIFY_COMMAND", "--notify-command", "JSON array: command to run on change"),
)
SECRETS_KEY: Final = "secrets"
SECRETS_ENV: Final = "SIDECAR_SECRETS"
CONFIG_FILE_ENV: Final = "SIDECAR_CONFIG_FILE"
KNOWN_ENV: Final = frozenset({*(o.env for o in OPTIONS), SECRETS_ENV, CONFIG_FILE_ENV})
FILE_KEYS: Final = (SECRETS_KEY, *(o.key for o in OPTIONS))


def load_settings(
    flags: Mapping[str, object],
    environ: Mapping[str, str],
    *,
    process_uid: int | None = None,
    process_gid: int | None = None,
) -> Settings:
    """Merge flags, environment and config file into validated ``Settings``.

    ``flags`` maps option keys (``outputDir``, ..., ``secrets``, ``configFile``) to values given on the
    command line; absent or None means not given.
    """
    _reject_unknown_env(environ)
    config_path = flags.get("configFile") or environ.get(CONFIG_FILE_ENV)
    from_file = _read_config_file(str(config_path)) if config_path else {}

    def pick(option: Option) -> tuple[str, object] | None:
        if flags.get(option.key) is not None:
            return option.flag, flags[option.key]
        if option.env in environ:
            return option.env, environ[option.env]
        if option.key in from_file:
            return f"{config_path}: {option.key}", from_file[option.key]
        return None

    values: dict[str, Any] = {}
    for option in OPTIONS:
        picked = pick(option)
        if picked is not None:
            source, raw = picked
            values[option.key] = _PARSERS[option.key](source, raw)

    warnings: list[str] = []
    file_mode = values.get("fileMode", DEFAULT_FILE_MODE)
    uid = values.get("uid", os.getuid() if process_uid is None else process_uid)
    gid = values.get("gid", os.getgid() if process_gid is None else process_gid)
    region = values.get("region") or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None
    defaults = _EntryDefaults(file_mode, uid, gid, region)

    raw_entries = _secret_list(flags, environ, from_file, config_path)
    entries = [_parse_entry(source, index, raw, defaults) for source, index, raw in raw_entries]
    entries += [_shorthand_entry(var, value, defaults) for var, value in sorted(environ.items())
                if var.startswith(SHORTHAND_PREFIX)]
    if not entries:
        raise ConfigError(
            f"no secrets configured: set {SECRETS_ENV} (a JSON array) or {SHORTHAND_PREFIX}<NAME>=<valueFrom>"
        )
    _check_entry_set(entries, values.get("envFile"))
    for entry in entries:
        if entry.mode & 0o004:
            warnings.append(f"{entry.name!r} will be readable by every user (mode {entry.mode:04o})")
    warnings += _check_env_file_access(entries, values.get("envFile"), Access(file_mode, uid, gid))
    timeout = values.get("timeout", DEFAULT_TIMEOUT_SECONDS)
    if timeout >= ECS_MAX_START_TIMEOUT_SECONDS:
        warnings.append(
            f"timeout {timeout:g}s is not below Fargate's largest startTimeout ({ECS_MAX_START_TIMEOUT_SECONDS}s), "
            "which ECS reads from the sidecar's container: on Fargate the task may stop before the sidecar says why"
        )
    refresh = _refresh_settings(values)
    return Settings(
        **refresh,
        entries=tuple(entries),
        output_dir=values.get("outputDir", DEFAULT_OUTPUT_DIR),
        file_mode=file_mode,
        uid=uid,
        gid=gid,
        timeout_seconds=timeout,
        log_level=values.get("logLevel", "info"),
        log_format=values.get("logFormat", "json"),
        max_bytes=values.get("maxBytes", DEFAULT_MAX_BYTES),
        env_file=values.get("envFile"),
        sm_batch=values.get("smBatch", "auto"),
        concurrency=values.get("concurrency", DEFAULT_CONCURRENCY),
        region=region,
        warnings=tuple(warnings),
    )


MIN_REFRESH_INTERVAL_SECONDS: Final = 1.0
HEALTH_INTERVALS: Final = 3


def _refresh_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    interval = values.get("refreshInterval")
    notify = [key for key in ("healthMaxAge", "notifySignal", "notifyProcess", "notifyCommand") if key in values]
    if interval is None:
        if notify:
            raise ConfigError(f"{notify[0]} applies only in refresh mode: set SIDECAR_REFRESH_INTERVAL")
        return {}
    if interval < MIN_REFRESH_INTERVAL_SECONDS:
        raise ConfigError(f"SIDECAR_REFRESH_INTERVAL: at least {MIN_REFRESH_INTERVAL_SECONDS:g} seconds")
    if ("notifySignal" in values) != ("notifyProcess" in values):
        raise ConfigError("SIDECAR_NOTIFY_SIGNAL and SIDECAR_NOTIFY_PROCESS go together: which signal, to whom")
    return {
        "refresh_interval": interval,
        "health_max_age": values.get("healthMaxAge", HEALTH_INTERVALS * interval),
        "notify_signal": values.get("notifySignal"),
        "notify_process": values.get("notifyProcess"),
        "notify_command": values.get("notifyCommand", ()),
    }


def logging_preferences(flags: Mapping[str, object], environ: Mapping[str, str]) -> tuple[str, LogFormat]:
    """Log level and format, read leniently so that even a configuration error is logged as asked."""
    level = str(flags.get("logLevel") or environ.get("SIDECAR_LOG_LEVEL", "info")).lower()
    fmt = str(flags.get("logFormat") or environ.get("SIDECAR_LOG_FORMAT", "json")).lower()
    return (level if level in LOG_LEVELS else "info"), ("console" if fmt == "console" else "json")


# --- sources -------------------------------------------------------------------------------------------


def _suggest(word: str, choices: object) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)  # type: ignore[call-overload]
    return f" (did you mean {close[0]}?)" if close else ""


def _reject_unknown_env(environ: Mapping[str, str]) -> None:
    for var in sorted(environ):
        if var.startswith(ENV_PREFIX) and var not in KNOWN_ENV and not var.startswith(SHORTHAND_PREFIX):
            raise ConfigError(f"unknown setting {var}{_suggest(var, KNOWN_ENV)}")
        if var == SHORTHAND_PREFIX:
            raise ConfigError(f"{var} names no secret: write {SHORTHAND_PREFIX}<NAME>=<valueFrom>")


def _read_config_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except ValueError:  # a NUL, or a lone surrogate no file name can hold
        raise ConfigError(f"cannot read config file {path!r}: not a valid path") from None
    data = _parse_json(text, f"config file {path}")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object")
    for key in data:
        if key not in FILE_KEYS:
            raise ConfigError(f"config file {path}: unknown key {key!r}{_suggest(key, FILE_KEYS)}")
    return data


def _parse_json(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ConfigError(f"{what} is JSON nested too deeply to read") from None
    except (ValueError, UnicodeDecodeError) as exc:
        position = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        # from None: the decoder's exception keeps the whole document, which may hold secrets.
        raise ConfigError(f"{what} is not valid JSON{position}: {reason}") from None


def _secret_list(
    flags: Mapping[str, object], environ: Mapping[str, str], from_file: Mapping[str, Any], config_path: object
) -> list[tuple[str, int, object]]:
    if flags.get("secrets") is not None:
        source, raw = "--secrets", _parse_json(str(flags["secrets"]), "--secrets")
    elif SECRETS_ENV in environ:
        source, raw = SECRETS_ENV, _parse_json(environ[SECRETS_ENV], SECRETS_ENV)
    elif SECRETS_KEY in from_file:
        source, raw = f"config file {config_path}: secrets", from_file[SECRETS_KEY]
    else:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{source} must be a JSON array of {{\"name\": ..., \"valueFrom\": ...}} objects")
    return [(source, index, item) for index, item in enumerate(raw)]


# --- entries -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _EntryDefaults:
    mode: int
    uid: int
    gid: int
    region: str | None


def _parse_entry(source: str, index: int, raw: object, defaults: _EntryDefaults) -> Entry:
    where = f"{source}[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be an object with name and valueFrom")
    for key in raw:
        if key not in ENTRY_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}{_suggest(key, ENTRY_KEYS)}")
    if "template" in raw or "templateFile" in raw:
        return _template_entry(where, raw, defaults)
    for key in ("name", "valueFrom"):
        if key not in raw:
            raise ConfigError(f"{where}: {key} is required")
    name = raw["name"]
    where = f"{where} ({name!r})" if isinstance(name, str) else where
    if not isinstance(raw["valueFrom"], str):
        raise ConfigError(f"{where}: valueFrom must be a string")
    for key in ("optional", "expand"):
        if key in raw and not isinstance(raw[key], bool):
            raise ConfigError(f"{where}: {key} must be true or false")
    return _make_entry(
        where,
        name,
        raw["valueFrom"],
        defaults,
        **_ownership(where, raw, defaults),
        optional=raw.get("optional", False),
        expand=raw.get("expand", False),
    )


class _Ownership(TypedDict):
    mode: int
    uid: int
    gid: int


def _ownership(where: str, raw: Mapping[str, Any], defaults: _EntryDefaults) -> _Ownership:
    """An entry's mode, uid and gid: its own keys, else the global settings."""
    return {
        "mode": _parse_mode(f"{where}: mode", raw["mode"]) if "mode" in raw else defaults.mode,
        "uid": _parse_id(f"{where}: uid", raw["uid"]) if "uid" in raw else defaults.uid,
        "gid": _parse_id(f"{where}: gid", raw["gid"]) if "gid" in raw else defaults.gid,
    }


def _checked_name(where: str, name: object) -> str:
    problem = name_problem(name)
    if problem:
        raise ConfigError(f"{where}: the name {name!r} {problem}")
    assert isinstance(name, str)  # noqa: S101 - name_problem checked the type
    return name


def _template_entry(where: str, raw: dict[str, Any], defaults: _EntryDefaults) -> Entry:
    for key in raw:
        if key not in TEMPLATE_KEYS:
            raise ConfigError(f"{where}: {key!r} does not apply to a template entry (keys: {', '.join(TEMPLATE_KEYS)})")
    if "name" not in raw:
        raise ConfigError(f"{where}: name is required")
    name = raw["name"]
    where = f"{where} ({name!r})" if isinstance(name, str) else where
    name = _checked_name(where, name)
    if ("template" in raw) == ("templateFile" in raw):
        raise ConfigError(f"{where}: give either template or templateFile, not both")
    text = raw["template"] if "template" in raw else _read_template_file(where, raw["templateFile"])
    if not isinstance(text, str):
        raise ConfigError(f"{where}: template must be a string")
    if "\x00" in text or not is_utf8(text):
        raise ConfigError(f"{where}: the template is not text: it holds a NUL character or is not valid UTF-8")
    template = parse_template(text, where)
    inputs = raw.get("inputs")
    if not isinstance(inputs, dict) or not inputs:
        raise ConfigError(f"{where}: inputs must be an object mapping input names to valueFrom references")
    parsed = []
    for input_name, value_from in sorted(inputs.items()):
        if not isinstance(value_from, str):
            raise ConfigError(f"{where}: input {input_name!r} must be a valueFrom string")
        try:
            parsed.append((input_name, value_from, parse_value_from(value_from, defaults.region)))
        except ConfigError as exc:
            raise ConfigError(f"{where}: input {input_name!r}: {exc.message}") from None
    undeclared = sorted(template.inputs - set(inputs))
    if undeclared:
        raise ConfigError(f"{where}: the template uses {undeclared[0]!r}, which is not in inputs")
    unused = sorted(set(inputs) - template.inputs)
    if unused:
        raise ConfigError(f"{where}: input {unused[0]!r} is not used by the template")
    return Entry(
        name=name,
        value_from="",
        reference=None,
        **_ownership(where, raw, defaults),
        template=template,
        inputs=tuple(parsed),
    )


def _read_template_file(where: str, path: object) -> str:
    if not isinstance(path, str) or not path or "\x00" in path or not is_utf8(path):
        raise ConfigError(f"{where}: templateFile must be a path (UTF-8, without NUL)")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise ConfigError(f"{where}: cannot read templateFile {path}: {reason}") from None


def _shorthand_entry(var: str, value_from: str, defaults: _EntryDefaults) -> Entry:
    name = var[len(SHORTHAND_PREFIX) :]
    return _make_entry(var, name, value_from, defaults, mode=defaults.mode, uid=defaults.uid, gid=defaults.gid)


def _make_entry(
    where: str,
    name: object,
    value_from: str,
    defaults: _EntryDefaults,
    *,
    mode: int,
    uid: int,
    gid: int,
    optional: bool = False,
    expand: bool = False,
) -> Entry:
    name = _checked_name(where, name)
    try:
        reference = parse_value_from(value_from, defaults.region)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}") from None
    return Entry(name, value_from, reference, mode, uid, gid, optional, expand)


def _check_entry_set(entries: list[Entry], env_file: str | None) -> None:
    names = [entry.name for entry in entries]
    if env_file:
        names.append(env_file)
    for problem in collision_problems(names, directories=[e.name for e in entries if e.expand]):
        raise ConfigError(f"duplicate names: {problem}")
    if env_file:
        for entry in entries:
            if not is_env_name(entry.name):
                raise ConfigError(
                    f"{entry.name!r} is not a valid environment variable name, which the env file "
                    f"{env_file!r} needs (letters, digits and _, not starting with a digit)"
                )


def _check_env_file_access(entries: list[Entry], env_file: str | None, env: Access) -> list[str]:
    """The env file gets the global mode and owner; it must not let anyone read an entry its own file keeps
    from them. Refused rather than narrowed: a narrowed env file would fail the app at run time instead."""
    if not env_file:
        return []
    problem = env_file_problem(env_file, env, [(e.name, Access(e.mode, e.uid, e.gid)) for e in entries])
    if problem:
        raise ConfigError(problem)
    warning = world_readable_warning(f"the env file {env_file!r}", env)
    return [warning] if warning else []


# --- scalar parsers -----------------------------------------------------------------------------------


def _parse_mode(source: str, raw: object) -> int:
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


def _parse_int(source: str, raw: object, minimum: int, maximum: int | None = None) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise ConfigError(f"{source}: {_shown(raw)} is not a whole number")
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{source}: {_shown(raw)} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{source}: {_shown(value)} is below the minimum of {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{source}: {_shown(value)} is above the maximum of {maximum}")
    return value


def _parse_at_most(source: str, value: int, maximum: int) -> int:
    if value > maximum:
        raise ConfigError(f"{source}: {value} is above the maximum of {maximum}")
    return value


def _parse_id(source: str, raw: object) -> int:
    value = _parse_int(source, raw, 0)
    if value > 2**32 - 2:
        raise ConfigError(f"{source}: {value} is not a valid uid or gid")
    return value


def _parse_timeout(source: str, raw: object) -> float:
    try:
        value = float(raw) if isinstance(raw, (int, float, str)) and not isinstance(raw, bool) else None
    except (ValueError, OverflowError):  # OverflowError: an integer past any float
        value = None
    if value is None or not value > 0 or value == float("inf"):
        raise ConfigError(f"{source}: {_shown(raw)} is not a positive number of seconds")
    if value > MAX_SECONDS:
        raise ConfigError(f"{source}: {value:g} seconds is more than the maximum of {MAX_SECONDS} (one week)")
    return value


def _shown(raw: object, limit: int = 40) -> str:
    """A configuration value as messages quote it: repr, cut short (a 5,000-digit number is one line too)."""
    text = repr(raw)
    return text if len(text) <= limit else f"{text[:limit]}..."


def _choice(choices: tuple[str, ...]) -> Callable[[str, object], str]:
    def parse(source: str, raw: object) -> str:
        value = str(raw).lower() if isinstance(raw, str) else ""
        if value not in choices:
            raise ConfigError(f"{source}: {raw!r} is not one of {', '.join(choices)}")
        return value

    return parse


def _parse_output_dir(source: str, raw: object) -> str:
    if not isinstance(raw, str) or not raw or "\x00" in raw:
        raise ConfigError(f"{source}: must be a directory path")
    if not is_utf8(raw):
        raise ConfigError(f"{source}: the directory path {NOT_UTF8}")
    return raw


def _parse_env_file(source: str, raw: object) -> str:
    problem = name_problem(raw)
    if problem or "/" in str(raw):
        raise ConfigError(f"{source}: the env file name {raw!r} {problem or 'must be a plain file name'}")
    return str(raw)


def _parse_region(source: str, raw: object) -> str:
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"{source}: must be a region name such as eu-west-1")
    return raw


def _parse_signal(source: str, raw: object) -> int:
    import signal

    name = str(raw).upper() if isinstance(raw, str) else ""
    name = name if name.startswith("SIG") else f"SIG{name}"
    number = getattr(signal, name, None)
    if not isinstance(number, int) or name.startswith("SIG_") or name in ("SIGKILL", "SIGSTOP"):
        raise ConfigError(f"{source}: {raw!r} is not a signal name such as HUP or USR1")
    return int(number)


def _parse_process_name(source: str, raw: object) -> str:
    if not isinstance(raw, str) or not raw or "/" in raw or "\x00" in raw or not is_utf8(raw):
        raise ConfigError(f"{source}: must be a process name such as nginx")
    return raw


def _parse_command(source: str, raw: object) -> tuple[str, ...]:
    value = _parse_json(raw, source) if isinstance(raw, str) else raw
    if not isinstance(value, list) or not value or not all(isinstance(a, str) and a for a in value):
        raise ConfigError(f"{source}: must be a JSON array of strings, e.g. [\"/usr/bin/reload\", \"--now\"]")
    for position, argument in enumerate(value):
        # exec() cannot pass either: refused now rather than at the first rotation.
        if "\x00" in argument or not is_utf8(argument):
            raise ConfigError(f"{source}: argument #{position} holds a NUL character or is not valid UTF-8")
    return tuple(value)


_PARSERS: Final[dict[str, Callable[[str, object], Any]]] = {
    "outputDir": _parse_output_dir,
    "fileMode": _parse_mode,
    "uid": _parse_id,
    "gid": _parse_id,
    "timeout": _parse_timeout,
    "logLevel": _choice(LOG_LEVELS),
    "logFormat": _choice(("json", "console")),
    "maxBytes": lambda source, raw: _parse_int(source, raw, 1, MAX_MAX_BYTES),
    "envFile": _parse_env_file,
    "smBatch": _choice(("auto", "always", "never")),
    "concurrency": lambda source, raw: _parse_at_most(source, _parse_int(source, raw, 1), MAX_CONCURRENCY),
    "region": _parse_region,
    "refreshInterval": _parse_timeout,
    "healthMaxAge": _parse_timeout,
    "notifySignal": _parse_signal,
    "notifyProcess": _parse_process_name,
    "notifyCommand": _parse_command,
}
