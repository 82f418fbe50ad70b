"""Rule ``sidecar-config``: the sidecar's own configuration must parse, checked by the sidecar's parser.

The settings come from the sidecar container's ``environment`` and the flags in its ``command``. The task's
region is taken as known: ECS sets AWS_REGION in the container, so a placeholder region stands in when the
definition sets none and a bare SSM parameter name is accepted. What cannot be seen offline is reported as
a warning: a SIDECAR_CONFIG_FILE lives inside the image, and SIDECAR_* values from ``secrets`` are fetched by
ECS at start-up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sidecar.errors import ConfigError
from sidecar.lint.finding import Finding
from sidecar.lint.redact import hide_values, json_strings
from sidecar.lint.task import (
    Container,
    environment,
    roles,
    secret_names,
    sidecar_arguments,
    sidecar_process_ids,
)
from sidecar.run import check_regions
from sidecar.settings.arguments import UsageError, container_command_flags
from sidecar.settings.load import settings_from
from sidecar.settings.model import Settings
from sidecar.settings.options import CONFIG_FILE, ENV_PREFIX, REGION, SECRETS

RULE: Final = "sidecar-config"
PLACEHOLDER_REGION: Final = "us-east-1"
REGION_VARIABLES: Final = ("AWS_REGION", "AWS_DEFAULT_REGION", REGION.env)
ROOT_UID: Final = 0
ENTRY_NAME_KEYS: Final = frozenset({"name"})
SUBCOMMANDS: Final = ("run", "check")
FLAG: Final = re.compile(r"--[a-z][a-z0-9-]*(?==|$)")
TEMPLATE_INPUT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_sidecar_config(task: Mapping[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    for sidecar in roles(task).sidecars:
        findings += _check_one(sidecar.name, sidecar.container)
    return findings


def settings_of(container: Container) -> Settings | None:
    """The sidecar's settings as it would parse them at start-up; None when it would not start."""
    try:
        return _load(container).settings
    except Exception:
        return None


@dataclass(frozen=True)
class _Loaded:
    settings: Settings
    unread_templates: tuple[str, ...]  # entries whose templateFile was not read
    config_file_flag: bool  # --config-file in the command: a file in the image, not checked


def container_settings(container: Container, region: str | None) -> Settings:
    """The sidecar's settings as it would parse them at start-up in ``region`` (the task's: ECS sets
    AWS_REGION), unless its own environment names one. Raises what the sidecar's parser raises."""
    return _load(container, region).settings


def _load(container: Container, region: str | None = PLACEHOLDER_REGION) -> _Loaded:
    """Parse the sidecar's settings offline, with no file read (none is given to the parser: a path names a
    file inside the image, not on this machine). Raises what the sidecar's parser raises."""
    environ = environment(container)
    environ.pop(CONFIG_FILE.env, None)
    if region and not any(environ.get(variable) for variable in REGION_VARIABLES):
        environ["AWS_REGION"] = region
    uid, gid = sidecar_process_ids(container) or (ROOT_UID, ROOT_UID)
    flags = _flags(sidecar_arguments(container))
    config_file_flag = flags.pop(CONFIG_FILE.key, None) is not None
    unread: list[str] = []
    if SECRETS.env in environ:
        environ[SECRETS.env], names = without_template_files(environ[SECRETS.env])
        unread += [f"{SECRETS.env} entry {entry!r}" for entry in names]
    if SECRETS.key in flags:
        flags[SECRETS.key], names = without_template_files(flags[SECRETS.key])
        unread += [f"{SECRETS.flag} entry {entry!r}" for entry in names]
    settings = settings_from(flags, environ, {}, process_uid=uid, process_gid=gid)
    check_regions(settings)  # a mistyped region or failover region: the sidecar exits 2 before any call
    return _Loaded(settings, tuple(unread), config_file_flag)


def _check_one(name: str, container: Container) -> list[Finding]:
    findings = _unseen_settings(name, container, environment(container))
    try:
        loaded = _load(container)
    except ConfigError as exc:
        problem = f"the sidecar's configuration is invalid, so it would exit with code 2 before fetching anything: " \
            f"{exc.message}"
        return [*findings, _error(name, container, problem)]
    except RecursionError:
        problem = "the sidecar's JSON settings nest too deeply to be parsed, so it would fail before fetching anything"
        return [*findings, _error(name, container, problem)]
    except Exception as exc:
        problem = f"the sidecar's own parser fails on this configuration ({type(exc).__name__}), so the sidecar " \
            "would stop with exit code 1 before fetching anything"
        return [*findings, _error(name, container, problem)]
    if loaded.config_file_flag and CONFIG_FILE.env not in environment(container):
        findings.append(_config_file_unchecked(name, CONFIG_FILE.flag))
    findings += [
        Finding(
            RULE, "warning", name,
            f"{entry} reads templateFile, a path inside the container: the template itself was not checked "
            "(its inputs were)",
            "run `secrets-sidecar check` in the image with that file, or inline it as \"template\"",
        )
        for entry in loaded.unread_templates
    ]
    findings += [
        Finding(RULE, "warning", name, _hidden(f"sidecar configuration: {warning}", container),
                "review the setting named above")
        for warning in loaded.settings.warnings
    ]
    return findings


def _error(name: str, container: Container, problem: str) -> Finding:
    return Finding(
        RULE, "error", name, _hidden(problem, container),
        "correct the SIDECAR_* environment (or command flags); `secrets-sidecar check` with the same "
        "settings shows the plan",
    )


def _hidden(message: str, container: Container) -> str:
    """``message`` without any value of the sidecar's environment or command (see sidecar.lint.redact).

    A setting that holds JSON contributes the strings inside it, not its text: the text also holds entry
    names and keys ("valueFrom"), which the message must be able to say.
    """
    values: list[str] = []
    names: list[str] = []
    for text in [*environment(container).values(), *_argument_values(sidecar_arguments(container))]:
        values += json_strings(text, skip_keys=ENTRY_NAME_KEYS) if _is_json_container(text) else [text]
        names += _entry_names(text)
    return hide_values(message, values, shown=names)


def _is_json_container(text: str) -> bool:
    try:
        return isinstance(json.loads(text), (list, dict))
    except (ValueError, RecursionError):
        return False


def _argument_values(words: list[str]) -> list[str]:
    """The values among the sidecar's command words: not its subcommand, not a flag's name."""
    values = []
    for word in words:
        flag = FLAG.match(word)
        if flag:
            values += [word[flag.end() + 1 :]] if word[flag.end() :].startswith("=") else []
        elif word not in SUBCOMMANDS:
            values.append(word)
    return values


def _entry_names(text: str) -> list[str]:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return []
    entries = document if isinstance(document, list) else []
    return [e["name"] for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)]


def without_template_files(text: str) -> tuple[str, list[str]]:
    """SIDECAR_SECRETS with every ``templateFile`` replaced by an inline template that uses exactly the
    entry's inputs, and the names of those entries.

    A templateFile is a path in the container's filesystem: the linting machine's file of that name (if
    any) is another file, and may be a FIFO that never answers. The inputs are still checked. Text that is
    not a JSON array of objects is returned as it is, for the sidecar's parser to report.
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return text, []
    if not isinstance(document, list):
        return text, []
    unread = []
    for entry in document:
        if not isinstance(entry, dict) or "templateFile" not in entry or "template" in entry:
            continue
        inputs = entry.get("inputs")
        names = sorted(key for key in inputs if TEMPLATE_INPUT.fullmatch(key)) if isinstance(inputs, dict) else []
        entry["template"] = "".join("{{ " + key + " }}" for key in names)
        del entry["templateFile"]
        unread.append(entry["name"] if isinstance(entry.get("name"), str) else "?")
    return json.dumps(document), unread


def _unseen_settings(name: str, container: Container, environ: Mapping[str, str]) -> list[Finding]:
    findings = []
    if CONFIG_FILE.env in environ:
        findings.append(_config_file_unchecked(name, CONFIG_FILE.env))
    injected = sorted(n for n in secret_names(container) if n.startswith(ENV_PREFIX))
    if injected:
        findings.append(Finding(
            RULE, "warning", name,
            f"{', '.join(injected)} come from the container's secrets, resolved by ECS at start-up; their "
            "values were not checked",
            "keep sidecar settings in plain environment: they hold references, not secret values",
        ))
    return findings


def _config_file_unchecked(name: str, setting: str) -> Finding:
    return Finding(
        RULE, "warning", name,
        f"{setting} names a file inside the image; its contents were not checked",
        "run `secrets-sidecar check` with that file, or move its settings into SIDECAR_* environment",
    )


def _flags(words: list[str]) -> dict[str, str]:
    """Parse the sidecar's command words with the sidecar's own parser into ``settings_from`` flags."""
    try:
        return container_command_flags(words)
    except UsageError as exc:
        raise ConfigError(f"the sidecar's command is not valid: {exc.message}") from None
