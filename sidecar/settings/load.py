"""Where each setting comes from, and the whole configuration into validated ``Settings``.

Three sources, highest precedence first: command-line flags, ``SIDECAR_*`` environment variables, and the
JSON file named by ``SIDECAR_CONFIG_FILE``. ``settings_from`` is pure (it is given the files' texts);
``load_settings`` reads the files the configuration names, then calls it. Everything is validated before any
network access; the rest of the program never sees raw strings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from sidecar.access import Access
from sidecar.errors import ConfigError
from sidecar.settings import entry_set
from sidecar.settings.entries import EntryDefaults, parse_entry, shorthand_entry, template_files
from sidecar.settings.model import HEALTH_INTERVALS, MIN_REFRESH_INTERVAL_SECONDS, Entry, LogFormat, LogLevel, Settings
from sidecar.settings.options import (
    CONCURRENCY,
    CONFIG_FILE,
    ENV_FILE,
    ENV_PREFIX,
    FAILOVER_REGION,
    FILE_KEYS,
    FILE_MODE,
    GID,
    HEALTH_MAX_AGE,
    KNOWN_ENV,
    LOG_FORMAT,
    LOG_LEVEL,
    MAX_BYTES,
    METRICS,
    METRICS_NAMESPACE,
    NOTIFY_COMMAND,
    NOTIFY_PROCESS,
    NOTIFY_SIGNAL,
    OUTPUT_DIR,
    REFRESH_INTERVAL,
    REFRESH_ONLY,
    REGION,
    ROLE_ARN,
    SECRETS,
    SHORTHAND_PREFIX,
    SM_BATCH,
    TIMEOUT,
    UID,
    Option,
)
from sidecar.settings.parsers import parse_json, suggest
from sidecar.settings.texts import FileTexts, Unreadable, read_file

V = TypeVar("V")
Flags = Mapping[str, str]  # parsed command-line flags by setting key (``outputDir``, ``secrets``, ...)


def load_settings(
    flags: Flags, environ: Mapping[str, str], *, process_uid: int | None = None, process_gid: int | None = None
) -> Settings:
    """The edge: read the config file and template files the configuration names, then ``settings_from``."""
    files: dict[str, bytes | Unreadable] = {}
    config_path = _config_path(flags, environ)
    if config_path:
        files[config_path] = read_file(config_path)
    for path in template_files(_secrets_leniently(flags, environ, files.get(config_path or ""))):
        files[path] = read_file(path)
    uid = os.getuid() if process_uid is None else process_uid
    gid = os.getgid() if process_gid is None else process_gid
    return settings_from(flags, environ, files, process_uid=uid, process_gid=gid)


def settings_from(
    flags: Flags, environ: Mapping[str, str], files: FileTexts, *, process_uid: int, process_gid: int
) -> Settings:
    """Merge flags, environment and config file into validated ``Settings``, or raise ``ConfigError``.

    ``files`` holds the content of the config file and template files by path; a path it lacks is a file
    that cannot be read.
    """
    _reject_unknown_env(environ)
    config_path = _config_path(flags, environ)
    sources = _Sources(flags, environ, _config_file(config_path, files) if config_path else {}, config_path)
    # Read in the table's order: with several mistakes, the first one in that order is reported.
    output_dir, file_mode = sources.value(OUTPUT_DIR), sources.value(FILE_MODE)
    uid, gid, timeout = sources.value(UID), sources.value(GID), sources.value(TIMEOUT)
    log_level, log_format = sources.value(LOG_LEVEL), sources.value(LOG_FORMAT)
    max_bytes, env_file = sources.value(MAX_BYTES), sources.value(ENV_FILE)
    sm_batch, concurrency, region = sources.value(SM_BATCH), sources.value(CONCURRENCY), sources.value(REGION)
    role_arn = sources.value(ROLE_ARN)
    failover_region = sources.value(FAILOVER_REGION)
    refresh_interval, health_max_age = sources.value(REFRESH_INTERVAL), sources.value(HEALTH_MAX_AGE)
    notify_signal, notify_process = sources.value(NOTIFY_SIGNAL), sources.value(NOTIFY_PROCESS)
    notify_command = sources.value(NOTIFY_COMMAND)
    metrics, metrics_namespace = sources.value(METRICS), sources.value(METRICS_NAMESPACE)

    uid = process_uid if uid is None else uid
    gid = process_gid if gid is None else gid
    region = region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None
    entries = _entries(sources, EntryDefaults(file_mode, uid, gid, region, role_arn=role_arn,
                                              failover_region=failover_region), files)
    entry_set.check_names(entries, env_file)
    warnings = entry_set.world_readable_warnings(entries)
    warnings += entry_set.check_env_file_access(entries, env_file, Access(file_mode, uid, gid))
    warnings += entry_set.timeout_warnings(timeout)
    _check_refresh(sources, refresh_interval)
    if metrics == "off" and sources.given(METRICS_NAMESPACE):
        raise ConfigError(f"{METRICS_NAMESPACE.key} applies only with {METRICS.env}=emf")
    if refresh_interval is not None and health_max_age is None:
        health_max_age = HEALTH_INTERVALS * refresh_interval
    return Settings(
        entries=tuple(entries),
        output_dir=output_dir,
        file_mode=file_mode,
        uid=uid,
        gid=gid,
        timeout_seconds=timeout,
        log_level=log_level,
        log_format=log_format,
        max_bytes=max_bytes,
        env_file=env_file,
        sm_batch=sm_batch,
        concurrency=concurrency,
        region=region,
        role_arn=role_arn,
        failover_region=failover_region,
        refresh_interval=refresh_interval,
        health_max_age=health_max_age,
        notify_signal=notify_signal,
        notify_process=notify_process,
        notify_command=notify_command,
        metrics=metrics,
        metrics_namespace=metrics_namespace,
        warnings=tuple(warnings),
    )


def logging_preferences(flags: Flags, environ: Mapping[str, str]) -> tuple[LogLevel, LogFormat]:
    """Log level and format, read leniently so that even a configuration error is logged as asked."""

    def lenient(option: Option[V]) -> V:
        try:
            return option.parse(option.env, flags.get(option.key) or environ.get(option.env, ""))
        except ConfigError:
            return option.default

    return lenient(LOG_LEVEL), lenient(LOG_FORMAT)


def metrics_namespace(flags: Flags, environ: Mapping[str, str]) -> str | None:
    """The namespace to count a failed start-up in when flags or environment turn metrics on, else None.

    Read leniently, like the log preferences, for the runs whose configuration does not load: a configuration
    error is counted too. The config file is not read here: it may be what is broken."""
    try:
        if METRICS.parse(METRICS.env, flags.get(METRICS.key) or environ.get(METRICS.env, "off")) != "emf":
            return None
        given = flags.get(METRICS_NAMESPACE.key) or environ.get(METRICS_NAMESPACE.env)
        return METRICS_NAMESPACE.parse(METRICS_NAMESPACE.env, given) if given else METRICS_NAMESPACE.default
    except ConfigError:
        return None


@dataclass(frozen=True)
class _Sources:
    flags: Flags
    environ: Mapping[str, str]
    file: Mapping[str, object]  # the config file's object
    file_path: str | None

    def value(self, option: Option[V]) -> V:
        """The option's value from the highest-precedence source that gives it, else its default."""
        if self.flags.get(option.key) is not None:
            return option.parse(option.flag, self.flags[option.key])
        if option.env in self.environ:
            return option.parse(option.env, self.environ[option.env])
        if option.key in self.file:
            return option.parse(f"{self.file_path}: {option.key}", self.file[option.key])
        return option.default

    def given(self, option: Option[object]) -> bool:
        return self.flags.get(option.key) is not None or option.env in self.environ or option.key in self.file


def _config_path(flags: Flags, environ: Mapping[str, str]) -> str | None:
    return flags.get(CONFIG_FILE.key) or environ.get(CONFIG_FILE.env) or None


def _reject_unknown_env(environ: Mapping[str, str]) -> None:
    for var in sorted(environ):
        if var.startswith(ENV_PREFIX) and var not in KNOWN_ENV and not var.startswith(SHORTHAND_PREFIX):
            raise ConfigError(f"unknown setting {var}{suggest(var, KNOWN_ENV)}")
        if var == SHORTHAND_PREFIX:
            raise ConfigError(f"{var} names no secret: write {SHORTHAND_PREFIX}<NAME>=<valueFrom>")


def _config_file(path: str, files: FileTexts) -> dict[str, object]:
    content = files.get(path, Unreadable("not read"))
    if isinstance(content, Unreadable):
        shown = path if content.valid_path else repr(path)
        raise ConfigError(f"cannot read config file {shown}: {content.reason}")
    data = parse_json(content, f"config file {path}")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object")
    for key in data:
        if key not in FILE_KEYS:
            raise ConfigError(f"config file {path}: unknown key {key!r}{suggest(key, FILE_KEYS)}")
    return data


def _secret_list(sources: _Sources) -> tuple[str, object] | None:
    """Where the secrets list comes from and its parsed JSON: the highest-precedence source that has one."""
    if sources.flags.get(SECRETS.key) is not None:
        return SECRETS.flag, parse_json(sources.flags[SECRETS.key], SECRETS.flag)
    if SECRETS.env in sources.environ:
        return SECRETS.env, parse_json(sources.environ[SECRETS.env], SECRETS.env)
    if SECRETS.key in sources.file:
        return f"config file {sources.file_path}: {SECRETS.key}", sources.file[SECRETS.key]
    return None


def _secrets_leniently(flags: Flags, environ: Mapping[str, str], config: bytes | Unreadable | None) -> object:
    """The secrets list as far as it can be read, for the edge to find the template files it names; the
    precedence is ``_secret_list``'s, and what does not parse is left for it to report."""
    text = flags.get(SECRETS.key)
    text = environ.get(SECRETS.env) if text is None else text
    if text is not None:
        return _json_or_none(text)
    document = _json_or_none(config) if isinstance(config, bytes) else None
    return document.get(SECRETS.key) if isinstance(document, dict) else None


def _json_or_none(text: str | bytes) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _entries(sources: _Sources, defaults: EntryDefaults, files: FileTexts) -> list[Entry]:
    entries = []
    found = _secret_list(sources)
    if found is not None:
        source, raw = found
        if not isinstance(raw, list):
            raise ConfigError(f"{source} must be a JSON array of {{\"name\": ..., \"valueFrom\": ...}} objects")
        entries = [parse_entry(source, index, item, defaults, files) for index, item in enumerate(raw)]
    entries += [shorthand_entry(var, value, defaults) for var, value in sorted(sources.environ.items())
                if var.startswith(SHORTHAND_PREFIX)]
    if not entries:
        raise ConfigError(
            f"no secrets configured: set {SECRETS.env} (a JSON array) or {SHORTHAND_PREFIX}<NAME>=<valueFrom>"
        )
    return entries


def _check_refresh(sources: _Sources, interval: float | None) -> None:
    if interval is None:
        given = [option.key for option in REFRESH_ONLY if sources.given(option)]
        if given:
            raise ConfigError(f"{given[0]} applies only in refresh mode: set {REFRESH_INTERVAL.env}")
        return
    if interval < MIN_REFRESH_INTERVAL_SECONDS:
        raise ConfigError(f"{REFRESH_INTERVAL.env}: at least {MIN_REFRESH_INTERVAL_SECONDS:g} seconds")
    if sources.given(NOTIFY_SIGNAL) != sources.given(NOTIFY_PROCESS):
        raise ConfigError(
            f"{NOTIFY_SIGNAL.env} and {NOTIFY_PROCESS.env} go together: which signal, to whom"
        )
