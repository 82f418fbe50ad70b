"""The least-privilege IAM policy a configuration needs: the calls the planner makes, as actions on resources.

Pure: settings in, policy documents out. The calls come from the planner itself (``make_plan`` with the
configured batching and concurrency, ``make_check_plan`` in refresh mode), so the policy follows the planner:
an action is granted only when a call needs it, on exactly the resources that call reads.

What a configuration cannot say is asked for (``Scope``) or reported as a note: the task's account for
parameters named without an ARN, the KMS keys behind the values, other accounts' resource policies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from sidecar.aws_errors import PERMISSION, PINNED_OBJECT_PERMISSION
from sidecar.errors import ConfigError
from sidecar.plan import Call, make_check_plan, make_plan
from sidecar.references import (
    SECRETS_MANAGER_REFERENCE,
    ObjectTarget,
    ParameterPathTarget,
    ParameterTarget,
    SecretTarget,
    Target,
    bare_parameter_name,
)
from sidecar.settings.model import Settings

POLICY_VERSION: Final = "2012-10-17"  # the version that has policy variables, hence ${*} and ${?}
ANY_RESOURCE: Final = "*"
# Secrets Manager ends a secret's ARN with a hyphen and six random alphanumeric characters; an id ending
# that way is taken as a complete ARN, any other as a partial ARN or a name (Secrets Manager User Guide).
SECRET_SUFFIX: Final = re.compile(r"-[A-Za-z0-9]{6}$")
SECRET_SUFFIX_WILDCARD: Final = "-??????"  # noqa: S105 - an ARN pattern, not a password
ACCOUNT: Final = re.compile(r"^\d{12}$")
KMS_KEY: Final = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
KMS_ALIAS: Final = re.compile(r"^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:)?alias/")
DECRYPT: Final = "kms:Decrypt"
ASSUME_ROLE: Final = "sts:AssumeRole"
PINNED_OBJECT_VERSION: Final = PINNED_OBJECT_PERMISSION
# IAM reads * and ? in a resource as wildcards, and ${...} as a variable: a literal one is written as the
# policy variable of that character (IAM User Guide, policy variables, special characters).
_IAM_LITERALS: Final = str.maketrans({"$": "${$}", "*": "${*}", "?": "${?}"})
# The statement each action goes into, in the order they are printed, and its Sid.
SIDS: Final = {
    ASSUME_ROLE: "AssumeTheRolesEntriesAreReadWith",
    "secretsmanager:GetSecretValue": "ReadSecrets",
    "secretsmanager:BatchGetSecretValue": "BatchReadSecretsEachStillCheckedAgainstGetSecretValue",
    "secretsmanager:DescribeSecret": "RefreshChecksSecretVersions",
    "ssm:GetParameters": "ReadParameters",
    "ssm:GetParametersByPath": "ReadParameterTrees",
    "s3:GetObject": "ReadObjects",
    PINNED_OBJECT_VERSION: "ReadPinnedObjectVersions",
    DECRYPT: "DecryptOnlyThroughTheseServices",
}
# Where a call decrypts: the service that calls KMS on the caller's behalf (the kms:ViaService value).
_DECRYPTING_SERVICE: Final = {"GetSecretValue": "secretsmanager", "BatchGetSecretValue": "secretsmanager",
                              "GetParameters": "ssm", "GetParametersByPath": "ssm", "GetObject": "s3"}


@dataclass(frozen=True)
class Scope:
    """What the policy needs that a configuration does not hold.

    ``account``: the task's account, where a parameter named without an ARN lives. ``kms_keys``: the
    customer-managed keys behind the values (``*`` for any key, still only through the services).
    """

    account: str | None = None
    kms_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.account is not None and not ACCOUNT.match(self.account):
            raise ConfigError(f"--account {self.account!r}: an AWS account id is 12 digits")
        for key in self.kms_keys:
            if KMS_ALIAS.match(key):
                # An alias in a policy's Resource controls the alias, not its key (AWS KMS Developer Guide).
                raise ConfigError(f"--kms-key {key!r}: an alias does not grant kms:Decrypt on its key; give the "
                                  "key's ARN (aws kms describe-key --key-id ALIAS shows it)")
            if key != ANY_RESOURCE and not KMS_KEY.match(key):
                raise ConfigError(f"--kms-key {key!r}: expected a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID) "
                                  "or * for any key")


@dataclass(frozen=True, order=True)
class Grant:
    """One action on one resource, with the ``kms:ViaService`` values that condition it (KMS only)."""

    action: str
    resource: str
    via: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policies:
    """One policy document per principal: the task role's, and one per role that entries are read with (the
    task role then only needs sts:AssumeRole on it)."""

    task_role: dict[str, Any]
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"taskRole": self.task_role, "roles": self.roles}


def required_calls(settings: Settings) -> tuple[Call, ...]:
    """Every kind of call a run (and, in refresh mode, a check cycle) can make for this configuration, and
    each call that can fail over made again in its failover region. A refresh re-fetches changed targets with
    the same planner, so its calls are a subset of the first run's; a batch's follow-ups are GetSecretValue
    calls, which a batch needs on every secret anyway; a tree's next pages are the same call."""
    targets = {ref.target for entry in settings.entries for ref in entry.references}
    calls = make_plan(targets, settings.sm_batch, settings.concurrency)
    if settings.refresh_interval is not None:
        calls += make_check_plan(targets, settings.sm_batch)
    return calls + tuple(
        replace(call, region=call.failover_region, failover_region=None,
                targets=tuple(in_failover_region(target, call.failover_region) for target in call.targets))
        for call in calls if call.failover_region is not None
    )


def in_failover_region(target: Target, region: str) -> Target:
    """``target`` as its failover call reads it: a secret's replica has the same ARN but for the region
    (``SecretTarget.secret_id_in``, as the fetch addresses it); a parameter or tree, the same name there."""
    moved = replace(target, region=region, failover_region=None)
    if isinstance(moved, SecretTarget):
        return replace(moved, secret_id=moved.secret_id_in(region))
    return moved


def policies(configurations: Iterable[Settings], scope: Scope) -> Policies:
    """The task role's policy for the sidecars of one task (each with its settings), and the notes on what it
    could not know."""
    notes: list[str] = []
    by_principal: dict[str | None, set[Grant]] = {None: set()}  # None: the task role
    for settings in configurations:
        notes += _optional_object_notes(settings)
        for call in required_calls(settings):
            role = call.role_arn
            # A role's calls are signed by that role: its statements go in its policy, the task role only
            # assumes it; a parameter named without an ARN is then read in the role's account.
            principal_scope = scope if role is None else Scope(role.split(":")[4], scope.kms_keys)
            by_principal.setdefault(role, set()).update(grants_for(call, principal_scope, notes))
            if role is not None:
                by_principal[None].add(Grant(ASSUME_ROLE, role))
    everything = [g for grants in by_principal.values() for g in grants]
    roles = {role: document(grants) for role, grants in sorted(by_principal.items(), key=lambda i: i[0] or "")
             if role is not None}
    return Policies(document(by_principal[None]), roles, tuple(dict.fromkeys(notes + _kms_notes(scope, everything))))


def grants_for(call: Call, scope: Scope, notes: list[str] | None = None) -> set[Grant]:
    """The permissions one call needs: its action on each of its targets, a batch's GetSecretValue on each
    secret, a reference's secret through Parameter Store, and kms:Decrypt through the service that decrypts."""
    notes = [] if notes is None else notes
    action = PERMISSION[call.operation]
    grants: set[Grant] = set()
    if call.operation == "BatchGetSecretValue":
        # No resource type: "*" only; Secrets Manager then authorises each secret against GetSecretValue.
        grants.add(Grant(action, ANY_RESOURCE))
        action = PERMISSION["GetSecretValue"]
    decrypts = call.operation in _DECRYPTING_SERVICE
    for target in call.targets:
        if isinstance(target, SecretTarget):
            grants |= {Grant(action, resource) for resource in secret_resources(target.secret_id)}
            notes += _other_account(target.secret_id, scope)
        elif isinstance(target, ParameterTarget):
            grants.add(Grant(action, parameter_resource(target, scope)))
            if target.is_secret_reference:
                secret = _referenced_secret(target, scope)
                grants |= {Grant(PERMISSION["GetSecretValue"], resource) for resource in secret_resources(secret)}
                grants |= _decrypt(scope, "secretsmanager", target.region)
        elif isinstance(target, ParameterPathTarget):
            grants.add(Grant(action, tree_resource(target, scope)))
        elif isinstance(target, ObjectTarget):
            pinned = call.operation == "GetObject" and target.version_id is not None
            grants.add(Grant(PINNED_OBJECT_VERSION if pinned else action, object_resource(target)))
        if decrypts:
            grants |= _decrypt(scope, _DECRYPTING_SERVICE[call.operation], target.region)
    return grants


def secret_resources(secret_arn: str) -> tuple[str, ...]:
    """The resource of a secret referenced by ``secret_arn``: itself when it is complete (ends with the
    six-character suffix), else every secret of that name, ``NAME-??????``."""
    if SECRET_SUFFIX.search(secret_arn.partition(":secret:")[2]):
        return (secret_arn,)
    return (secret_arn + SECRET_SUFFIX_WILDCARD,)


def parameter_resource(target: ParameterTarget, scope: Scope) -> str:
    """``arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME``, without a ``:version`` or ``:label`` selector: a
    selector picks a version of the parameter, not another resource."""
    name = bare_parameter_name(target.name).lstrip("/")
    if target.account is not None:
        account = target.account
    elif target.name.startswith("/aws/service/"):
        account = ANY_RESOURCE  # public parameters belong to no customer account
    else:
        account = _task_account(scope, target.describe())
    return f"arn:{_partition(target)}:ssm:{target.region}:{account}:parameter/{name}"


def tree_resource(target: ParameterPathTarget, scope: Scope) -> str:
    """``arn:PARTITION:ssm:REGION:ACCOUNT:parameter/PATH``: GetParametersByPath is authorised against the path,
    and access to a path reaches every level below it (Systems Manager User Guide). A tree takes no ARN, so
    it is in the account of the credentials that read it."""
    account = _task_account(scope, target.describe(), tree=True)
    return f"arn:{_partition(target)}:ssm:{target.region}:{account}:parameter{target.path}"


def object_resource(target: ObjectTarget) -> str:
    """``arn:PARTITION:s3:::BUCKET/KEY``, the key's ``*``, ``?`` and ``$`` written as literals."""
    return f"arn:{_partition(target)}:s3:::{target.bucket}/{target.key.translate(_IAM_LITERALS)}"


def document(grants: Iterable[Grant]) -> dict[str, Any]:
    """A policy document: one statement per action, its resources sorted; kms:Decrypt conditioned on the
    services that decrypt."""
    by_action: dict[str, set[str]] = {}
    via: set[str] = set()
    for grant in grants:
        by_action.setdefault(grant.action, set()).add(grant.resource)
        via |= set(grant.via)
    statements = []
    for action in sorted(by_action, key=lambda a: list(SIDS).index(a)):
        resources = sorted(by_action[action])
        statement: dict[str, Any] = {
            "Sid": SIDS[action], "Effect": "Allow", "Action": action,
            "Resource": resources[0] if len(resources) == 1 else resources,
        }
        if action == DECRYPT:
            statement["Condition"] = {"StringEquals": {"kms:ViaService": sorted(via)}}
        statements.append(statement)
    return {"Version": POLICY_VERSION, "Statement": statements}


# --- helpers ------------------------------------------------------------------------------------------------


def _partition(target: Target) -> str:
    if isinstance(target, SecretTarget):
        return target.secret_id.split(":")[1]
    if isinstance(target, ParameterTarget) and target.account is not None:
        return target.partition
    return _region_partition(target.region)


def _region_partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _service_host(service: str, region: str) -> str:
    suffix = "amazonaws.com.cn" if _region_partition(region) == "aws-cn" else "amazonaws.com"
    return f"{service}.{region}.{suffix}"


def _task_account(scope: Scope, what: str, *, tree: bool = False) -> str:
    if scope.account is None:
        named = "is a path, which takes no ARN" if tree else "is named without an ARN"
        instead = "" if tree else ", or write the reference as a full ARN"
        raise ConfigError(
            f"{what} {named}, so it is read in the task's own account, which the configuration does not say: "
            f"give it with --account (12 digits){instead}"
        )
    return scope.account


def _referenced_secret(target: ParameterTarget, scope: Scope) -> str:
    """The ARN (partial: a name never carries the suffix) of the secret that ``/aws/reference/secretsmanager/ID``
    reads: in the parameter's account and region."""
    secret_id = bare_parameter_name(target.name)[len(SECRETS_MANAGER_REFERENCE) :]
    account = target.account or _task_account(scope, target.describe())
    return f"arn:{_partition(target)}:secretsmanager:{target.region}:{account}:secret:{secret_id}"


def _decrypt(scope: Scope, service: str, region: str) -> set[Grant]:
    host = _service_host(service, region)
    return {Grant(DECRYPT, key, (host,)) for key in scope.kms_keys}


def _other_account(secret_arn: str, scope: Scope) -> list[str]:
    account = secret_arn.split(":")[4]
    if scope.account is None or account == scope.account:
        return []
    return [f"secret {secret_arn} is in account {account}, not the task's ({scope.account}): its resource policy "
            "must also allow the task role, and its KMS key (a customer-managed one: the default key cannot be "
            "shared) must allow kms:Decrypt to it"]


def _optional_object_notes(settings: Settings) -> list[str]:
    """S3 answers a missing object with 403, not 404, unless the caller may list the bucket (S3 API reference,
    GetObject): an optional entry's absent object then fails the run instead of being skipped."""
    return [
        f"entry {entry.name!r} is optional, but S3 says an object is missing (404) only to a principal with "
        f"s3:ListBucket on arn:aws:s3:::{ref.target.bucket}, and access denied (403) otherwise, which fails the "
        "run: grant s3:ListBucket (it lists every key of the bucket) or make the entry required"
        for entry in settings.entries if entry.optional
        for ref in entry.references if isinstance(ref.target, ObjectTarget)
    ]


def _kms_notes(scope: Scope, grants: Iterable[Grant]) -> list[str]:
    if scope.kms_keys or not any(g.action in _DECRYPTING_ACTIONS for g in grants):
        return []
    return ["no kms:Decrypt statement: values encrypted with the AWS managed keys (aws/secretsmanager, aws/ssm, "
            "SSE-S3) need none; for a customer-managed key, give its ARN with --kms-key (repeatable)"]


_DECRYPTING_ACTIONS: Final = frozenset(PERMISSION[op] for op in _DECRYPTING_SERVICE) | {PINNED_OBJECT_VERSION}

