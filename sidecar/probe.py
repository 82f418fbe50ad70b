"""The live preflight's AWS edge: metadata calls that prove a reference exists and may be reached, without
reading a value where the API allows it, and a wrapper that keeps a permanent AWS error as an answer.

The answers are data for ``sidecar.preflight``'s pure classification. Calls run through ``fetch.Fetcher.run``,
so the run's retry policy and deadline apply unchanged: a transient error raises (and is retried); a
permanent one (not found, denied, ...) comes back as ``Refused``, with AWS's message, which names the denied
action and resource (the run's ``Failure`` keeps only its first characters).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, TypeVar

from sidecar import aws, aws_errors
from sidecar.aws import ClientFactory
from sidecar.aws_errors import failure_for
from sidecar.fetch import Perform
from sidecar.outcomes import Checked, Failure, TreePage
from sidecar.plan import Call
from sidecar.references import ObjectTarget, ParameterPathTarget, ParameterTarget, SecretTarget, Target

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import HeadObjectRequestTypeDef

R = TypeVar("R")
# HeadObject has no body, so botocore names its errors by HTTP status; a version id S3 does not hold is 404
# (or 400 when it is not a version id S3 could have issued).
OBJECT_VERSION_ABSENT_CODES: Final = frozenset({"404", "400", "NoSuchVersion", "InvalidArgument"})


@dataclass(frozen=True)
class Refused(Failure):
    """A permanent error AWS answered for a target's call (retrying would get the same): the run's failure,
    and AWS's whole message, which names the principal, the action and the resource."""

    message: str = ""
    operation: str = ""


def refused(target: Target, code: str, message: str, operation: str) -> Refused:
    failure = failure_for(code, message, target, operation)
    return Refused(failure.code, failure.reason, failure.not_found, message, operation)


@dataclass(frozen=True)
class Metadata:
    """What a metadata call says of one target."""


@dataclass(frozen=True)
class SecretMetadata(Metadata):
    """What DescribeSecret says of a secret (never its value)."""

    stages: Mapping[str, tuple[str, ...]]  # version id -> its staging labels (only labelled versions)
    kms_key_id: str | None  # None: the AWS managed key aws/secretsmanager
    scheduled_for_deletion: bool


@dataclass(frozen=True)
class ParameterMetadata(Metadata):
    """What GetParameters without decryption says of a parameter (and of its bare name, for a selector)."""

    found: bool  # the name as referenced, selector included
    base_found: bool | None  # the name without its selector; None when there is no selector
    secure: bool  # a SecureString: reading it needs kms:Decrypt, which this call did not use


@dataclass(frozen=True)
class TreeMetadata(Metadata):
    """GetParametersByPath, without decryption, found at least one parameter under the path (names and
    versions only: refresh mode's check of a tree, every page read)."""


@dataclass(frozen=True)
class ObjectMetadata(Metadata):
    """What HeadObject says of an object (and of its latest version, when a version was asked for)."""

    version_found: bool
    kms_key_id: str | None  # SSE-KMS: reading it needs kms:Decrypt, which HeadObject did not use




def probe_plan(targets: Iterable[Target]) -> tuple[Call, ...]:
    """One metadata call per secret (DescribeSecret answers every stage and version at once), per parameter
    and per object. Parameters go one per call: IAM denies a GetParameters call as a whole when one of its
    names is denied, and a preflight must say which entry is denied."""
    calls: list[Call] = []
    secrets: dict[tuple[str, str, str], list[Target]] = {}
    for target in sorted(set(targets), key=lambda t: (t.service, repr(t))):
        if isinstance(target, SecretTarget):
            secrets.setdefault((target.region, target.role_arn or "", target.secret_id), []).append(target)
        elif isinstance(target, ParameterTarget):
            calls.append(Call(target.service, target.region, "GetParameters", (target,), target.role_arn))
        elif isinstance(target, ParameterPathTarget):
            calls.append(Call(target.service, target.region, "GetParametersByPath", (target,), target.role_arn))
        else:
            calls.append(Call(target.service, target.region, "HeadObject", (target,), target.role_arn))
    calls += [Call(SecretTarget.service, region, "DescribeSecret", tuple(group), role or None)
              for (region, role, _), group in sorted(secrets.items())]
    return tuple(calls)


def keeping_refusals(perform: Perform[R]) -> Perform[R | Failure]:
    """``perform``, with a permanent AWS error answered for every target of the call instead of raised. A
    ``BatchGetSecretValue`` still raises: the fetcher falls back to single calls on its denial."""

    def performed(clients: ClientFactory, call: Call, max_bytes: int) -> dict[Target, R | Failure]:
        try:
            return dict(perform(clients, call, max_bytes))
        except aws_errors.AWS_ERRORS as exc:
            error = aws_errors.classify(exc)
            if error.transient or call.operation == "BatchGetSecretValue":
                raise
            message = aws_errors.aws_message(exc)
            return {target: refused(target, error.code, message, call.operation) for target in call.targets}

    return performed


Answer = Metadata | TreePage | Failure  # a tree's page before the last is followed up (``plan.follow_ups``)


def metadata(clients: ClientFactory, call: Call, _max_bytes: int = 0) -> dict[Target, Answer]:
    """One metadata call; a failed call raises (``keeping_refusals`` keeps the permanent errors)."""
    return _PROBES[call.operation](clients, call)


def _describe_secret(clients: ClientFactory, call: Call) -> dict[Target, Answer]:
    secret_id = call.targets[0].secret_id if isinstance(call.targets[0], SecretTarget) else ""
    described = clients.secretsmanager(call.region, call.role_arn).describe_secret(SecretId=secret_id)
    answer = SecretMetadata(
        stages={version: tuple(labels) for version, labels in described.get("VersionIdsToStages", {}).items()},
        kms_key_id=described.get("KmsKeyId"),
        scheduled_for_deletion="DeletedDate" in described,
    )
    return dict.fromkeys(call.targets, answer)


def _parameter(clients: ClientFactory, call: Call) -> dict[Target, Answer]:
    (target,) = call.targets
    assert isinstance(target, ParameterTarget)  # noqa: S101 - the probe plan only puts parameters here
    selector = not target.is_secret_reference and ":" in target.name
    base = replace(target, name=target.base_name).request_name if selector else None
    names = [target.request_name, *([base] if base else [])]
    # Parameter Store answers a reference to a Secrets Manager secret only when asked to decrypt.
    response = clients.ssm(call.region, call.role_arn).get_parameters(Names=names,
                                                                      WithDecryption=target.is_secret_reference)
    invalid = set(response.get("InvalidParameters", []))
    secure = any(p.get("Type") == "SecureString" for p in response.get("Parameters", []))
    answer = ParameterMetadata(target.request_name not in invalid, None if base is None else base not in invalid,
                               secure)
    return {target: answer}


def _tree(clients: ClientFactory, call: Call) -> dict[Target, Answer]:
    # Refresh mode's check of a tree: every page, names and versions, without decryption.
    return {target: TreeMetadata() if isinstance(answer, Checked) else answer
            for target, answer in aws.check(clients, call, max_bytes=0).items()}  # a tree's check reads no value


def _head_object(clients: ClientFactory, call: Call) -> dict[Target, Answer]:
    (target,) = call.targets
    assert isinstance(target, ObjectTarget)  # noqa: S101 - the probe plan only puts objects here
    s3 = clients.s3(call.region, call.role_arn)
    params: HeadObjectRequestTypeDef = {"Bucket": target.bucket, "Key": target.key}
    if target.version_id:
        params["VersionId"] = target.version_id
    try:
        head: Mapping[str, Any] = s3.head_object(**params)
    except aws_errors.AWS_ERRORS as exc:
        if not target.version_id or aws_errors.classify(exc).code not in OBJECT_VERSION_ABSENT_CODES:
            raise
        # Is it the version or the object that is absent? The latest version's HEAD tells.
        latest = s3.head_object(Bucket=target.bucket, Key=target.key)
        return {target: ObjectMetadata(False, latest.get("SSEKMSKeyId"))}
    return {target: ObjectMetadata(True, head.get("SSEKMSKeyId"))}


_PROBES: Final[dict[str, Callable[[ClientFactory, Call], dict[Target, Answer]]]] = {
    "DescribeSecret": _describe_secret,
    "GetParameters": _parameter,
    "GetParametersByPath": _tree,
    "HeadObject": _head_object,
}
