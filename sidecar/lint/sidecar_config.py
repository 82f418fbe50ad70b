"""Rule ``sidecar-config``: the sidecar's own configuration must parse, checked by the sidecar's parser.

The settings come from the sidecar container's ``environment`` and the flags in its ``command``. The task's
region is taken as known: ECS sets AWS_REGION in the container, so a placeholder region stands in when the
definition sets none and a bare SSM parameter name is accepted. What cannot be seen offline is reported as
a warning: a SIDECAR_CONFIG_FILE lives inside the image, and SIDECAR_* values from ``secrets`` are fetched by
ECS at start-up.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from typing import Any, Final

from sidecar.config import CONFIG_FILE_ENV, ENV_PREFIX, load_settings
from sidecar.errors import ConfigError
from sidecar.lint.finding import Finding
from sidecar.lint.task import Container, environment, roles, secret_names, sidecar_arguments

RULE: Final = "sidecar-config"
PLACEHOLDER_REGION: Final = "us-east-1"
REGION_VARIABLES: Final = ("AWS_REGION", "AWS_DEFAULT_REGION", "SIDECAR_REGION")
ROOT_UID: Final = 0
CONFIG_FILE_FLAG_KEY: Final = "configFile"


def check_sidecar_config(task: Mapping[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    for sidecar in roles(task).sidecars:
        findings += _check_one(sidecar.name, sidecar.container)
    return findings


def _check_one(name: str, container: Container) -> list[Finding]:
    environ = environment(container)
    findings = _unseen_settings(name, container, environ)
    # The config file is a path inside the image: reading that path here would read the wrong file.
    environ.pop(CONFIG_FILE_ENV, None)
    if not any(environ.get(variable) for variable in REGION_VARIABLES):
        environ["AWS_REGION"] = PLACEHOLDER_REGION
    uid, gid = _user_ids(container.get("user"))
    try:
        flags = _flags(sidecar_arguments(container))
        if flags.pop(CONFIG_FILE_FLAG_KEY, None) is not None and CONFIG_FILE_ENV not in environment(container):
            findings.append(_config_file_unchecked(name, "--config-file"))
        settings = load_settings(flags, environ, process_uid=uid, process_gid=gid)
    except ConfigError as exc:
        return [*findings, Finding(
            RULE, "error", name,
            f"the sidecar's configuration is invalid, so it would exit with code 2 before fetching anything: "
            f"{exc.message}",
            "correct the SIDECAR_* environment (or command flags); `secrets-sidecar check` with the same "
            "settings shows the plan",
        )]
    findings += [
        Finding(RULE, "warning", name, f"sidecar configuration: {warning}", "review the setting named above")
        for warning in settings.warnings
    ]
    return findings


def _unseen_settings(name: str, container: Container, environ: Mapping[str, str]) -> list[Finding]:
    findings = []
    if CONFIG_FILE_ENV in environ:
        findings.append(_config_file_unchecked(name, CONFIG_FILE_ENV))
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


def _flags(words: list[str]) -> dict[str, object]:
    """Parse the sidecar's command words with the sidecar's own parser into ``load_settings`` flags."""
    from sidecar.cli import build_parser

    if not words or words[0] not in ("run", "check"):
        words = ["run", *words]
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            parsed = build_parser().parse_args(words)
    except SystemExit:
        lines = errors.getvalue().strip().splitlines()
        reason = lines[-1].split(": error: ", 1)[-1] if lines else "it does not parse"
        raise ConfigError(f"the command {' '.join(words)!r} is not valid: {reason}") from None
    return {key: value for key, value in vars(parsed).items() if value is not None}


def _user_ids(user: object) -> tuple[int, int]:
    """The uid and gid a ``user`` of ``uid`` or ``uid:gid`` runs as; root when absent or symbolic."""
    if not isinstance(user, str):
        return ROOT_UID, ROOT_UID
    uid, _, gid = user.partition(":")
    as_uid = int(uid) if uid.isdigit() else ROOT_UID
    return as_uid, int(gid) if gid.isdigit() else as_uid
