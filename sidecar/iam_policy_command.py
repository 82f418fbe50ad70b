"""``secrets-sidecar iam-policy``: print the task role's least-privilege policy for a configuration.

The configuration is read as ``run`` reads it (flags, ``SIDECAR_*`` environment, config file), or from the
sidecar containers of a task definition (``--task-definition``), with the linter's reading of a container.
Exit codes: 0 printed; 2 the configuration or the task definition cannot be read, or the policy needs
something it does not say (the account of a parameter named without an ARN).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final, TextIO

from sidecar.errors import EXIT_CONFIG, EXIT_OK, ConfigError
from sidecar.iam_policy import Policies, Scope, policies
from sidecar.lint.document import UnreadableTaskDefinition, parse_task_definition
from sidecar.lint.sidecar_config import container_settings
from sidecar.lint.task import environment, roles, secret_names, sidecar_arguments
from sidecar.settings.load import load_settings
from sidecar.settings.model import Settings
from sidecar.settings.options import CONFIG_FILE, ENV_PREFIX, REGION, SETTINGS

PROGRAM: Final = "secrets-sidecar iam-policy"
STDIN: Final = "-"
REGION_VARIABLES: Final = (REGION.env, "AWS_REGION", "AWS_DEFAULT_REGION")  # the sidecar's order


def iam_policy_command(
    flags: Mapping[str, str],
    environ: Mapping[str, str],
    *,
    task_definition: str | None = None,
    account: str | None = None,
    kms_keys: Sequence[str] = (),
    as_json: bool = False,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        scope = Scope(account, tuple(kms_keys))
        if task_definition is None:
            result = policies([load_settings(flags, environ, process_uid=0, process_gid=0)], scope)
        else:
            task = _read_task(task_definition)
            scope = Scope(account or _task_account(task), scope.kms_keys)
            result = policies(_task_settings(task, flags, environ), scope)
    except (ConfigError, UnreadableTaskDefinition) as exc:
        print(f"{PROGRAM}: {exc.message}", file=stderr)
        return EXIT_CONFIG
    stdout.write(json.dumps(result.as_json() if as_json else result.task_role, indent=2) + "\n")
    for note in _notes(result, as_json=as_json):
        print(f"note: {note}", file=stderr)
    return EXIT_OK


def _notes(result: Policies, *, as_json: bool) -> list[str]:
    notes = list(result.notes)
    if result.roles and not as_json:
        notes.append(f"{len(result.roles)} assumed role(s) need their own policy: print them all with --json")
    return notes


def _read_task(path: str) -> dict[str, Any]:
    source = "<stdin>" if path == STDIN else path
    if path == STDIN:
        text: bytes = sys.stdin.buffer.read()
    else:
        try:
            with open(path, "rb") as handle:
                text = handle.read()
        except OSError as exc:
            raise UnreadableTaskDefinition(f"cannot read {path}: {exc.strerror}") from None
    return parse_task_definition(text, source)


def _task_account(task: Mapping[str, Any]) -> str | None:
    """The account of the task role (``arn:aws:iam::ACCOUNT:role/NAME``): where the task reads a parameter
    named without an ARN."""
    arn = task.get("taskRoleArn")
    if isinstance(arn, str) and arn.startswith("arn:") and arn.count(":") >= 5:
        return arn.split(":")[4] or None
    return None


def _task_settings(task: Mapping[str, Any], flags: Mapping[str, str], environ: Mapping[str, str]) -> list[Settings]:
    """The settings of every sidecar container of ``task``, each read in the task's region: ``--region``, else
    the container's own, else the caller's AWS_REGION (ECS sets the task's)."""
    given = sorted(key for key in flags if key != REGION.key)
    if given:
        flag = next(s.flag for s in SETTINGS if s.key == given[0])
        raise ConfigError(f"with --task-definition, the settings come from the task definition: {flag} does not "
                          "apply")
    sidecars = roles(task).sidecars
    if not sidecars:
        raise ConfigError("the task definition has no secrets-sidecar container (recognised by its image, its "
                          "command, or SIDECAR_* environment)")
    region = flags.get(REGION.key) or next((environ[v] for v in REGION_VARIABLES[1:] if environ.get(v)), None)
    found = []
    for sidecar in sidecars:
        _check_visible(sidecar.name, sidecar.container)
        try:
            found.append(container_settings(sidecar.container, region))
        except ConfigError as exc:
            raise ConfigError(f"container {sidecar.name}: {exc.message}") from None
    return found


def _check_visible(name: str, container: Mapping[str, Any]) -> None:
    """The whole configuration must be in the task definition: a config file lives in the image, and
    ``secrets`` are resolved by ECS at start-up."""
    if CONFIG_FILE.env in environment(container) or any(
        word == CONFIG_FILE.flag or word.startswith(CONFIG_FILE.flag + "=") for word in sidecar_arguments(container)
    ):
        raise ConfigError(f"container {name} reads a config file inside its image, which the task definition "
                          f"does not hold: run iam-policy with {CONFIG_FILE.flag} on a copy of that file")
    injected = sorted(n for n in secret_names(container) if n.startswith(ENV_PREFIX))
    if injected:
        raise ConfigError(f"container {name} takes {', '.join(injected)} from its secrets, which ECS resolves at "
                          "start-up: run iam-policy with that configuration as flags or environment")

