"""Parse ``valueFrom`` strings, in the syntax ECS task definitions use, into typed references.

Pure: no I/O. A reference names *what* to fetch; its ``target`` is the identity a fetch is planned by,
so that every entry naming the same secret version shares one fetch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

from sidecar.errors import ConfigError

AWSCURRENT: Final = "AWSCURRENT"

_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):(?P<service>[a-z0-9-]*):(?P<rest>.*)$", re.DOTALL)
# The shape of a region; whether botocore knows it (and the closest it knows) is checked before any call.
_REGION = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+$")
_ACCOUNT = re.compile(r"^\d{12}$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_VERSION_STAGE = re.compile(r"^[A-Za-z0-9_+=.@-]{1,256}$")
_VERSION_ID = re.compile(r"^[A-Za-z0-9-]{32,64}$")
_PARAMETER_NAME = re.compile(r"^[A-Za-z0-9_.\-/]{1,2048}$")
_PARAMETER_SELECTOR = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
_SECRET_SELECTOR = re.compile(r"^[A-Za-z0-9_.\-]{1,256}$")  # a version id, or a stage of letters, digits, ._-
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_S3_VERSION_MARKER: Final = "?versionId="
# S3's URL hosts: bucket.s3.amazonaws.com, bucket.s3.REGION.amazonaws.com, bucket.s3-REGION..., and the
# path-style s3.REGION.amazonaws.com/bucket/key (".cn" in the China partition).
_S3_HOST = re.compile(r"^(?:(?P<bucket>[a-z0-9.-]+?)\.)?s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?$")
# An IAM role's ARN: arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME. Name and path as IAM's model (botocore's
# iam service-2.json, roleNameType and pathType) allows them: a name of 1-64 of [\w+=,.@-], a path of printable
# ASCII between slashes, at most 512 characters with both slashes.
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
_ROLE_PATH = re.compile(r"^/(?:[\x21-\x7e]+/)?$")
MAX_ROLE_PATH_CHARS: Final = 512
ROLE_ARN_SHAPE: Final = "arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME"
MAX_PARAMETER_LEVELS: Final = 15
# Names under these prefixes are AWS's own and read like any parameter; only creating them is forbidden.
SECRETS_MANAGER_REFERENCE: Final = "/aws/reference/secretsmanager/"
PUBLIC_PARAMETERS: Final = "/aws/service/"


@dataclass(frozen=True)
class SecretTarget:
    """One version of one Secrets Manager secret (``version_stage`` None means AWSCURRENT)."""

    region: str
    secret_id: str
    version_stage: str | None = None
    version_id: str | None = None
    role_arn: str | None = None  # read with this role's credentials (``sidecar.assumed_role``); None: the task's
    failover_region: str | None = None  # where the same secret is read when ``region`` is unavailable

    service = "secretsmanager"

    @property
    def is_current(self) -> bool:
        return self.version_id is None and self.version_stage in (None, AWSCURRENT)

    def describe(self) -> str:
        pin = f" (version {self.version_id})" if self.version_id else ""
        pin = f" (stage {self.version_stage})" if self.version_stage else pin
        return f"secret {self.secret_id}{pin}"

    def secret_id_in(self, region: str) -> str:
        """The id that names this secret in ``region``: a replica's ARN is the primary's with the region
        swapped (the 6-character suffix is the same); a name is the same in every region."""
        return in_region(self.secret_id, region)


@dataclass(frozen=True)
class ParameterTarget:
    """One SSM parameter, ``name`` possibly carrying a ``:version`` or ``:label`` selector.

    ``account`` is set when the ``valueFrom`` was an ARN: the parameter is then requested by that ARN, because
    a parameter shared from another account (AWS RAM) can only be read by its full ARN, and its bare name
    would read the task's own account."""

    region: str
    name: str
    account: str | None = None
    partition: str = "aws"
    role_arn: str | None = None
    failover_region: str | None = None  # where a copy of the same name is read when ``region`` is unavailable

    service = "ssm"

    @property
    def base_name(self) -> str:
        """The parameter's name without a ``:version`` or ``:label`` selector: what GetParameters answers with."""
        return bare_parameter_name(self.name)

    @property
    def request_name(self) -> str:
        """What GetParameters is sent: the ARN when the reference was one, else the name."""
        return self.request_name_in(self.region)

    def request_name_in(self, region: str) -> str:
        """What GetParameters in ``region`` is sent: the same name, or the ARN with that region."""
        if self.account is None:
            return self.name
        return f"arn:{self.partition}:ssm:{region}:{self.account}:parameter/{self.name.removeprefix('/')}"

    @property
    def is_secret_reference(self) -> bool:
        """Parameter Store's reference to a Secrets Manager secret, which is read only with decryption."""
        return self.name.startswith(SECRETS_MANAGER_REFERENCE)

    def describe(self) -> str:
        if self.account is not None:
            return f"parameter {self.request_name}"
        return f"parameter {self.name} in {self.region}"


@dataclass(frozen=True)
class ObjectTarget:
    """One S3 object version (``version_id`` None means the latest)."""

    region: str
    bucket: str
    key: str
    version_id: str | None = None
    role_arn: str | None = None
    failover_region: str | None = None  # always None: an object lives in one bucket, in one region

    service = "s3"

    def describe(self) -> str:
        pin = f"?versionId={self.version_id}" if self.version_id else ""
        return f"object s3://{self.bucket}/{self.key}{pin}"


@dataclass(frozen=True)
class ParameterPathTarget:
    """Every SSM parameter under one path: at every depth below it (``recursive``), or at its first level.

    ``path`` begins with ``/`` and has no trailing ``/`` (except the root, ``/``), so ``/prod/app`` and
    ``/prod/app/`` share one fetch. GetParametersByPath takes no ARN: a tree is in the account whose
    credentials read it (the task's, or ``role_arn``'s)."""

    region: str
    path: str
    recursive: bool = True
    role_arn: str | None = None
    failover_region: str | None = None  # where copies under the same path are read when ``region`` is unavailable

    service = "ssm"

    @property
    def prefix(self) -> str:
        """What every parameter name under the path begins with."""
        return self.path.rstrip("/") + "/"

    def relative_name(self, name: str) -> str | None:
        """A parameter's name relative to the path (``/prod/app/db/password`` under ``/prod/app`` is
        ``db/password``); None for a name outside it. Under the root, a one-level name may come without its
        slash (``/db`` and ``db`` are one parameter)."""
        if name.startswith(self.prefix):
            return name[len(self.prefix) :]
        if self.path == "/" and name and not name.startswith("/"):
            return name
        return None

    def describe(self) -> str:
        depth = "at every depth" if self.recursive else "at its first level only"
        return f"parameters under {self.path} {depth} in {self.region}"


Target = SecretTarget | ParameterTarget | ObjectTarget | ParameterPathTarget


def bare_parameter_name(name_or_arn: str) -> str:
    """The parameter name in a GetParameters name, answer or ARN, without ARN prefix or selector:
    ``arn:aws:ssm:eu-west-1:111122223333:parameter/prod/db:3`` and ``/prod/db`` both give ``/prod/db``."""
    name = name_or_arn
    if name.startswith("arn:"):
        name = "/" + name.split(":", 5)[-1].removeprefix("parameter/")
    name = name.partition(":")[0]
    # One level needs no slash: /db and ...:parameter/db are the parameter db.
    return name[1:] if name.startswith("/") and "/" not in name[1:] else name


def in_region(arn_or_name: str, region: str) -> str:
    """An ARN with its region replaced by ``region``; anything else unchanged."""
    match = _ARN.match(arn_or_name)
    if match is None:
        return arn_or_name
    _, rest = match["rest"].split(":", 1)
    return f"arn:{match['partition']}:{match['service']}:{region}:{rest}"


@dataclass(frozen=True)
class Reference:
    """A parsed ``valueFrom``: what to fetch, and (Secrets Manager only) which JSON key to take."""

    target: Target
    json_key: str | None = None

    def read_as(self, role_arn: str | None) -> Reference:
        """The same reference read with ``role_arn``'s credentials (None: the task's own)."""
        return replace(self, target=replace(self.target, role_arn=role_arn))


def with_failover(reference: Reference, failover_region: str | None) -> Reference:
    """``reference`` read from ``failover_region`` when its own region is unavailable."""
    if failover_region is None:
        return reference
    return Reference(replace(reference.target, failover_region=failover_region), reference.json_key)


def parse_value_from(value_from: str, default_region: str | None) -> Reference:
    """Parse one ``valueFrom``; ``default_region`` serves references that carry no region."""
    if not isinstance(value_from, str) or not value_from:
        raise ConfigError("valueFrom must be a non-empty string")
    if value_from != value_from.strip():
        raise ConfigError(f"valueFrom {value_from!r} has leading or trailing whitespace")
    if "\x00" in value_from:
        raise ConfigError("valueFrom contains a NUL character")
    if value_from.startswith("s3://"):
        return _parse_s3(value_from, default_region)
    if value_from.lower().startswith(("https://", "http://")):
        raise ConfigError(_url_problem(value_from))
    match = _ARN.match(value_from)
    if match:
        service, rest = match["service"], match["rest"]
        if service == "secretsmanager":
            return _parse_secret_arn(value_from, rest)
        if service == "ssm":
            return _parse_parameter_arn(value_from, match["partition"], rest)
        if service == "s3":
            raise ConfigError(f"valueFrom {value_from!r}: write S3 objects as s3://bucket/key, not as an ARN")
        raise ConfigError(
            f"valueFrom {value_from!r} is an ARN of service {service!r}; "
            "expected a secretsmanager or ssm ARN, an SSM parameter name, or s3://bucket/key"
        )
    if value_from.startswith("arn:"):
        raise ConfigError(f"valueFrom {value_from!r} is not a well-formed ARN")
    return Reference(ParameterTarget(_require_region(default_region, value_from), _parameter_name(value_from)))


def parse_role_arn(raw: object) -> str:
    """An IAM role's ARN as STS AssumeRole takes it, checked for its shape only: whether the role exists and
    trusts the task is for STS to say."""
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"must be an IAM role ARN, {ROLE_ARN_SHAPE}")
    if raw != raw.strip() or "\x00" in raw:
        raise ConfigError(f"{raw!r} has whitespace or a NUL character; expected {ROLE_ARN_SHAPE}")
    match = _ARN.match(raw)
    if match is None:
        raise ConfigError(f"{raw!r} is not an ARN; expected {ROLE_ARN_SHAPE}")
    fields = match["rest"].split(":", 2)
    if match["service"] == "sts" and len(fields) == 3 and fields[2].startswith("assumed-role/"):
        raise ConfigError(f"{raw!r} is a role session's ARN (sts:...:assumed-role/...); give the role's own ARN, "
                          f"{ROLE_ARN_SHAPE}")
    if match["service"] != "iam" or len(fields) != 3:
        raise ConfigError(f"{raw!r} is not an IAM role ARN; expected {ROLE_ARN_SHAPE}")
    region, account, resource = fields
    if region:
        raise ConfigError(f"{raw!r}: an IAM ARN has no region ({region!r}); expected {ROLE_ARN_SHAPE}")
    if not _ACCOUNT.match(account):
        raise ConfigError(f"{raw!r}: the account {account!r} is not 12 digits")
    kind, _, path_and_name = resource.partition("/")
    if kind != "role":
        raise ConfigError(f"{raw!r} names an IAM {kind or 'resource'}, not a role; expected {ROLE_ARN_SHAPE}")
    inner, slash, name = path_and_name.rpartition("/")
    if not _ROLE_NAME.match(name):
        raise ConfigError(f"{raw!r}: the role name {name!r} is not 1-64 letters, digits and +=,.@_-")
    path = f"/{inner}{slash}"
    if not _ROLE_PATH.match(path) or len(path) > MAX_ROLE_PATH_CHARS:
        raise ConfigError(f"{raw!r}: the role path {path!r} is not / or printable ASCII between two slashes, "
                          f"at most {MAX_ROLE_PATH_CHARS} characters in all")
    return raw


def _require_region(region: str | None, value_from: str) -> str:
    if not region:
        raise ConfigError(
            f"valueFrom {value_from!r} carries no region: set AWS_REGION (ECS sets it on Fargate) "
            "or SIDECAR_REGION, or use a full ARN"
        )
    return region


def _arn_region_account(value_from: str, rest: str, resource_prefix: str) -> tuple[str, str]:
    parts = rest.split(":", 2)
    if len(parts) < 3 or not parts[2].startswith(resource_prefix):
        expected = f"arn:PARTITION:SERVICE:REGION:ACCOUNT:{resource_prefix}NAME"
        raise ConfigError(f"valueFrom {value_from!r}: expected {expected}")
    region, account, _ = parts
    if not _REGION.match(region):
        raise ConfigError(f"valueFrom {value_from!r}: {region!r} is not a region name")
    if not _ACCOUNT.match(account):
        raise ConfigError(f"valueFrom {value_from!r}: the account {account!r} is not 12 digits")
    return region, parts[2][len(resource_prefix) :]


def _parse_secret_arn(value_from: str, rest: str) -> Reference:
    region, resource = _arn_region_account(value_from, rest, "secret:")
    fields = resource.split(":")
    name, suffix = fields[0], fields[1:]
    if not _SECRET_NAME.match(name):
        raise ConfigError(
            f"valueFrom {value_from!r}: {name!r} is not a secret name (letters, digits and /_+=.@- only)"
        )
    if suffix and len(suffix) != 3:
        raise ConfigError(
            f"valueFrom {value_from!r} has {len(suffix)} field(s) after the secret name; ECS expects none or "
            "exactly three, json-key:version-stage:version-id, with empty fields kept (e.g. ':username::')"
        )
    json_key, stage, version_id = (field or None for field in (suffix or ["", "", ""]))
    if stage and version_id:
        raise ConfigError(
            f"valueFrom {value_from!r} names both a version stage and a version id; they are mutually exclusive"
        )
    if stage and not _VERSION_STAGE.match(stage):
        raise ConfigError(f"valueFrom {value_from!r}: {stage!r} is not a version stage")
    if version_id and not _VERSION_ID.match(version_id):
        raise ConfigError(f"valueFrom {value_from!r}: {version_id!r} is not a version id (32-64 characters)")
    secret_id = value_from.split(":secret:", 1)[0] + ":secret:" + name
    if stage == AWSCURRENT:
        stage = None  # the default: lets a pinned AWSCURRENT share a fetch with an unpinned one
    return Reference(SecretTarget(region, secret_id, stage, version_id), json_key)


def _parse_parameter_arn(value_from: str, partition: str, rest: str) -> Reference:
    region, resource = _arn_region_account(value_from, rest, "parameter/")
    # A hierarchical name keeps its leading slash: ...:parameter/prod/db is the parameter /prod/db.
    name = f"/{resource}" if "/" in resource.split(":", 1)[0] else resource
    account = rest.split(":", 2)[1]
    return Reference(ParameterTarget(region, _parameter_name(name, value_from), account, partition))


def _parameter_name(name: str, value_from: str | None = None) -> str:
    shown = value_from or name
    if name.startswith(SECRETS_MANAGER_REFERENCE):
        return _secret_reference(name, shown)
    base, _, selector = name.partition(":")
    if ":" in selector or (name.count(":") and not _PARAMETER_SELECTOR.match(selector)):
        raise ConfigError(f"valueFrom {shown!r}: {selector!r} is not a parameter version or label selector")
    if not _PARAMETER_NAME.match(base) or "//" in base or base.endswith("/"):
        hint = " (a Secrets Manager secret needs its full ARN)" if not base.startswith("/") else ""
        raise ConfigError(f"valueFrom {shown!r} is not a valid SSM parameter name{hint}")
    if "/" in base and not base.startswith("/"):
        raise ConfigError(
            f"valueFrom {shown!r}: a parameter name with a hierarchy must begin with '/'; "
            "a Secrets Manager secret needs its full ARN"
        )
    if base.count("/") > MAX_PARAMETER_LEVELS:
        raise ConfigError(f"valueFrom {shown!r}: a parameter name has at most {MAX_PARAMETER_LEVELS} levels")
    if base.lstrip("/").lower().startswith(("aws", "ssm")) and not base.startswith(PUBLIC_PARAMETERS):
        # Nobody can create such a name (PutParameter forbids the prefixes), so none exists to be read.
        raise ConfigError(
            f"valueFrom {shown!r}: no parameter name can begin with 'aws' or 'ssm'; AWS's own are read as "
            f"{PUBLIC_PARAMETERS}... (public parameters) and {SECRETS_MANAGER_REFERENCE}<secret-id>"
        )
    return name


def _secret_reference(name: str, shown: str) -> str:
    """``/aws/reference/secretsmanager/<secret-id>[:<version-id or stage>]``: a secret name, so the characters
    of a secret name (``+=@`` too), and an optional selector."""
    secret_id, _, selector = name[len(SECRETS_MANAGER_REFERENCE) :].partition(":")
    if not _SECRET_NAME.match(secret_id):
        raise ConfigError(
            f"valueFrom {shown!r}: {secret_id!r} is not a secret name (letters, digits and /_+=.@- only)"
        )
    if ":" in name and not _SECRET_SELECTOR.match(selector):
        raise ConfigError(f"valueFrom {shown!r}: {selector!r} is not a secret version id or stage")
    return name


def _url_problem(url: str) -> str:
    """What to write instead of a URL. Only the URL's scheme, host and path are repeated: a presigned URL's
    query carries a signature."""
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
    host = _S3_HOST.match(parts.hostname or "")
    if host is None:
        return (f"valueFrom {shown!r} is a URL; expected a secretsmanager or ssm ARN, an SSM parameter name, "
                "or s3://bucket/key")
    path = unquote(parts.path).lstrip("/")
    bucket, key = (host["bucket"], path) if host["bucket"] else path.partition("/")[::2]
    if not bucket or not key:
        return f"valueFrom {shown!r} is an S3 URL: write S3 objects as s3://bucket/key"
    version = parse_qs(parts.query).get("versionId", [""])[0]
    pin = f"{_S3_VERSION_MARKER}{version}" if version else ""
    return f"valueFrom {shown!r} is an S3 URL: write it as s3://{bucket}/{key}{pin}"


def parse_parameter_path(path: object, recursive: bool, region: str | None) -> ParameterPathTarget:
    """A ``parametersByPath`` entry's path: a hierarchy of names, never an ARN (see ParameterPathTarget)."""
    if not isinstance(path, str) or not path:
        raise ConfigError("parametersByPath must be a non-empty string: a path such as /prod/app")
    if path != path.strip() or "\x00" in path:
        raise ConfigError(f"parametersByPath {path!r} has leading or trailing whitespace or a NUL character")
    if path.startswith("arn:"):
        # GetParametersByPath's Path is a hierarchy beginning with '/', and a parameter shared from another
        # account is read only by its full ARN (GetParameters' API reference): such a tree cannot be listed.
        raise ConfigError(
            f"parametersByPath {path!r} is an ARN; GetParametersByPath takes a path beginning with '/' and lists "
            "the account whose credentials call it: for another account's tree give the path with the roleArn "
            "of a role in that account; a parameter shared through AWS RAM is read only by its ARN, as a valueFrom"
        )
    if not path.startswith("/"):
        raise ConfigError(f"parametersByPath {path!r} must begin with '/' (a path such as /prod/app)")
    normalized = path.rstrip("/") or "/"
    if not _PARAMETER_NAME.match(normalized) or "//" in path:
        raise ConfigError(
            f"parametersByPath {path!r} is not a valid SSM path (letters, digits and _.-/ only, no empty level)"
        )
    if normalized.count("/") >= MAX_PARAMETER_LEVELS:
        raise ConfigError(
            f"parametersByPath {path!r}: a parameter name has at most {MAX_PARAMETER_LEVELS} levels, so a path "
            f"under which one can exist has at most {MAX_PARAMETER_LEVELS - 1}"
        )
    if normalized.lstrip("/").lower().startswith(("aws", "ssm")) and not (normalized + "/").startswith(
        PUBLIC_PARAMETERS
    ):
        raise ConfigError(
            f"parametersByPath {path!r}: no parameter name can begin with 'aws' or 'ssm' except AWS's public "
            f"parameters under {PUBLIC_PARAMETERS}; a reference to Secrets Manager is read as a valueFrom"
        )
    if not region:
        raise ConfigError(
            f"parametersByPath {path!r} carries no region: set AWS_REGION (ECS sets it on Fargate) or SIDECAR_REGION"
        )
    return ParameterPathTarget(region, normalized, recursive)


def _parse_s3(value_from: str, default_region: str | None) -> Reference:
    location = value_from[len("s3://") :]
    version_id = None
    if _S3_VERSION_MARKER in location:
        location, version_id = location.rsplit(_S3_VERSION_MARKER, 1)
        if not version_id:
            raise ConfigError(f"valueFrom {value_from!r}: versionId is empty")
    bucket, _, key = location.partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ConfigError(f"valueFrom {value_from!r}: {bucket!r} is not an S3 bucket name")
    if not key:
        raise ConfigError(f"valueFrom {value_from!r} names no object key (expected s3://bucket/key)")
    return Reference(ObjectTarget(_require_region(default_region, value_from), bucket, key, version_id))
