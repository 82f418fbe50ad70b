"""Plan placeholder values for every secret the task's sidecars reference, for a local moto server.

Pure: reads the sidecar's own settings with the sidecar's own parser (its ``environment`` and command flags),
and returns what to create: one Secrets Manager secret per secret (a JSON object when references take JSON
keys from it), one SecureString parameter per parameter, one object per S3 object. Values are placeholders
derived from the reference, so a generated project is the same every time; they are not secrets.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sidecar.compose.notes import Note
from sidecar.errors import ConfigError
from sidecar.lint.task import Container, containers, environment, is_sidecar, sidecar_arguments
from sidecar.references import ObjectTarget, ParameterPathTarget, ParameterTarget, Reference, SecretTarget
from sidecar.settings.arguments import UsageError, container_command_flags
from sidecar.settings.load import load_settings
from sidecar.settings.options import CONFIG_FILE, REGION

MOTO_ACCOUNT: Final = "123456789012"  # the only account a moto server answers for
EXPANDED_KEY: Final = "example"  # an expanded JSON secret gets one key: its file names come from the keys
TREE_PARAMETER: Final = "example"  # a parameter tree gets one parameter: its file names come from the names


@dataclass(frozen=True, order=True)
class SeedItem:
    """One thing to create in moto. ``name``: secret name, parameter name, or bucket; ``key``: S3 key;
    ``role_arn``: the role the sidecar reads it with, whose account it is created in ("": moto's default)."""

    service: str
    region: str
    name: str
    key: str = ""
    json_keys: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    role_arn: str = ""

    def as_json(self) -> dict[str, Any]:
        seed = f"{self.service}:{self.region}:{self.name}:{self.key}" + (f":{self.role_arn}" if self.role_arn else "")
        if self.json_keys:
            value = json.dumps({k: placeholder(f"{seed}:{k}") for k in self.json_keys}, sort_keys=True)
        else:
            value = placeholder(seed)
        document: dict[str, Any] = {"service": self.service, "region": self.region, "name": self.name,
                                    "value": value}
        if self.key:
            document["key"] = self.key
        if self.stages:
            document["stages"] = list(self.stages)
        if self.role_arn:
            document["roleArn"] = self.role_arn
        return document


@dataclass
class SeedPlan:
    """``contents``: valueFrom -> what the sidecar will write for it, for every reference seeded."""

    items: list[SeedItem] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    contents: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> list[dict[str, Any]]:
        return [item.as_json() for item in self.items]


def placeholder(seed: str) -> str:
    """A stable stand-in value: the same reference always gets the same bytes."""
    return "local-" + hashlib.sha256(seed.encode()).hexdigest()[:20]


def seed_plan(task: Mapping[str, Any], region: str, unseeded: Collection[str] = ()) -> SeedPlan:
    """What to create so every reference of every sidecar resolves, except the ``valueFrom``s in ``unseeded``."""
    plan = SeedPlan()
    # (region, name, role) -> (json keys, stages)
    secrets: dict[tuple[str, str, str], tuple[set[str], set[str]]] = {}
    others: set[SeedItem] = set()
    seeded: list[tuple[str, tuple[str, str, str, str, str], str | None]] = []  # valueFrom, item identity, json key
    for name, container in [(n, c) for n, c in containers(task) if is_sidecar(c)]:
        for value_from, reference, expand in _references(name, container, region, plan.notes):
            if value_from in unseeded:
                continue
            target = reference.target
            role = target.role_arn or ""
            if isinstance(target, SecretTarget):
                secret = _secret_name(name, target, plan.notes)
                keys, stages = secrets.setdefault((target.region, secret, role), (set(), set()))
                seeded.append((value_from, ("secretsmanager", target.region, secret, "", role), reference.json_key))
                if reference.json_key:
                    keys.add(reference.json_key)
                elif expand:
                    keys.add(EXPANDED_KEY)
                    plan.notes.append(Note("approximated", name, "expand", (
                        f"the JSON secret {secret} is seeded with one key, {EXPANDED_KEY!r}: with expand, its "
                        "keys name the files")))
                if target.version_stage:
                    stages.add(target.version_stage)
                if target.version_id:
                    plan.notes.append(Note("unmapped", name, "valueFrom", (
                        f"the version id pinned for {secret} cannot be seeded (moto chooses version ids): "
                        "that reference fails locally")))
            elif isinstance(target, ParameterTarget | ParameterPathTarget):
                item = _parameter_item(name, target, plan.notes)
                others.add(item)
                seeded.append((value_from, ("ssm", item.region, item.name, "", role), None))
            elif isinstance(target, ObjectTarget):
                if target.version_id:
                    plan.notes.append(Note("unmapped", name, "valueFrom", (
                        f"the version id pinned for s3://{target.bucket}/{target.key} cannot be seeded: "
                        "that reference fails locally")))
                others.add(SeedItem("s3", target.region, target.bucket, target.key, role_arn=role))
                seeded.append((value_from, ("s3", target.region, target.bucket, target.key, role), None))
    plan.items = sorted(
        [SeedItem("secretsmanager", r, n, json_keys=tuple(sorted(k)), stages=tuple(sorted(s)), role_arn=role)
         for (r, n, role), (k, s) in secrets.items()] + list(others)
    )
    values = {(i.service, i.region, i.name, i.key, i.role_arn): str(i.as_json()["value"]) for i in plan.items}
    for value_from, identity, json_key in seeded:
        value = values[identity]
        plan.contents[value_from] = json.loads(value)[json_key] if json_key else value
    return plan


def _references(
    name: str, container: Container, region: str, notes: list[Note]
) -> list[tuple[str, Reference, bool]]:
    environ = environment(container)
    if CONFIG_FILE.env in environ:
        notes.append(Note("unmapped", name, CONFIG_FILE.env, (
            "the config file is inside the image: the secrets it references are not seeded")))
        environ.pop(CONFIG_FILE.env)
    if not any(environ.get(v) for v in ("AWS_REGION", "AWS_DEFAULT_REGION", REGION.env)):
        environ["AWS_REGION"] = region  # what ECS sets in the container
    try:
        settings = load_settings(_flags(sidecar_arguments(container)), environ, process_uid=0, process_gid=0)
    except ConfigError as exc:
        notes.append(Note("unmapped", name, "environment", (
            f"the sidecar's configuration is invalid, nothing is seeded for it (it exits 2): {exc.message}")))
        return []
    found: list[tuple[str, Reference, bool]] = []
    for entry in settings.entries:
        if entry.reference is not None:
            found.append((entry.value_from, entry.reference, entry.expand))
        for _, value_from, reference in entry.inputs:
            found.append((value_from, reference, False))
        if entry.selection is not None:
            notes.append(Note("approximated", name, "jmesPath", (
                f"{entry.name} selects with jmesPath {entry.selection.expression!r} from a placeholder that is not "
                "JSON: it fails locally (exit 3) until you seed a JSON document the expression matches")))
        if entry.inputs:
            notes.append(Note("approximated", name, "template", (
                f"the inputs of template {entry.name} are seeded as placeholders: a template that reads JSON "
                "keys of an input fails until you seed those keys")))
    return found


def _secret_name(container: str, target: SecretTarget, notes: list[Note]) -> str:
    """The name to create: what follows ``:secret:`` in an ARN (a 6-character suffix included: moto matches
    an ARN whose name is a prefix of the secret's own ARN), or the id itself."""
    if ":secret:" not in target.secret_id:
        return target.secret_id
    prefix, _, secret = target.secret_id.partition(":secret:")
    _check_account(container, prefix.split(":")[4], secret, notes, target.role_arn or "")
    return secret


def _parameter_item(container: str, target: ParameterTarget | ParameterPathTarget, notes: list[Note]) -> SeedItem:
    """A parameter to create, in the account its reader's credentials are answered from; for a tree, one
    parameter under its path."""
    role = target.role_arn or ""
    if isinstance(target, ParameterPathTarget):
        item = SeedItem("ssm", target.region, f"{target.prefix}{TREE_PARAMETER}", role_arn=role)
        notes.append(Note("approximated", container, "parametersByPath", (
            f"the parameter tree {target.path} is seeded with one parameter, {item.name}: its parameters' names "
            "name the files")))
        return item
    if target.account is not None:  # given as an ARN: the parameter's own account
        _check_account(container, target.account, target.base_name, notes, role)
    return SeedItem("ssm", target.region, _parameter_name(container, target.name, notes), role_arn=role)


def _parameter_name(container: str, name: str, notes: list[Note]) -> str:
    """The parameter's name without ARN prefix or ``:version``/``:label`` selector."""
    if name.startswith("arn:"):
        prefix, _, name = name.partition(":parameter")
        _check_account(container, prefix.split(":")[4], name, notes)
        # ...:parameter/prod/db is /prod/db; ...:parameter/db is db
        name = name if name.partition(":")[0].count("/") > 1 else name.lstrip("/")
    base, _, selector = name.partition(":")
    if selector:
        notes.append(Note("approximated", container, "valueFrom", (
            f"parameter {base} is seeded with one version and no labels: the selector :{selector} may not "
            "resolve")))
    return base


def _check_account(container: str, account: str, what: str, notes: list[Note], role_arn: str = "") -> None:
    """moto answers each request from one account: the role's, for credentials it issued by AssumeRole (the
    seed creates the item with them too), else its default one."""
    served = role_arn.split(":")[4] if role_arn else MOTO_ACCOUNT
    if account != served:
        whose = f"the role {role_arn}'s account" if role_arn else "the only account it answers for without a role"
        notes.append(Note("unmapped", container, "valueFrom", (
            f"{what} is in account {account}: a moto server reads it in {served} ({whose}), so that reference "
            "is not found locally")))


def _flags(words: list[str]) -> dict[str, str]:
    """The sidecar's command words parsed by the sidecar's own parser; a command that does not parse counts as
    none (the sidecar would exit 2, which the run shows)."""
    try:
        return container_command_flags(words)
    except UsageError:
        return {}
