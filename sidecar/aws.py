"""The AWS edge: botocore clients and one function per operation (their errors: ``sidecar.aws_errors``).

The run's calls to botocore are made here (``sidecar.aws_errors`` reads its exceptions, ``sidecar.bodylimit``
bounds the bodies of this module's clients, the linter reads botocore's ECS model offline in
``sidecar.lint.model``; tests/test_layers.py holds that list).
``check`` imports botocore too, for its endpoint data (the known regions), but creates no client and makes no
network call.
Each operation maps results back to targets by identity, never by position.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from sidecar import __version__, bodylimit
from sidecar.aws_errors import failure_for
from sidecar.outcomes import (
    Checked,
    CheckOutcome,
    Failure,
    Fetched,
    FetchedTree,
    Outcome,
    TreePage,
    TreeParameter,
    tree_token,
)
from sidecar.plan import MAX_PARAMETERS_BY_PATH_RESULTS, Call
from sidecar.references import (
    AWSCURRENT,
    ObjectTarget,
    ParameterPathTarget,
    ParameterTarget,
    SecretTarget,
    Target,
    bare_parameter_name,
)
from sidecar.secret import SecretBytes

if TYPE_CHECKING:  # type stubs, test extras only: nothing here is imported at run time
    from botocore.client import BaseClient
    from botocore.credentials import RefreshableCredentials
    from botocore.session import Session
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectRequestTypeDef
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient

T = TypeVar("T")
CONNECT_TIMEOUT_SECONDS: Final = 3.0
READ_TIMEOUT_SECONDS: Final = 10.0
MAX_SHOWN_NAME_CHARS: Final = 256  # of a name an answer carries, in a message



class ClientFactory:
    """One botocore session for the task's own credentials, and one per (role, region) for an assumed role
    (``sidecar.assumed_role``); one client per (service, region, role), created on demand, tuned for
    start-up."""

    def __init__(
        self, *, concurrency: int, read_timeout: float = READ_TIMEOUT_SECONDS, max_bytes: int | None = None
    ) -> None:
        from botocore.config import Config
        from botocore.session import get_session

        self.session: Session = get_session()
        # AssumeRole goes to the STS endpoint of the client's own region (a VPC endpoint there serves it too),
        # whatever AWS_STS_REGIONAL_ENDPOINTS says: "legacy" would send some regions to the global endpoint.
        self.session.set_config_variable("sts_regional_endpoints", "regional")
        self._config = Config(
            # Retries belong to tenacity alone: two retry layers would multiply attempts past the deadline.
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=read_timeout,
            max_pool_connections=concurrency,
            user_agent_extra=f"ecs-secrets-sidecar/{__version__}",
        )
        self._clients: dict[tuple[str, str, str | None], BaseClient] = {}
        self._roles: dict[tuple[str, str], tuple[Session, RefreshableCredentials]] = {}
        self._max_bytes = max_bytes  # None: response bodies unbounded (only for clients that fetch no values)

    def client(self, service: str, region: str, role_arn: str | None = None) -> BaseClient:
        # Client creation is not thread-safe in botocore: callers create every client before fetching.
        key = (service, region, role_arn)
        if key not in self._clients:
            session = self.session if role_arn is None else self._role(role_arn, region)[0]
            client = session.create_client(service, region_name=region, config=self._config)
            if self._max_bytes is not None and service in bodylimit.BOUNDED_SERVICES:
                bodylimit.install(client, self._max_bytes)
            self._clients[key] = client
        return self._clients[key]

    def role_credentials(self, role_arn: str, region: str) -> RefreshableCredentials:
        """The credentials of ``role_arn`` for clients of ``region``, not fetched until first used; the
        same object for the whole run, so STS is asked once per role and region, and again only to renew."""
        return self._role(role_arn, region)[1]

    def _role(self, role_arn: str, region: str) -> tuple[Session, RefreshableCredentials]:
        from sidecar.assumed_role import assume_role_credentials, role_session

        key = (role_arn, region)
        if key not in self._roles:
            sts = cast("STSClient", self.client("sts", region))  # signs with the task's own credentials
            credentials = assume_role_credentials(sts, role_arn)
            self._roles[key] = (role_session(self.session, credentials), credentials)
        return self._roles[key]

    # botocore types every client as BaseClient; the stubs name each service's operations and shapes.
    def secretsmanager(self, region: str, role_arn: str | None = None) -> SecretsManagerClient:
        return cast("SecretsManagerClient", self.client("secretsmanager", region, role_arn))

    def ssm(self, region: str, role_arn: str | None = None) -> SSMClient:
        return cast("SSMClient", self.client("ssm", region, role_arn))

    def s3(self, region: str, role_arn: str | None = None) -> S3Client:
        return cast("S3Client", self.client("s3", region, role_arn))


def known_regions(session: Session | None = None) -> frozenset[str]:
    """Every region in botocore's endpoint data, across partitions. With a session, its caching loader is
    used, so the endpoint data is parsed once for this check and for every client; without one (``check``, the
    linter, which may read a thousand task definitions), once per process."""
    if session is None:
        return _known_regions_offline()
    return _regions(session.get_component("data_loader").load_data("endpoints"))


@functools.cache
def _known_regions_offline() -> frozenset[str]:
    from botocore.loaders import create_loader

    return _regions(create_loader().load_data("endpoints"))


def _regions(endpoints: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(region for partition in endpoints["partitions"] for region in partition["regions"])


# --- operations -------------------------------------------------------------------------------------------


def perform(clients: ClientFactory, call: Call, max_bytes: int) -> dict[Target, Outcome]:
    """Make one API call; per-item failures come back as ``Failure``, whole-call failures raise."""
    try:
        return _OPERATIONS[call.operation](clients, call, max_bytes)
    except bodylimit.BodyTooLarge as exc:  # no retry: the endpoint would send the same again
        return {target: Failure("TooLarge", f"{target.describe()} is larger than SIDECAR_MAX_BYTES ({max_bytes} "
                                f"bytes): {exc.operation} answered with more than the {exc.limit} bytes that allows")
                for target in call.targets}


def _get_secret_value(clients: ClientFactory, call: Call, max_bytes: int) -> dict[Target, Outcome]:
    (target,) = call.targets
    assert isinstance(target, SecretTarget)  # noqa: S101 - the planner only puts secrets here
    # Version ids and stages are sent unchanged to a failover region: a replica holds the primary's versions.
    params: dict[str, str] = {"SecretId": target.secret_id_in(call.region)}
    if target.version_id:
        params["VersionId"] = target.version_id
    elif target.version_stage:
        params["VersionStage"] = target.version_stage
    answer = clients.secretsmanager(call.region, call.role_arn).get_secret_value(**params)
    return {target: _secret_outcome(target, answer, max_bytes)}


def _batch_get_secret_value(clients: ClientFactory, call: Call, max_bytes: int) -> dict[Target, Outcome]:
    targets = [t for t in call.targets if isinstance(t, SecretTarget)]
    ids = {target: target.secret_id_in(call.region) for target in targets}
    client = clients.secretsmanager(call.region, call.role_arn)
    response = client.batch_get_secret_value(SecretIdList=list(ids.values()))
    outcomes: dict[Target, Outcome] = {}
    for item in response.get("SecretValues", []):
        for target in targets:
            if _same_secret(ids[target], item.get("ARN", ""), item.get("Name", "")):
                outcomes[target] = _secret_outcome(target, item, max_bytes)
    for error in response.get("Errors", []):
        for target in targets:
            if _same_secret(ids[target], error.get("SecretId", ""), error.get("SecretId", "")):
                code = error.get("ErrorCode", "UnknownError")
                outcomes[target] = failure_for(code, error.get("Message", ""), target, "BatchGetSecretValue")
    for target in targets:
        if target not in outcomes:
            outcomes[target] = Failure(
                "MissingFromResponse", f"BatchGetSecretValue did not answer for {target.describe()}"
            )
    return outcomes


def _same_secret(requested: str, arn: str, name: str) -> bool:
    """A requested id (full ARN, partial ARN without the 6-character suffix, or name) matches a result."""
    if requested in (arn, name):
        return True
    suffix = arn[len(requested) :]
    return arn.startswith(requested) and len(suffix) == 7 and suffix[0] == "-"


def _secret_outcome(target: SecretTarget, item: Mapping[str, Any], max_bytes: int) -> Outcome:
    if "SecretString" in item:
        value = _text_value(target, item["SecretString"])
        if isinstance(value, Failure):
            return value
    elif "SecretBinary" in item:
        value = bytes(item["SecretBinary"])  # botocore already decoded the base64: never decode twice
    else:
        return Failure("NoValue", f"{target.describe()} has no SecretString or SecretBinary in that version")
    created = item.get("CreatedDate")
    when = created.timestamp() if isinstance(created, datetime) else None
    return _sized(target, value, item.get("VersionId"), max_bytes, created=when)


def _text_value(target: Target, text: str) -> bytes | Failure:
    """A string value as the bytes of its file. The response is JSON, which can escape a lone surrogate
    (``"\\ud800"``): no UTF-8 file can hold that, and it is bad content, not a crash."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return Failure("NotUnicode", f"{target.describe()} answered with a value that is not valid Unicode text "
                       "(a lone surrogate)")


def _get_parameters(clients: ClientFactory, call: Call, max_bytes: int) -> dict[Target, Outcome]:
    def fetched(target: ParameterTarget, parameter: Mapping[str, Any]) -> Outcome:
        value = _text_value(target, parameter.get("Value", ""))
        if isinstance(value, Failure):
            return value
        return _sized(target, value, parameter_version(target, parameter), max_bytes)

    return _parameters(clients, call, fetched, decrypt=True)


def _parameters(
    clients: ClientFactory, call: Call, answer: Callable[[ParameterTarget, Mapping[str, Any]], T], *, decrypt: bool
) -> dict[Target, T | Failure]:
    """One GetParameters call; each answer mapped back to its request, and every request answered."""
    targets = [t for t in call.targets if isinstance(t, ParameterTarget)]
    # Parameter Store answers a reference to a Secrets Manager secret only when asked to decrypt.
    decrypt = decrypt or any(t.is_secret_reference for t in targets)
    names = [t.request_name_in(call.region) for t in targets]
    response = clients.ssm(call.region, call.role_arn).get_parameters(Names=names, WithDecryption=decrypt)
    outcomes: dict[Target, T | Failure] = {}
    for parameter in response.get("Parameters", []):
        target = answered_parameter(targets, str(parameter.get("Name", "")), call.region)
        if target is not None:
            outcomes[target] = answer(target, parameter)
    for name in response.get("InvalidParameters", []):
        target = answered_parameter(targets, name, call.region)
        if target is not None:
            outcomes[target] = failure_for("ParameterNotFound", "", target, "GetParameters")
    for target in targets:
        if target not in outcomes:
            outcomes[target] = Failure("MissingFromResponse", f"GetParameters did not answer for {target.describe()}")
    return outcomes


def answered_parameter(
    targets: Sequence[ParameterTarget], name: str, region: str | None = None
) -> ParameterTarget | None:
    """The request an answer's ``Name`` (or an ``InvalidParameters`` entry) belongs to, whether it comes
    back as a bare name or an ARN, with or without a selector, from a call in ``region`` (default: each
    target's own). The planner never puts one parameter name twice in a call (``/a:1`` and ``/a:2``, or
    ``/a`` and an ARN of ``/a``), so the bare name identifies it."""
    exact = next((t for t in targets if name == t.request_name_in(region or t.region)), None)
    if exact is not None:
        return exact
    bare = bare_parameter_name(name)
    return next((t for t in targets if t.base_name == bare), None)


def parameter_version(target: ParameterTarget, parameter: Mapping[str, Any]) -> str | None:
    """A parameter's version. A reference to a Secrets Manager secret has no Parameter Store version: its
    ``SourceResult`` (the GetSecretValue answer, value included) carries the secret's version id."""
    if target.is_secret_reference and isinstance(parameter.get("SourceResult"), str):
        try:
            source = json.loads(parameter["SourceResult"])
        except ValueError:
            source = None  # no detail kept: the text holds the secret
        if isinstance(source, dict) and isinstance(source.get("VersionId"), str):
            return str(source["VersionId"])
    return str(parameter.get("Version", "")) or None


def _get_parameters_by_path(clients: ClientFactory, call: Call, max_bytes: int) -> dict[Target, Outcome]:
    """One page of a tree, decrypted: the tree when it is the last page, else the pages so far to go on from."""

    def read(target: ParameterPathTarget, name: str, parameter: Mapping[str, Any]) -> TreeParameter | Failure:
        value = _text_value(target, parameter.get("Value", ""))
        if isinstance(value, Failure):
            return value
        if len(value) > max_bytes:
            # A name is not secret; shown escaped and cut short, as it comes from the endpoint's answer.
            return Failure("TooLarge", f"the parameter {name[:MAX_SHOWN_NAME_CHARS]!r} under {target.path} is larger "
                           f"than SIDECAR_MAX_BYTES ({max_bytes} bytes)")
        return TreeParameter(name, SecretBytes(value), _version(parameter))

    return {call.targets[0]: _tree_page(clients, call, read, decrypt=True)}


def _tree_page(
    clients: ClientFactory, call: Call,
    read: Callable[[ParameterPathTarget, str, Mapping[str, Any]], TreeParameter | Failure], *, decrypt: bool,
) -> FetchedTree | TreePage | Failure:
    """One GetParametersByPath page added to the pages before it (``call.page``). A page may hold fewer than
    MaxResults parameters, even none, and still come with a NextToken: only its absence ends the tree."""
    (target,) = call.targets
    assert isinstance(target, ParameterPathTarget)  # noqa: S101 - the planner only puts trees here
    request: dict[str, Any] = {"Path": target.path, "Recursive": target.recursive, "WithDecryption": decrypt,
                               "MaxResults": MAX_PARAMETERS_BY_PATH_RESULTS}
    if call.page is not None:
        request["NextToken"] = call.page.next_token
    response = clients.ssm(call.region, call.role_arn).get_parameters_by_path(**request)
    found = {p.name: p for p in (call.page.parameters if call.page else ())}
    for parameter in response.get("Parameters", []):
        name = str(parameter.get("Name", ""))
        read_one = read(target, name, parameter)
        if isinstance(read_one, Failure):
            return read_one
        found[name] = read_one  # a name answered twice is one parameter, not two files
    parameters = tuple(found[name] for name in sorted(found))
    next_token = response.get("NextToken")
    if next_token:
        return TreePage(parameters, next_token)
    if not parameters:
        return Failure("NoParameters", f"there is no parameter under {target.path} in {call.region} "
                       f"({'at any depth' if target.recursive else 'at its first level'})", not_found=True)
    return FetchedTree(parameters)


def _version(parameter: Mapping[str, Any]) -> str | None:
    return str(parameter.get("Version", "")) or None


def _get_object(clients: ClientFactory, call: Call, max_bytes: int) -> dict[Target, Outcome]:
    (target,) = call.targets
    assert isinstance(target, ObjectTarget)  # noqa: S101 - the planner only puts objects here
    params: GetObjectRequestTypeDef = {"Bucket": target.bucket, "Key": target.key}
    if target.version_id:
        params["VersionId"] = target.version_id
    response = clients.s3(call.region, call.role_arn).get_object(**params)
    body = response["Body"]
    try:
        if response.get("ContentLength", 0) > max_bytes:
            return {target: _too_large(target, max_bytes)}
        value = body.read(max_bytes + 1)  # never more than the limit, whatever the object's size
    finally:
        body.close()
    return {target: _sized(target, value, response.get("VersionId"), max_bytes, response.get("ETag"))}


def _sized(
    target: Target, value: bytes, version: str | None, max_bytes: int, token: str | None = None, *,
    created: float | None = None,
) -> Outcome:
    if len(value) > max_bytes:
        return _too_large(target, max_bytes)
    return Fetched(SecretBytes(value), version, token, created=created)


def _too_large(target: Target, max_bytes: int) -> Failure:
    return Failure("TooLarge", f"{target.describe()} is larger than SIDECAR_MAX_BYTES ({max_bytes} bytes)")


# --- refresh checks: versions, and the values a batch answers with anyway ---------------------------------


def check(clients: ClientFactory, call: Call, max_bytes: int) -> dict[Target, CheckOutcome]:
    """Make one check call; answers each target's current change token (and its value, where the call
    reads values anyway)."""
    return _CHECKS[call.operation](clients, call, max_bytes)


def _values_as_checks(
    read: Callable[[ClientFactory, Call, int], dict[Target, Outcome]],
) -> Callable[[ClientFactory, Call, int], dict[Target, CheckOutcome]]:
    """A call that reads values, as a check: each value's change token, with the value kept for the commit."""

    def checked(clients: ClientFactory, call: Call, max_bytes: int) -> dict[Target, CheckOutcome]:
        return {target: _as_check(outcome) for target, outcome in read(clients, call, max_bytes).items()}

    return checked


def _as_check(outcome: Outcome) -> CheckOutcome:
    if isinstance(outcome, Fetched):
        return Checked(outcome.change_token, outcome)
    if isinstance(outcome, FetchedTree):
        return Checked(outcome.change_token)
    return outcome


def _describe_secret(clients: ClientFactory, call: Call, _max_bytes: int) -> dict[Target, CheckOutcome]:
    targets = [t for t in call.targets if isinstance(t, SecretTarget)]
    client = clients.secretsmanager(call.region, call.role_arn)
    described = client.describe_secret(SecretId=targets[0].secret_id_in(call.region))
    stages = described.get("VersionIdsToStages", {})
    outcomes: dict[Target, CheckOutcome] = {}
    for target in targets:
        wanted = target.version_stage or AWSCURRENT
        versions = [version for version, labels in stages.items() if wanted in labels]
        outcomes[target] = (
            Checked(versions[0]) if versions
            else Failure("NoSuchStage", f"{target.describe()} has no version in stage {wanted}", not_found=True)
        )
    return outcomes


def _parameter_versions(clients: ClientFactory, call: Call, _max_bytes: int) -> dict[Target, CheckOutcome]:
    # Without decryption where the API allows it: the answer carries the version, and no KMS call is made.
    answers = _parameters(clients, call, lambda target, parameter: Checked(parameter_version(target, parameter)),
                          decrypt=False)
    return {target: answer for target, answer in answers.items()}


def _parameter_tree_versions(clients: ClientFactory, call: Call, _max_bytes: int) -> dict[Target, CheckOutcome]:
    # Names and versions only: without decryption, no value is decrypted and no KMS call is made.
    page = _tree_page(clients, call, lambda _, name, parameter: TreeParameter(name, None, _version(parameter)),
                      decrypt=False)
    outcome: CheckOutcome = Checked(tree_token(page.parameters)) if isinstance(page, FetchedTree) else page
    return {call.targets[0]: outcome}


def _head_object(clients: ClientFactory, call: Call, _max_bytes: int) -> dict[Target, CheckOutcome]:
    (target,) = call.targets
    assert isinstance(target, ObjectTarget)  # noqa: S101 - the planner only puts objects here
    response = clients.s3(call.region, call.role_arn).head_object(Bucket=target.bucket, Key=target.key)
    return {target: Checked(response.get("ETag"))}


_CHECKS: Final[dict[str, Callable[[ClientFactory, Call, int], dict[Target, CheckOutcome]]]] = {
    # AWSCURRENT secrets: the batch, and GetSecretValue for a batch that fell back (denied or throttled) or
    # for one of its secrets that failed with a transient code (``plan.follow_ups``).
    "BatchGetSecretValue": _values_as_checks(_batch_get_secret_value),
    "GetSecretValue": _values_as_checks(_get_secret_value),
    "DescribeSecret": _describe_secret,
    "GetParameters": _parameter_versions,
    "HeadObject": _head_object,
    "GetParametersByPath": _parameter_tree_versions,
}

_OPERATIONS: Final[dict[str, Callable[[ClientFactory, Call, int], dict[Target, Outcome]]]] = {
    "GetSecretValue": _get_secret_value,
    "BatchGetSecretValue": _batch_get_secret_value,
    "GetParameters": _get_parameters,
    "GetObject": _get_object,
    "GetParametersByPath": _get_parameters_by_path,
}
