"""The live preflight's pure core: AWS answers -> per-reference verdicts -> per-entry verdicts -> report and exit
code. The end-to-end tests (tests/e2e/test_preflight.py) prove the wiring against moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sidecar.config import load_settings
from sidecar.outcomes import Failure, Fetched
from sidecar.preflight import (
    KINDS,
    Report,
    Verdict,
    entry_verdict,
    metadata_verdict,
    read_verdict,
    refusal_verdict,
    render_check,
    report_document,
    report_lines,
    role_verdict,
)
from sidecar.probe import ObjectMetadata, ParameterMetadata, Refused, SecretMetadata, probe_plan, refused
from sidecar.references import ObjectTarget, ParameterTarget, SecretTarget
from sidecar.secret import SecretBytes
from sidecar.settings.model import Settings

REGION = "eu-west-1"
ARN = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:prod/db-AbCdEf"
SECRET = SecretTarget(REGION, ARN)
ROLE = "arn:aws:sts::123456789012:assumed-role/ci/run"


def iam_message(action: str, resource: str) -> str:
    return (f"User: {ROLE} is not authorized to perform: {action} on resource: {resource} because no "
            f"identity-based policy allows the {action} action")


def settings_for(*entries: dict[str, Any]) -> Settings:
    environ = {"AWS_REGION": REGION, "SIDECAR_SECRETS": json.dumps(list(entries))}
    return load_settings({}, environ, process_uid=1000, process_gid=1000)


# --- one reference -----------------------------------------------------------------------------------------


def test_a_denial_names_the_action_and_resource_aws_named() -> None:
    verdict = refusal_verdict(SECRET, "AccessDeniedException", iam_message("secretsmanager:DescribeSecret", ARN),
                              "DescribeSecret")

    assert (verdict.kind, verdict.action, verdict.resource) == ("denied", "secretsmanager:DescribeSecret", ARN)
    assert verdict.detail.startswith(f"secretsmanager:DescribeSecret denied on {ARN} (AccessDeniedException); ")
    assert "check with --read" in verdict.detail


def test_a_denial_without_iam_wording_names_the_operation_s_permission_and_the_reference() -> None:
    target = ObjectTarget(REGION, "bucket", "key")

    verdict = refusal_verdict(target, "403", "", "HeadObject")

    assert (verdict.kind, verdict.action, verdict.resource) == ("denied", "s3:GetObject", "object s3://bucket/key")
    assert "s3:ListBucket on arn:aws:s3:::bucket" in verdict.detail


@pytest.mark.parametrize(("code", "message", "kind"), [
    ("ResourceNotFoundException", "Secrets Manager can't find the specified secret.", "missing"),
    ("ParameterNotFound", "", "missing"),
    ("404", "", "missing"),
    ("NoSuchKey", "The specified key does not exist.", "missing"),
    ("ParameterVersionNotFound", "", "version_missing"),
    ("NoSuchVersion", "", "version_missing"),
    ("InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.",
     "missing"),
    ("InvalidRequestException", "something else", "error"),
    ("DecryptionFailure", "Secrets Manager can't decrypt the protected secret text", "undecryptable"),
    ("KMSAccessDeniedException", "", "undecryptable"),
    ("AccessDeniedException", iam_message("kms:Decrypt", "arn:aws:kms:eu-west-1:123456789012:key/k"),
     "undecryptable"),
    ("AccessDenied", iam_message("s3:GetObject", "arn:aws:s3:::b/k"), "denied"),
    ("ValidationException", "1 validation error", "error"),
    ("TooLarge", "", "error"),
])
def test_each_error_code_gets_its_verdict(code: str, message: str, kind: str) -> None:
    assert refusal_verdict(SECRET, code, message, "GetSecretValue").kind == kind


def test_a_denied_kms_decrypt_names_the_key() -> None:
    key = "arn:aws:kms:eu-west-1:123456789012:key/k"

    verdict = refusal_verdict(SECRET, "AccessDeniedException", iam_message("kms:Decrypt", key), "GetSecretValue")

    assert (verdict.action, verdict.resource) == ("kms:Decrypt", key)


@pytest.mark.parametrize(("target", "stages", "kind", "said"), [
    (SECRET, {"v1": ("AWSCURRENT",)}, "ok", "exists"),
    (SecretTarget(REGION, ARN, "AWSPENDING"), {"v1": ("AWSCURRENT",)}, "version_missing",
     "no version is in stage AWSPENDING"),
    (SecretTarget(REGION, ARN, "AWSPREVIOUS"), {"v1": ("AWSCURRENT",), "v0": ("AWSPREVIOUS",)}, "ok", "exists"),
    (SecretTarget(REGION, ARN, None, "a" * 32), {"v1": ("AWSCURRENT",)}, "version_missing", "no version with that id"),
    (SecretTarget(REGION, ARN, None, "a" * 32), {"a" * 32: ("AWSCURRENT",)}, "ok", "exists"),
    (SECRET, {}, "version_missing", "no version is in stage AWSCURRENT"),
])
def test_describe_secret_answers_stage_and_version_questions(
    target: SecretTarget, stages: dict[str, tuple[str, ...]], kind: str, said: str
) -> None:
    verdict = metadata_verdict(target, SecretMetadata(stages, None, scheduled_for_deletion=False))

    assert verdict.kind == kind
    assert said in verdict.detail


def test_a_secret_scheduled_for_deletion_is_missing_and_its_kms_key_is_named_as_not_checked() -> None:
    deleted = metadata_verdict(SECRET, SecretMetadata({"v1": ("AWSCURRENT",)}, None, scheduled_for_deletion=True))
    present = metadata_verdict(SECRET, SecretMetadata({"v1": ("AWSCURRENT",)}, "alias/app",
                                                      scheduled_for_deletion=False))

    assert deleted.kind == "missing"
    assert "scheduled for deletion" in deleted.detail
    assert present.notes == ("KMS key alias/app not checked (--read proves kms:Decrypt)",)


@pytest.mark.parametrize(("name", "answer", "kind"), [
    ("/app/a", ParameterMetadata(found=True, base_found=None, secure=False), "ok"),
    ("/app/a", ParameterMetadata(found=False, base_found=None, secure=False), "missing"),
    ("/app/a:3", ParameterMetadata(found=False, base_found=True, secure=False), "version_missing"),
    ("/app/a:3", ParameterMetadata(found=False, base_found=False, secure=False), "missing"),
    ("/app/a:prod", ParameterMetadata(found=True, base_found=True, secure=True), "ok"),
])
def test_get_parameters_answers_tell_a_missing_selector_from_a_missing_parameter(
    name: str, answer: ParameterMetadata, kind: str
) -> None:
    assert metadata_verdict(ParameterTarget(REGION, name), answer).kind == kind


def test_an_object_version_s3_does_not_hold_is_version_missing() -> None:
    target = ObjectTarget(REGION, "b", "k", "v9")

    assert metadata_verdict(target, ObjectMetadata(version_found=False, kms_key_id=None)).kind == "version_missing"
    assert metadata_verdict(target, ObjectMetadata(version_found=True, kms_key_id="k")).notes == (
        "SSE-KMS key k not checked (--read proves kms:Decrypt)",)


def test_read_cannot_tell_a_missing_parameter_selector_and_says_so() -> None:
    target = ParameterTarget(REGION, "/app/a:3")

    verdict = read_verdict(target, refused(target, "ParameterNotFound", "", "GetParameters"))

    assert verdict.kind == "missing"
    assert "the parameter or its version or label '3' does not exist" in verdict.detail


def test_refused_is_the_run_s_failure_too() -> None:
    answer = refused(SECRET, "AccessDeniedException", iam_message("secretsmanager:GetSecretValue", ARN),
                     "GetSecretValue")

    assert isinstance(answer, Failure)
    assert answer.reason.startswith("access denied (AccessDeniedException): the task role lacks "
                                    "secretsmanager:GetSecretValue")
    assert read_verdict(SECRET, answer).resource == ARN


# --- entries and the report --------------------------------------------------------------------------------


def test_an_entry_takes_its_first_failing_reference_and_an_optional_absent_one_is_a_warning() -> None:
    settings = settings_for(
        {"name": "dsn", "template": "{{ a }}{{ b }}", "inputs": {"a": "/app/a", "b": "/app/b"}},
        {"name": "opt", "valueFrom": "/app/c", "optional": True},
        {"name": "opt_denied", "valueFrom": "/app/d", "optional": True},
    )
    verdicts = {
        ParameterTarget(REGION, "/app/a"): Verdict("ok", "a exists"),
        ParameterTarget(REGION, "/app/b"): Verdict("missing", "b was not found"),
        ParameterTarget(REGION, "/app/c"): Verdict("missing", "c was not found"),
        ParameterTarget(REGION, "/app/d"): Verdict("denied", "d denied"),
    }

    dsn, opt, opt_denied = (entry_verdict(entry, verdicts) for entry in settings.entries)

    assert (dsn.verdict.detail, dsn.fails) == ("b was not found", True)
    assert [c.verdict.kind for c in dsn.references] == ["ok", "missing"]
    assert (opt.warning, opt.fails) == (True, False)
    assert (opt_denied.warning, opt_denied.fails) == (False, True)
    assert Report("metadata", (opt,)).exit_code == 0
    assert Report("metadata", (opt, dsn)).exit_code == 3
    assert Report("read", (opt,), ("expanded keys collide",)).exit_code == 3


def test_the_report_has_one_line_per_entry_notes_and_a_summary() -> None:
    settings = settings_for({"name": "a", "valueFrom": "/app/a"}, {"name": "b", "valueFrom": "/app/b:2"})
    verdicts = {
        ParameterTarget(REGION, "/app/a"): Verdict("ok", "parameter /app/a exists",
                                                   notes=("SecureString: not checked",)),
        ParameterTarget(REGION, "/app/b:2"): Verdict("version_missing", "no version 2"),
    }
    report = Report("metadata", tuple(entry_verdict(e, verdicts) for e in settings.entries))

    lines = report_lines(report)

    assert lines[1:] == [
        "  ok               a: parameter /app/a exists",
        "                     note: SecureString: not checked",
        "  version missing  b: no version 2",
        "summary: 1 ok, 1 version missing: a run would fail (exit 3)",
    ]
    document = report_document(report)
    assert set(document) == {"version", "mode", "exitCode", "ok", "summary", "entries", "problems"}
    assert set(document["summary"]) == {*KINDS, "warnings", "problems"}  # type: ignore[arg-type]
    assert document["entries"][1] == {  # type: ignore[index]
        "name": "b", "optional": False, "warning": False, "verdict": "version_missing", "detail": "no version 2",
        "code": None, "action": None, "resource": None, "notes": [],
        "references": [{"valueFrom": "/app/b:2", "target": "parameter /app/b:2 in eu-west-1",
                        "verdict": "version_missing", "detail": "no version 2", "code": None, "action": None,
                        "resource": None, "notes": []}],
    }


def test_read_renders_each_entry_as_a_run_would_and_names_what_does_not_resolve() -> None:
    settings = settings_for({"name": "user", "valueFrom": f"{ARN}:user::"},
                            {"name": "port", "valueFrom": f"{ARN}:port::"})
    outcomes = {SECRET: Fetched(SecretBytes(b'{"user": "u-1234"}'), "v1")}
    verdicts = {SECRET: read_verdict(SECRET, outcomes[SECRET])}

    report = render_check(settings, outcomes, verdicts)

    assert [(e.name, e.verdict.kind) for e in report.entries] == [("user", "ok"), ("port", "unresolved")]
    assert report.entries[1].verdict.detail == f"secret {ARN} has no key 'port'"
    assert report.exit_code == 3


def test_read_reports_a_problem_of_the_whole_set() -> None:
    environ = {"AWS_REGION": REGION, "SIDECAR_ENV_FILE": "app.env", "SIDECAR_SECRETS": json.dumps(
        [{"name": "d", "valueFrom": ARN, "expand": True}, {"name": "d_x", "valueFrom": "/app/c"}])}
    settings = load_settings({}, environ, process_uid=1000, process_gid=1000)
    outcomes = {SECRET: Fetched(SecretBytes(b'{"x": "x-1234"}'), "v1"),
                ParameterTarget(REGION, "/app/c"): Fetched(SecretBytes(b"x-5678"), "1")}
    verdicts = {t: read_verdict(t, o) for t, o in outcomes.items()}

    report = render_check(settings, outcomes, verdicts)

    assert [e.verdict.kind for e in report.entries] == ["ok", "ok"]
    assert len(report.problems) == 1
    assert "would both be the same variable in the env file" in report.problems[0]
    assert report.exit_code == 3


def test_the_probe_plan_asks_once_per_secret_and_once_per_parameter() -> None:
    targets = [SECRET, SecretTarget(REGION, ARN, "AWSPREVIOUS"), ParameterTarget(REGION, "/a"),
               ParameterTarget(REGION, "/b"), ObjectTarget(REGION, "b", "k")]

    calls = probe_plan(targets)

    assert sorted((c.operation, len(c.targets)) for c in calls) == [
        ("DescribeSecret", 2), ("GetParameters", 1), ("GetParameters", 1), ("HeadObject", 1)]
    assert isinstance(Refused("X", "r"), Failure)


def test_a_role_that_cannot_be_assumed_is_denied_naming_sts_assume_role() -> None:
    role = "arn:aws:iam::111111111111:role/reader"
    denied = role_verdict(role, f"could not assume role {role}: access denied (AccessDenied): the task role needs "
                          f"sts:AssumeRole on {role}")
    slow = role_verdict(role, f"could not assume role {role} before the SIDECAR_TIMEOUT deadline")

    assert (denied.kind, denied.action, denied.resource) == ("denied", "sts:AssumeRole", role)
    assert (slow.kind, slow.action) == ("error", None)
