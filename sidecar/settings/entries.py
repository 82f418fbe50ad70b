"""One entry of the secrets list into an ``Entry``: a reference (``name`` + ``valueFrom``) or a template whose
inputs are references. Pure: a template file's text comes in ``files``, read at the edge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from sidecar.errors import ConfigError
from sidecar.names import is_utf8, name_problem
from sidecar.references import (
    ObjectTarget,
    Reference,
    SecretTarget,
    parse_parameter_path,
    parse_value_from,
    with_failover,
)
from sidecar.selection import Selection, SelectionSyntax, compile_selection
from sidecar.settings.model import Entry
from sidecar.settings.options import SHORTHAND_PREFIX
from sidecar.settings.parsers import parse_id, parse_mode, parse_region, parse_role_arn, suggest
from sidecar.settings.texts import FileTexts, Unreadable
from sidecar.template import parse_template

ENTRY_KEYS: Final = ("name", "valueFrom", "mode", "uid", "gid", "optional", "expand", "template", "templateFile",
                     "inputs", "jmesPath", "parametersByPath", "recursive", "roleArn", "failoverRegion")
TEMPLATE_KEYS: Final = ("name", "template", "templateFile", "inputs", "mode", "uid", "gid", "roleArn", "failoverRegion")
TREE_KEYS: Final = ("name", "parametersByPath", "recursive", "mode", "uid", "gid", "optional", "roleArn",
                    "failoverRegion")


@dataclass(frozen=True)
class EntryDefaults:
    """What an entry gets when it does not say: the global mode and owner, the region of references, and the
    role they are read with (None: the task's own credentials), and the failover region of Secrets Manager
    references."""

    mode: int
    uid: int
    gid: int
    region: str | None
    role_arn: str | None = None
    failover_region: str | None = None


def parse_entry(source: str, index: int, raw: object, defaults: EntryDefaults, files: FileTexts) -> Entry:
    where = f"{source}[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be an object with name and valueFrom")
    for key in raw:
        if key not in ENTRY_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}{suggest(key, ENTRY_KEYS)}")
    if "template" in raw or "templateFile" in raw:
        return _template_entry(where, raw, defaults, files)
    if "parametersByPath" in raw:
        return _tree_entry(where, raw, defaults)
    if "name" not in raw:
        raise ConfigError(f"{where}: name is required")
    if "valueFrom" not in raw:
        raise ConfigError(f"{where}: valueFrom is required (or parametersByPath, for a tree of SSM parameters)")
    if "recursive" in raw:
        raise ConfigError(f"{where}: recursive applies only to parametersByPath")
    name = raw["name"]
    where = f"{where} ({name!r})" if isinstance(name, str) else where
    value_from = raw["valueFrom"]
    if not isinstance(value_from, str):
        raise ConfigError(f"{where}: valueFrom must be a string")
    optional, expand = (_flag(where, raw, key) for key in ("optional", "expand"))
    mode, uid, gid = _ownership(where, raw, defaults)
    reference = _failover(where, _reference(where, value_from, defaults, _role(where, raw, defaults)), raw, defaults)
    selection = _selection(where, raw["jmesPath"], reference) if "jmesPath" in raw else None
    return Entry(_checked_name(where, name), value_from, reference, mode, uid, gid, optional, expand,
                 selection=selection)


def shorthand_entry(var: str, value_from: str, defaults: EntryDefaults) -> Entry:
    """``SIDECAR_SECRET_<NAME>=<valueFrom>``: one entry with the global mode and owner."""
    name = _checked_name(var, var[len(SHORTHAND_PREFIX) :])
    reference = _failover(var, _reference(var, value_from, defaults, defaults.role_arn), {}, defaults)
    return Entry(name, value_from, reference, defaults.mode, defaults.uid, defaults.gid)


def template_files(raw_entries: object) -> list[str]:
    """The template files a secrets list names (for the edge to read); lenient: the parser reports mistakes."""
    entries = raw_entries if isinstance(raw_entries, list) else []
    return [e["templateFile"] for e in entries if isinstance(e, dict) and isinstance(e.get("templateFile"), str)]


def _flag(where: str, raw: Mapping[str, object], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {key} must be true or false")
    return value


def _ownership(where: str, raw: Mapping[str, object], defaults: EntryDefaults) -> tuple[int, int, int]:
    """An entry's mode, uid and gid: its own keys, else the global settings."""
    return (
        parse_mode(f"{where}: mode", raw["mode"]) if "mode" in raw else defaults.mode,
        parse_id(f"{where}: uid", raw["uid"]) if "uid" in raw else defaults.uid,
        parse_id(f"{where}: gid", raw["gid"]) if "gid" in raw else defaults.gid,
    )


def _role(where: str, raw: Mapping[str, object], defaults: EntryDefaults) -> str | None:
    """The role an entry's references are read with: its own roleArn, else the global one."""
    return parse_role_arn(f"{where}: roleArn", raw["roleArn"]) if "roleArn" in raw else defaults.role_arn


def _checked_name(where: str, name: object) -> str:
    problem = name_problem(name)
    if problem:
        raise ConfigError(f"{where}: the name {name!r} {problem}")
    assert isinstance(name, str)  # noqa: S101 - name_problem checked the type
    return name


def _failover(where: str, reference: Reference, raw: Mapping[str, object], defaults: EntryDefaults) -> Reference:
    """The reference with its failover region: the entry's ``failoverRegion``, else (Secrets Manager only) the
    global one. An S3 object lives in one bucket, so it has none; a region cannot stand in for itself."""
    target = reference.target
    if "failoverRegion" in raw:
        region = parse_region(f"{where}: failoverRegion", raw["failoverRegion"])
        if isinstance(target, ObjectTarget):
            raise ConfigError(f"{where}: failoverRegion does not apply to {target.describe()}: an S3 object lives "
                              "in one bucket, in one region (replicate the bucket and name the copy instead)")
    elif isinstance(target, SecretTarget) and defaults.failover_region is not None:
        region = defaults.failover_region
    else:
        return reference
    if region == target.region:
        raise ConfigError(f"{where}: the failover region {region} is the region of {target.describe()} itself; "
                          "it must be another region")
    return with_failover(reference, region)


def _reference(where: str, value_from: str, defaults: EntryDefaults, role_arn: str | None) -> Reference:
    try:
        return parse_value_from(value_from, defaults.region).read_as(role_arn)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}") from None


def _selection(where: str, expression: object, reference: Reference) -> Selection:
    if not isinstance(expression, str):
        raise ConfigError(f"{where}: jmesPath must be a string (a JMESPath expression)")
    if "\x00" in expression or not is_utf8(expression):
        raise ConfigError(f"{where}: jmesPath is not text: it holds a NUL character or is not valid UTF-8")
    if reference.json_key is not None:
        # Two selections of one value: which applies first would be a guess.
        raise ConfigError(
            f"{where}: jmesPath cannot be combined with the json-key {reference.json_key!r} of valueFrom: remove "
            "the json-key and write the whole path in jmesPath"
        )
    try:
        return compile_selection(expression)
    except SelectionSyntax as exc:
        raise ConfigError(f"{where}: jmesPath {expression!r} {exc.reason}") from None


def _tree_entry(where: str, raw: Mapping[str, object], defaults: EntryDefaults) -> Entry:
    """``parametersByPath``: a directory with one file per parameter under the path."""
    name = raw.get("name")
    where = f"{where} ({name!r})" if isinstance(name, str) else where
    if "valueFrom" in raw:
        raise ConfigError(f"{where}: give either valueFrom or parametersByPath, not both")
    for key in raw:
        if key not in TREE_KEYS:
            raise ConfigError(f"{where}: {key!r} does not apply to a parametersByPath entry (keys: "
                              f"{', '.join(TREE_KEYS)})")
    if "name" not in raw:
        raise ConfigError(f"{where}: name is required")
    name = _checked_name(where, name)
    recursive = raw.get("recursive", True)  # the whole tree unless asked for one level
    if not isinstance(recursive, bool):
        raise ConfigError(f"{where}: recursive must be true or false")
    path = raw["parametersByPath"]
    try:
        target = parse_parameter_path(path, recursive, defaults.region)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}") from None
    assert isinstance(path, str)  # noqa: S101 - parse_parameter_path checked the type
    mode, uid, gid = _ownership(where, raw, defaults)
    reference = _failover(where, Reference(target).read_as(_role(where, raw, defaults)), raw, defaults)
    return Entry(name, path, reference, mode, uid, gid, _flag(where, raw, "optional"))


def _template_entry(where: str, raw: Mapping[str, object], defaults: EntryDefaults, files: FileTexts) -> Entry:
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
    text = raw["template"] if "template" in raw else _template_file_text(where, raw["templateFile"], files)
    if not isinstance(text, str):
        raise ConfigError(f"{where}: template must be a string")
    if "\x00" in text or not is_utf8(text):
        raise ConfigError(f"{where}: the template is not text: it holds a NUL character or is not valid UTF-8")
    template = parse_template(text, where)
    inputs = raw.get("inputs")
    if not isinstance(inputs, dict) or not inputs:
        raise ConfigError(f"{where}: inputs must be an object mapping input names to valueFrom references")
    role_arn = _role(where, raw, defaults)  # a template's roleArn reads every one of its inputs
    parsed = []
    for input_name, value_from in sorted(inputs.items()):
        if not isinstance(value_from, str):
            raise ConfigError(f"{where}: input {input_name!r} must be a valueFrom string")
        try:
            reference = parse_value_from(value_from, defaults.region).read_as(role_arn)
        except ConfigError as exc:
            raise ConfigError(f"{where}: input {input_name!r}: {exc.message}") from None
        parsed.append((input_name, value_from, _failover(f"{where}: input {input_name!r}", reference, raw, defaults)))
    undeclared = sorted(template.inputs - set(inputs))
    if undeclared:
        raise ConfigError(f"{where}: the template uses {undeclared[0]!r}, which is not in inputs")
    unused = sorted(set(inputs) - template.inputs)
    if unused:
        raise ConfigError(f"{where}: input {unused[0]!r} is not used by the template")
    mode, uid, gid = _ownership(where, raw, defaults)
    return Entry(name, "", None, mode, uid, gid, template=template, inputs=tuple(parsed))


def _template_file_text(where: str, path: object, files: FileTexts) -> str:
    if not isinstance(path, str) or not path or "\x00" in path or not is_utf8(path):
        raise ConfigError(f"{where}: templateFile must be a path (UTF-8, without NUL)")
    content = files.get(path, Unreadable("not read"))
    if isinstance(content, Unreadable):
        raise ConfigError(f"{where}: cannot read templateFile {path}: {content.reason}")
    try:
        # As a text-mode read: universal newlines, so a template written on Windows renders with "\n".
        return content.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: cannot read templateFile {path}: not UTF-8") from None
