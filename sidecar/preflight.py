"""``secrets-sidecar check --aws [--read]``: would each entry succeed, with the credentials at hand?

The classification is pure: an AWS answer for a target (metadata, a refusal, a fetched value) becomes a
``Verdict``, an entry's verdict is the first of its references that is not ``ok``, and the report is the list
of entries with an exit code. ``preflight`` is the thin edge: the metadata calls (``sidecar.probe``) or, with
``read``, the run's own fetch and render, committing nothing. Nothing here holds a value longer than a render,
and no message is made from one.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, Literal

from sidecar.aws_errors import MAX_AWS_MESSAGE_CHARS, PERMISSION
from sidecar.deadline import Deadline
from sidecar.errors import EXIT_FETCH, EXIT_OK, FetchError
from sidecar.outcomes import Failure, Fetched, FetchedTree, Outcome
from sidecar.probe import Answer, ObjectMetadata, ParameterMetadata, Refused, SecretMetadata, TreeMetadata
from sidecar.references import (
    AWSCURRENT,
    ObjectTarget,
    ParameterPathTarget,
    ParameterTarget,
    Reference,
    SecretTarget,
    Target,
)
from sidecar.retry_policy import ACCESS_DENIED_CODES, NOT_FOUND_CODES
from sidecar.settings.model import Entry, Settings

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from sidecar.fetch import Fetcher

Kind = Literal["ok", "missing", "denied", "undecryptable", "version_missing", "unresolved", "error"]
KINDS: Final[tuple[Kind, ...]] = (
    "ok", "missing", "denied", "undecryptable", "version_missing", "unresolved", "error",
)
Mode = Literal["metadata", "read"]
REPORT_VERSION: Final = 1
# An optional entry whose reference is absent is skipped by a run, as these verdicts say it would be.
ABSENT: Final[frozenset[Kind]] = frozenset({"missing", "version_missing"})
KMS_CODES: Final = frozenset({
    "DecryptionFailure", "KMSAccessDeniedException", "KMSDisabledException", "KMSInvalidStateException",
    "KMSNotFoundException", "KMS.DisabledException", "KMS.KMSInvalidStateException", "KMS.NotFoundException",
})
VERSION_CODES: Final = frozenset({"ParameterVersionNotFound", "NoSuchVersion", "NoSuchStage"})
# IAM's access denied message: "User: P is not authorized to perform: ACTION on resource: RESOURCE because ..."
_DENIED = re.compile(r"not authorized to perform:? (?P<action>[\w-]+:[\w*-]+)(?: on resource:? (?P<resource>[^\s,]+))?")
READ_HINT: Final = "--read proves kms:Decrypt"
_READ_OPERATION: Final = {"secretsmanager": "GetSecretValue", "ssm": "GetParameters", "s3": "GetObject"}


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    detail: str  # plain English, naming the reference and the cause; never a value
    code: str | None = None  # the AWS error code, where AWS answered one
    action: str | None = None  # the IAM action denied (or needed)
    resource: str | None = None  # the resource it was denied on
    notes: tuple[str, ...] = ()  # what this check did not prove


@dataclass(frozen=True)
class Checked:
    """One reference of an entry and its verdict."""

    value_from: str
    target: str
    verdict: Verdict


@dataclass(frozen=True)
class EntryVerdict:
    name: str
    optional: bool
    verdict: Verdict  # the first reference's verdict that is not ok; else ok (or, with --read, unresolved)
    references: tuple[Checked, ...]

    @property
    def warning(self) -> bool:
        """An optional entry that a run would skip: a warning, not a failure."""
        return self.optional and self.verdict.kind in ABSENT

    @property
    def fails(self) -> bool:
        return self.verdict.kind != "ok" and not self.warning


@dataclass(frozen=True)
class Report:
    mode: Mode
    entries: tuple[EntryVerdict, ...]
    problems: tuple[str, ...] = ()  # the set as a whole (read mode): colliding names, the env file

    @property
    def exit_code(self) -> int:
        """The code a run would exit with: 3 when some required entry would not be fetched or rendered."""
        failed = self.problems or any(entry.fails for entry in self.entries)
        return EXIT_FETCH if failed else EXIT_OK


# --- classification (pure) --------------------------------------------------------------------------------


def refusal_verdict(target: Target, code: str, message: str, operation: str) -> Verdict:
    """A permanent AWS error for ``target`` as a verdict; ``message`` is AWS's (or the run's value-free reason)."""
    what = target.describe()
    said = f" (AWS: {message[:MAX_AWS_MESSAGE_CHARS]})" if message else ""
    denied = _DENIED.search(message)
    action = denied["action"] if denied else None
    resource = denied["resource"] if denied and denied["resource"] else None
    if code in VERSION_CODES:
        return Verdict("version_missing", f"{what}: that version was not found ({code}){said}", code)
    if code in NOT_FOUND_CODES or code == "404":
        return Verdict("missing", f"{what} was not found ({code}){said}", code)
    if code == "InvalidRequestException" and "deletion" in message.lower():
        return Verdict("missing", f"{what} is scheduled for deletion ({code}): it cannot be read{said}", code)
    if code in KMS_CODES or (code in ACCESS_DENIED_CODES and action is not None and action.startswith("kms:")):
        action = action or "kms:Decrypt"
        return Verdict("undecryptable", f"KMS could not decrypt {what} ({code}): {action} on its key{said}", code,
                       action, resource)
    if code in ACCESS_DENIED_CODES:
        action = action or PERMISSION.get(operation, operation)
        on = resource or what
        hint = _denied_hint(target, operation, action)
        return Verdict("denied", f"{action} denied on {on} ({code}){hint}", code, action, resource or what)
    return Verdict("error", f"{operation} failed for {what} with {code}{said}", code)


def _denied_hint(target: Target, operation: str, action: str) -> str:
    if action == "sts:AssumeRole":
        return "; the credentials at hand may not assume the entry's roleArn (its trust policy, or their own policy)"
    if action != PERMISSION.get(operation):
        return ""
    if operation == "DescribeSecret":
        return ("; a run needs only secretsmanager:GetSecretValue: grant DescribeSecret to the role that runs this "
                "check, or check with --read")
    if operation == "HeadObject" and isinstance(target, ObjectTarget):
        return ("; S3 also answers 403 for a missing object when the role lacks s3:ListBucket on "
                f"arn:aws:s3:::{target.bucket}")
    return ""


def metadata_verdict(target: Target, answer: Answer) -> Verdict:
    """What a metadata call proves about one target."""
    if isinstance(answer, Refused):
        return refusal_verdict(target, answer.code, answer.message, answer.operation)
    if isinstance(answer, Failure):
        return failure_verdict(target, answer)
    what = target.describe()
    if isinstance(target, SecretTarget) and isinstance(answer, SecretMetadata):
        return _secret_verdict(target, answer)
    if isinstance(target, ParameterTarget) and isinstance(answer, ParameterMetadata):
        if answer.base_found is False or (answer.base_found is None and not answer.found):
            return Verdict("missing", f"{what} was not found (GetParameters: InvalidParameters)", "ParameterNotFound")
        if not answer.found:
            return Verdict("version_missing", f"{what}: the parameter exists, its version or label "
                           f"{_selector(target)!r} "
                           "does not (GetParameters: InvalidParameters)", "ParameterVersionNotFound")
        notes = (f"SecureString: decryption not checked ({READ_HINT})",) if answer.secure else ()
        return Verdict("ok", f"{what} exists", notes=notes)
    if isinstance(target, ParameterPathTarget) and isinstance(answer, TreeMetadata):
        return Verdict("ok", f"{what}: at least one parameter", notes=(
            f"names and versions read without decryption: SecureStrings' decryption not checked ({READ_HINT})",))
    if isinstance(target, ObjectTarget) and isinstance(answer, ObjectMetadata):
        if not answer.version_found:
            return Verdict("version_missing", f"{what}: the object exists, that version does not (HeadObject)",
                           "NoSuchVersion")
        notes = (f"SSE-KMS key {answer.kms_key_id} not checked ({READ_HINT})",) if answer.kms_key_id else ()
        return Verdict("ok", f"{what} exists", notes=notes)
    return Verdict("error", f"{what}: an answer of the wrong kind ({type(answer).__name__})")


def _secret_verdict(target: SecretTarget, answer: SecretMetadata) -> Verdict:
    what = target.describe()
    if answer.scheduled_for_deletion:
        return Verdict("missing", f"{what} is scheduled for deletion: it cannot be read (DescribeSecret: "
                       "DeletedDate)", "InvalidRequestException")
    if target.version_id is not None:
        if target.version_id not in answer.stages:
            return Verdict("version_missing", f"{what}: no version with that id has a staging label (DescribeSecret: "
                           "VersionIdsToStages); a version without a label is deprecated, and Secrets Manager may "
                           "delete it at any time", "ResourceNotFoundException")
    else:
        stage = target.version_stage or AWSCURRENT
        if not any(stage in labels for labels in answer.stages.values()):
            return Verdict("version_missing", f"{what}: no version is in stage {stage} (DescribeSecret: "
                           "VersionIdsToStages)", "ResourceNotFoundException")
    key = answer.kms_key_id or "aws/secretsmanager (AWS managed)"
    return Verdict("ok", f"{what} exists", notes=(f"KMS key {key} not checked ({READ_HINT})",))


def failure_verdict(target: Target, failure: Failure) -> Verdict:
    """A fetch's value-free failure (retries exhausted, too large, the deadline, a batch item's error, an empty
    tree)."""
    operation = "GetParametersByPath" if isinstance(target, ParameterPathTarget) else _READ_OPERATION[target.service]
    verdict = refusal_verdict(target, failure.code, failure.reason, operation)
    if verdict.kind == "error" and failure.not_found:
        return Verdict("missing", failure.reason, failure.code)
    return replace(verdict, detail=failure.reason) if verdict.kind in ("error", "missing") else verdict


def read_verdict(target: Target, outcome: Outcome) -> Verdict:
    """What a full fetch proves about one target: the value was fetched, so it exists and was decrypted."""
    if isinstance(outcome, Fetched):
        return Verdict("ok", f"{target.describe()} fetched (decrypted where encrypted); the value was discarded")
    if isinstance(outcome, FetchedTree):
        return Verdict("ok", f"{target.describe()}: {len(outcome.parameters)} parameter(s) fetched and decrypted; "
                       "the values were discarded")
    if isinstance(outcome, Refused):
        verdict = refusal_verdict(target, outcome.code, outcome.message, outcome.operation)
    elif isinstance(outcome, Failure):
        verdict = failure_verdict(target, outcome)
    else:  # a tree's page is followed up until its last: none is left unanswered
        return Verdict("error", f"{target.describe()}: the tree was not read to its last page")
    if verdict.kind == "missing" and isinstance(target, ParameterTarget) and _selector(target):
        # GetParameters answers a missing version or label as it answers a missing parameter.
        return replace(verdict, detail=f"{verdict.detail}: the parameter or its version or label "
                       f"{_selector(target)!r} does not exist (check without --read tells which)")
    return verdict


def _selector(target: ParameterTarget) -> str:
    return "" if target.is_secret_reference else target.name.partition(":")[2]


def entry_verdict(entry: Entry, verdicts: Mapping[Target, Verdict], rendered: str | None = None) -> EntryVerdict:
    """An entry's verdict: the first reference that would fail, else ``rendered`` (a render's problem, read
    mode), else ok."""
    checked = tuple(
        Checked(value_from, _named(ref.target), verdicts.get(ref.target, Verdict(
            "error", f"{ref.target.describe()} was not checked")))
        for value_from, ref in _references(entry)
    )
    first = next((c.verdict for c in checked if c.verdict.kind != "ok"), None)
    if first is None and rendered is not None:
        first = Verdict("unresolved", rendered)
    if first is None:
        notes = tuple(note for c in checked for note in c.verdict.notes)
        first = Verdict("ok", "; ".join(c.verdict.detail for c in checked), notes=notes)
    return EntryVerdict(entry.name, entry.optional, first, checked)


def _named(target: Target) -> str:
    role = f" as {target.role_arn}" if target.role_arn else ""
    return f"{target.describe()}{role}"


def _references(entry: Entry) -> list[tuple[str, Reference]]:
    if entry.reference is not None:
        return [(entry.value_from, entry.reference)]
    return [(value_from, reference) for _, value_from, reference in entry.inputs]


# --- the report ---------------------------------------------------------------------------------------------


def summary(report: Report) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(KINDS, 0)
    for entry in report.entries:
        counts[entry.verdict.kind] += 1
    return {**counts, "warnings": sum(entry.warning for entry in report.entries), "problems": len(report.problems)}


def report_document(report: Report) -> dict[str, object]:
    """The ``--json`` document (schema in docs/operations.md)."""

    def verdict(v: Verdict) -> dict[str, object]:
        return {"verdict": v.kind, "detail": v.detail, "code": v.code, "action": v.action, "resource": v.resource,
                "notes": list(v.notes)}

    return {
        "version": REPORT_VERSION,
        "mode": report.mode,
        "exitCode": report.exit_code,
        "ok": report.exit_code == EXIT_OK,
        "summary": summary(report),
        "entries": [
            {"name": e.name, "optional": e.optional, "warning": e.warning, **verdict(e.verdict),
             "references": [{"valueFrom": c.value_from, "target": c.target, **verdict(c.verdict)}
                            for c in e.references]}
            for e in report.entries
        ],
        "problems": list(report.problems),
    }


def report_json(report: Report) -> str:
    return json.dumps(report_document(report), indent=2)


def report_lines(report: Report) -> list[str]:
    """One line per entry (with its notes below it), the set's problems, and a summary line."""
    how = ("fetched and rendered, nothing written, values discarded" if report.mode == "read"
           else "metadata calls only; --read also fetches and renders, writing nothing")
    lines = [f"preflight against AWS: {len(report.entries)} entries ({how})"]
    width = max(len(k) for k in KINDS)
    for entry in report.entries:
        label = entry.verdict.kind.replace("_", " ")
        optional = " (optional: a run skips it; warning)" if entry.warning else (
            " (optional)" if entry.optional else "")
        lines.append(f"  {label:<{width}}  {entry.name}{optional}: {entry.verdict.detail}")
        lines += [f"  {'':<{width}}    note: {note}" for note in entry.verdict.notes]
    lines += [f"  {'error':<{width}}  the set: {problem}" for problem in report.problems]
    counts = summary(report)
    said = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items() if n and kind in KINDS)
    warned = f", {counts['warnings']} warning(s)" if counts["warnings"] else ""
    problems = f", {counts['problems']} problem(s) with the set" if counts["problems"] else ""
    verdict = "every required entry would succeed" if report.exit_code == EXIT_OK else "a run would fail"
    lines.append(f"summary: {said or 'no entries'}{warned}{problems}: {verdict} (exit {report.exit_code})")
    return lines


# --- the edge -----------------------------------------------------------------------------------------------


def preflight(settings: Settings, log: FilteringBoundLogger, started: float, *, read: bool) -> Report:
    """Ask AWS about every entry with the credentials at hand; write nothing. SIDECAR_TIMEOUT, measured from
    ``started``, bounds the whole of it."""
    from sidecar import aws
    from sidecar.probe import keeping_refusals, metadata, probe_plan
    from sidecar.run import Job, check_regions, plan_for

    job = Job(settings, log)  # its clients and fetcher are the run's: same timeouts, retries and body limit
    check_regions(settings, job.clients.session)
    fetcher = job.fetcher(max(0.0, settings.timeout_seconds - (time.monotonic() - started)))
    fetcher.resolve_credentials()
    calls = plan_for(settings) if read else probe_plan(job.targets)
    # A role that cannot be assumed fails the entries read through it, not the whole check.
    roles: dict[tuple[str, str], Verdict] = {}
    for role_arn, region in sorted({(c.role_arn, c.region) for c in calls if c.role_arn is not None}):
        try:
            fetcher.resolve_roles([c for c in calls if (c.role_arn, c.region) == (role_arn, region)])
        except FetchError as exc:
            roles[role_arn, region] = role_verdict(role_arn, exc.message)
    calls = tuple(c for c in calls if c.role_arn is None or (c.role_arn, c.region) not in roles)
    not_assumed = {t: roles[t.role_arn, t.region] for t in job.targets
                   if t.role_arn is not None and (t.role_arn, t.region) in roles}
    if not read:
        answers = fetcher.run(calls, keeping_refusals(metadata))
        verdicts = {t: not_assumed.get(t) or metadata_verdict(t, answers.get(t, _unanswered(t))) for t in job.targets}
        verdicts = with_failover_notes(verdicts, _failover_verdicts(fetcher, job.targets))
        return Report("metadata", tuple(entry_verdict(entry, verdicts) for entry in settings.entries))
    fetched = fetcher.run(calls, keeping_refusals(aws.perform))
    outcomes = {t: fetched.get(t, _unanswered(t)) for t in job.targets}
    verdicts = {t: not_assumed.get(t) or read_verdict(t, outcomes[t]) for t in job.targets}
    verdicts = with_failover_notes(verdicts, _failover_verdicts(fetcher, job.targets))
    deadline = Deadline(settings.timeout_seconds - (time.monotonic() - started))
    return render_check(settings, outcomes, verdicts, deadline)


def in_failover_region(target: Target) -> Target | None:
    """``target`` as a failover call reads it: in its failover region, a secret by its replica's ARN (the
    primary's with the region swapped); None for a target without a failover region."""
    region = target.failover_region
    if region is None:
        return None
    moved = replace(target, region=region, failover_region=None)
    return replace(moved, secret_id=moved.secret_id_in(region)) if isinstance(moved, SecretTarget) else moved


def with_failover_notes(
    verdicts: Mapping[Target, Verdict], failover: Mapping[Target, Verdict]
) -> dict[Target, Verdict]:
    """Each reference's verdict with a note of what its failover region answered (``failover``, by the
    reference's own target): a run that fails over would meet that answer, so a replica that is missing or
    denied is said now rather than found in an outage. A note, not a verdict: the reference's own region
    answered, and a run reads it there first."""
    noted = dict(verdicts)
    for target, replica in failover.items():
        said = "ok" if replica.kind == "ok" else f"{replica.kind.replace('_', ' ')}: {replica.detail}"
        own = noted[target]
        noted[target] = replace(own, notes=(*own.notes, f"failover region {target.failover_region}: {said}"))
    return noted


def _failover_verdicts(fetcher: Fetcher, targets: tuple[Target, ...]) -> dict[Target, Verdict]:
    """The metadata verdicts of the references that have a failover region, asked in that region."""
    from sidecar.probe import keeping_refusals, metadata, probe_plan

    replicas = {t: r for t in targets if (r := in_failover_region(t)) is not None}
    if not replicas:
        return {}
    try:
        answers = fetcher.run(probe_plan(replicas.values()), keeping_refusals(metadata))
    except FetchError as exc:  # e.g. a role that cannot be assumed in the failover region
        return {t: Verdict("error", exc.message) for t in replicas}
    return {t: metadata_verdict(r, answers.get(r, _unanswered(r))) for t, r in replicas.items()}


def role_verdict(role_arn: str, reason: str) -> Verdict:
    """The verdict of every reference read through a role that could not be assumed (the run's reason)."""
    if "access denied" in reason:
        return Verdict("denied", reason, "AccessDenied", "sts:AssumeRole", role_arn)
    return Verdict("error", reason)


def _unanswered(target: Target) -> Failure:
    return Failure("MissingFromResponse", f"no call answered for {target.describe()}")


def render_check(settings: Settings, outcomes: Mapping[Target, Outcome], verdicts: Mapping[Target, Verdict],
                 deadline: Deadline | None = None) -> Report:
    """Read mode: render each entry whose references were all fetched, then the whole set (names that collide,
    the env file), exactly as a run would, and keep nothing."""
    from sidecar.render import render

    entries: list[EntryVerdict] = []
    for entry in settings.entries:
        problem = None
        if all(isinstance(outcomes.get(ref.target), Fetched | FetchedTree) for ref in entry.references):
            try:
                render(replace(settings, entries=(entry,), env_file=None), outcomes, deadline=deadline)
            except FetchError as exc:
                problem = exc.message.removeprefix(f"{entry.name!r}: ")
        entries.append(entry_verdict(entry, verdicts, problem))
    problems: tuple[str, ...] = ()
    if not any(entry.fails for entry in entries):
        try:
            render(settings, outcomes, deadline=deadline)
        except FetchError as exc:
            problems = (exc.message,)
    return Report("read", tuple(entries), problems)
