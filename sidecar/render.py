"""Turn fetched values into the files to write: pure, so every rule here is tested without AWS or disks."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sidecar.content import ContentProblem, json_document, json_text, utf8
from sidecar.deadline import Deadline
from sidecar.errors import FetchError
from sidecar.names import collision_problems, component_problem, is_env_name, name_problem
from sidecar.outcomes import Failure, Fetched, FetchedTree, Outcome
from sidecar.output import OutputFile
from sidecar.references import Reference
from sidecar.secret import SecretBytes
from sidecar.selection import Selection, SelectionFailed, json_type
from sidecar.settings.model import Entry, Settings
from sidecar.shell import shell_quoted
from sidecar.template import render_template


@dataclass(frozen=True)
class Rendered:
    files: tuple[OutputFile, ...]
    manifest: bytes  # value-free: names, sources, versions, sizes
    skipped: tuple[tuple[str, str], ...]  # optional entries not found: (name, reason)
    regions: Mapping[str, str] = field(default_factory=dict)  # file path -> the region(s) that served its entry


def render(
    settings: Settings,
    outcomes: Mapping[Any, Outcome],
    now: datetime | None = None,
    generation: int = 1,
    deadline: Deadline | None = None,
) -> Rendered:
    """The files of the set; ``deadline`` (SIDECAR_TIMEOUT) is checked before each entry."""
    files: list[OutputFile] = []
    skipped: list[tuple[str, str]] = []
    records: list[dict[str, object]] = []
    env_lines: list[bytes] = []
    regions: dict[str, str] = {}
    failures = _failures(settings.entries, outcomes)
    if failures:
        first = failures[0]
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise FetchError(f"{first}{more}")
    for done, entry in enumerate(settings.entries):
        if deadline is not None and deadline.remaining() <= 0:
            raise FetchError(f"the SIDECAR_TIMEOUT deadline passed while rendering: {done} of "
                             f"{len(settings.entries)} entries rendered")
        fetched = [outcomes[ref.target] for ref in entry.references]
        missing = [o for o in fetched if isinstance(o, Failure)]
        if missing:  # only optional not-found entries reach here
            skipped.append((entry.name, missing[0].reason))
            continue
        entry_files = [
            OutputFile(path, content, entry.mode, entry.uid, entry.gid, label)
            for path, label, content in _values(entry, outcomes, settings.max_bytes)
        ]
        files += entry_files
        served = ",".join(sorted({o.region for o in fetched if isinstance(o, Fetched | FetchedTree) and o.region}))
        regions.update((f.path, served) for f in entry_files if served)
        if settings.env_file:
            env_lines += [_env_line(entry, f) for f in entry_files]
        records.append(_record(entry, outcomes, entry_files))
    if settings.env_file:
        env = SecretBytes(b"".join(env_lines))
        files.append(OutputFile(settings.env_file, env, settings.file_mode, settings.uid, settings.gid))
    for problem in collision_problems([f.path for f in files], labels=[f.shown for f in files]):
        raise FetchError(f"expanded keys collide: {problem}")
    if settings.env_file:
        _check_env_variables(settings.env_file, [f for f in files if f.path != settings.env_file])
    manifest = {
        "version": 1,
        "generation": generation,
        "writtenAt": (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "entries": records,
        "skipped": [name for name, _ in skipped],
        "envFile": settings.env_file,
    }
    return Rendered(tuple(files), json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n", tuple(skipped),
                    regions)


def _failures(entries: Sequence[Entry], outcomes: Mapping[Any, Outcome]) -> list[str]:
    reasons = []
    for entry in entries:
        for reference in entry.references:
            outcome = outcomes.get(reference.target)
            if outcome is None:
                reasons.append(f"{entry.name!r}: {reference.target.describe()} was not fetched")
            elif isinstance(outcome, Failure) and not (entry.optional and outcome.not_found):
                reasons.append(f"{entry.name!r}: {outcome.reason}")
    return reasons


def _referenced(entry: Entry, reference: Reference, outcomes: Mapping[Any, Outcome]) -> SecretBytes:
    """The value a reference names: the fetched value, or one key of it with a json-key."""
    fetched = outcomes[reference.target]
    assert isinstance(fetched, Fetched)  # noqa: S101 - failures were handled before rendering
    key = reference.json_key
    if key is None:
        return fetched.value
    document = _json_object(entry, reference, fetched.value, f"json-key {key!r}")
    if key not in document:
        raise FetchError(f"{entry.name!r}: {reference.target.describe()} has no key {key!r}")
    return _json_value(entry, document[key], f"the key {key!r} of {reference.target.describe()}")


def _values(entry: Entry, outcomes: Mapping[Any, Outcome], max_bytes: int) -> list[tuple[str, str, SecretBytes]]:
    """Each file of an entry: its path, how messages name it ("" for its path) and its content."""
    if entry.tree is not None:
        return _tree_files(entry, outcomes[entry.tree])
    if entry.template is not None:
        inputs = {name: _referenced(entry, ref, outcomes) for name, _, ref in entry.inputs}
        return [(entry.name, "", render_template(entry.template, inputs, repr(entry.name), max_bytes))]
    assert entry.reference is not None  # noqa: S101 - an entry has a reference or a template
    value = _referenced(entry, entry.reference, outcomes)
    if entry.selection is None and not entry.expand:
        return [(entry.name, "", value)]
    if entry.selection is None:
        document = _json_object(entry, entry.reference, value, "expand")
    else:
        selected = _selected(entry, entry.reference, entry.selection, value)
        if not entry.expand:
            return [(entry.name, "", _json_value(entry, selected, "the selection"))]
        if not isinstance(selected, dict):
            raise FetchError(f"{entry.name!r}: expand needs a JSON object, but jmesPath "
                             f"{entry.selection.expression!r} selects a JSON {json_type(selected)} in "
                             f"{entry.reference.target.describe()}")
        document = selected
    files = []
    for position, member in enumerate(document, start=1):
        # A key is secret content: messages name its position, never the key.
        problem = component_problem(member) if isinstance(member, str) else "is not a string"
        if problem:
            raise FetchError(f"{entry.name!r}: key #{position} of the JSON secret cannot be a file name: it {problem}")
        content = _json_value(entry, document[member], f"key #{position} of the JSON secret")
        files.append((f"{entry.name}/{member}", expanded_label(entry.name, position), content))
    return files


def _selected(entry: Entry, reference: Reference, selection: Selection, value: SecretBytes) -> object:
    """What ``selection`` selects of the JSON ``value``; nothing selected (null) fails, even for an optional
    entry: its secret exists, and a silent skip would hide a mistyped path."""
    where = f"{entry.name!r}: jmesPath {selection.expression!r}"
    try:
        document = json_document(value.reveal())
    except ContentProblem as problem:
        raise FetchError(f"{where} needs JSON, but {reference.target.describe()} {problem.reason}") from None
    try:
        selected = selection.apply(document)
    except SelectionFailed as failed:
        raise FetchError(f"{where} cannot be applied to {reference.target.describe()}: the expression "
                         f"{failed.reason}") from None
    if selected is None:
        raise FetchError(f"{where} matches nothing in {reference.target.describe()}")
    return selected


def _tree_files(entry: Entry, fetched: Outcome) -> list[tuple[str, str, SecretBytes]]:
    """One file per parameter of a tree, at its name relative to the path, under the entry's directory.

    A parameter name is not secret (its file's path is logged like any other), but one that cannot be a file
    name is named by its position in name order, as ``expand`` names a key: the name came from an answer,
    and is not repeated whatever it holds."""
    tree = entry.tree
    assert tree is not None and isinstance(fetched, FetchedTree)  # noqa: S101 - failures were handled before
    files = []
    for position, parameter in enumerate(fetched.parameters, start=1):
        relative = tree.relative_name(parameter.name)
        path = f"{entry.name}/{relative}"
        problem = "is not under the path" if relative is None else name_problem(path)
        if problem:
            raise FetchError(f"{entry.name!r}: parameter #{position} (in name order) under {tree.path} cannot be a "
                             f"file: its name relative to the path {problem}")
        assert parameter.value is not None  # noqa: S101 - a fetch reads values; only a refresh check does not
        files.append((path, "", parameter.value))
    for problem in collision_problems([path for path, _, _ in files]):
        raise FetchError(f"{entry.name!r}: the parameters under {tree.path} cannot all be files: {problem}")
    return files


def expanded_label(entry_name: str, position: int) -> str:
    """How messages and log lines name the file of an expanded entry's key at ``position`` (from 1)."""
    return f"{entry_name}/<key #{position}>"


def _json_object(entry: Entry, reference: Reference, value: SecretBytes, purpose: str) -> dict[str, Any]:
    try:
        document = json_document(value.reveal())
    except ContentProblem as problem:
        raise FetchError(
            f"{entry.name!r}: {purpose} needs a JSON object, but {reference.target.describe()} {problem.reason}"
        ) from None
    if not isinstance(document, dict):
        raise FetchError(
            f"{entry.name!r}: {purpose} needs a JSON object, but {reference.target.describe()} "
            f"holds a JSON {type(document).__name__}"
        )
    return document


def _json_value(entry: Entry, value: object, what: str) -> SecretBytes:
    """One member of a JSON secret as the bytes of its file; ``what`` names it in messages (never by content)."""
    try:
        return SecretBytes(utf8(json_text(value)))
    except ContentProblem as problem:
        raise FetchError(f"{entry.name!r}: {what} {problem.reason}") from None


def _check_env_variables(env_file: str, files: Sequence[OutputFile]) -> None:
    """Two files that become one variable (``a/b`` and ``a_b``): the env file could hold only one of them."""
    seen: dict[str, OutputFile] = {}
    for file in files:
        variable = file.path.replace("/", "_")
        if variable in seen:
            raise FetchError(
                f"files {seen[variable].shown!r} and {file.shown!r} would both be the same variable in the env "
                f"file {env_file!r}; rename one of the entries"
            )
        seen[variable] = file


def _env_line(entry: Entry, file: OutputFile) -> bytes:
    variable = file.path.replace("/", "_")
    if not is_env_name(variable):
        raise FetchError(f"{entry.name!r}: the name of {file.shown!r} cannot be an environment variable name in the "
                         "env file")
    value = file.content.reveal()
    if b"\x00" in value:
        raise FetchError(f"{entry.name!r}: the value holds a NUL byte, which an env file cannot represent")
    return variable.encode() + b"=" + shell_quoted(value) + b"\n"


def _record(entry: Entry, outcomes: Mapping[Any, Outcome], files: list[OutputFile]) -> dict[str, object]:
    def source(value_from: str, reference: Reference) -> dict[str, object]:
        fetched = outcomes[reference.target]
        version = fetched.version if isinstance(fetched, Fetched) else None
        served = fetched.region if isinstance(fetched, Fetched) else None
        target = reference.target
        record: dict[str, object] = {"service": target.service, "region": target.region,
                                     "servedBy": served or target.region, "valueFrom": value_from,
                                     "versionId": version}
        if target.failover_region is not None:
            record["failoverRegion"] = target.failover_region
        if target.role_arn is not None:
            record["roleArn"] = target.role_arn  # not secret: names whose credentials read it
        return record

    records = [{"path": f.path, "bytes": len(f.content), "mode": f"{f.mode:04o}", "uid": f.uid, "gid": f.gid}
               for f in files]
    if entry.tree is not None:
        tree = entry.tree
        fetched_tree = outcomes[tree]
        assert isinstance(fetched_tree, FetchedTree)  # noqa: S101 - failures were handled before rendering
        tree_source: dict[str, object] = {"service": tree.service, "region": tree.region,
                                          "servedBy": fetched_tree.region or tree.region,
                                          "parametersByPath": tree.path, "recursive": tree.recursive}
        if tree.failover_region is not None:
            tree_source["failoverRegion"] = tree.failover_region
        origin: dict[str, object] = {"source": tree_source}
        versions = {f"{entry.name}/{tree.relative_name(p.name)}": p.version for p in fetched_tree.parameters}
        records = [{**record, "versionId": versions.get(str(record["path"]))} for record in records]
    elif entry.template is not None:
        origin = {"inputs": {name: source(vf, ref) for name, vf, ref in entry.inputs}}
    else:
        assert entry.reference is not None  # noqa: S101 - an entry has a reference or a template
        record = source(entry.value_from, entry.reference)
        if entry.selection is not None:  # recorded beside valueFrom, which records a json-key
            record["jmesPath"] = entry.selection.expression
        origin = {"source": record}
    return {"name": entry.name, **origin, "files": records}
