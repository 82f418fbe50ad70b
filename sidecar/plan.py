"""Plan the API calls for a set of references: pure, deterministic, and as few calls as the APIs allow."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

from sidecar.outcomes import Failure, TreePage
from sidecar.references import ObjectTarget, ParameterPathTarget, ParameterTarget, SecretTarget, Target
from sidecar.retry_policy import TRANSIENT_CODES, FailOver, FallBack

MAX_GET_PARAMETERS_NAMES: Final = 10  # SSM GetParameters accepts 1-10 names
MAX_BATCH_SECRET_IDS: Final = 20  # Secrets Manager BatchGetSecretValue accepts up to 20 ids
MAX_PARAMETERS_BY_PATH_RESULTS: Final = 10  # SSM GetParametersByPath answers 1-10 parameters a page (MaxResults)

Operation = Literal[
    "GetParameters", "BatchGetSecretValue", "GetSecretValue", "GetObject", "DescribeSecret", "HeadObject",
    "GetParametersByPath",
]
SmBatch = Literal["auto", "always", "never"]  # Secrets Manager batching: see use_batch


@dataclass(frozen=True)
class Call:
    """One API call: which client (service, region, and the role whose credentials sign it: None for the
    task's own), which operation, and the targets it answers. A page of a parameter tree after the first
    carries the pages before it (``page``, with the next page's token).

    ``failover_region``: where the same call is made when ``region`` is unavailable (every target of the call
    has that failover region). ``failed_over_from``: on that second call, the region that was unavailable."""

    service: str
    region: str
    operation: Operation
    targets: tuple[Target, ...]
    role_arn: str | None = None
    page: TreePage | None = None
    failover_region: str | None = None
    failed_over_from: str | None = None


def use_batch(current_secrets_in_region: int, sm_batch: SmBatch, concurrency: int) -> bool:
    """Whether AWSCURRENT secrets of one region go through BatchGetSecretValue.

    ``auto`` batches only when single calls would not all fit in one round of the concurrency pool:
    up to ``concurrency`` secrets, parallel GetSecretValue calls take one round trip, like one batch, and
    draw on GetSecretValue's quota (10,000/s) rather than BatchGetSecretValue's (about 100/s), which a
    fleet starting at once exhausts first.
    """
    if sm_batch == "always":
        return current_secrets_in_region > 0
    if sm_batch == "never":
        return False
    return current_secrets_in_region > concurrency


def make_plan(targets: Iterable[Target], sm_batch: SmBatch = "auto", concurrency: int = 8) -> tuple[Call, ...]:
    """Every distinct target in exactly one call; batches within the API limits; a stable order. A call
    serves one client: one service, one region, one role (the same secret read through two roles is two
    fetches, each answered with what its role may read)."""
    unique = sorted(set(targets), key=lambda t: (t.service, repr(t)))
    calls: list[Call] = []
    # A call fails over as a whole, so the targets of one call share their failover region too.
    by_client: dict[tuple[str, str, str, str], list[Target]] = {}
    for target in unique:
        key = (target.service, target.region, target.role_arn or "", target.failover_region or "")
        by_client.setdefault(key, []).append(target)

    for (service, region, role, fallback), group in sorted(by_client.items()):
        role_arn, failover = role or None, fallback or None
        if service == ParameterTarget.service:
            trees = [t for t in group if isinstance(t, ParameterPathTarget)]
            names = [t for t in group if not isinstance(t, ParameterPathTarget)]
            calls += [Call(service, region, "GetParameters", chunk, role_arn, failover_region=failover)
                      for chunk in _parameter_chunks(names)]
            calls += [Call(service, region, "GetParametersByPath", (tree,), role_arn, failover_region=failover)
                      for tree in trees]
        elif service == ObjectTarget.service:
            calls += [Call(service, region, "GetObject", (target,), role_arn) for target in group]
        else:
            current = [t for t in group if isinstance(t, SecretTarget) and t.is_current]
            pinned = [t for t in group if t not in current]
            if use_batch(len(current), sm_batch, concurrency):
                batches = _chunks(current, MAX_BATCH_SECRET_IDS)
                calls += [Call(service, region, "BatchGetSecretValue", chunk, role_arn, failover_region=failover)
                          for chunk in batches]
            else:
                pinned = current + pinned
            calls += [Call(service, region, "GetSecretValue", (target,), role_arn, failover_region=failover)
                      for target in pinned]
    return tuple(calls)


def follow_ups(call: Call, answer: FallBack | FailOver | Mapping[Target, object]) -> tuple[Call, ...]:
    """The calls that finish a failed or partly answered call.

    When the policy made a call fail over: the same call in its failover region, which does not fail over
    again; a parameter tree starts again at its first page there (a page token is one region's). For a
    ``BatchGetSecretValue``, one ``GetSecretValue`` each: for every secret of the batch when the policy made
    the whole batch fall back (denied or throttled), else for each secret whose item in ``Errors[]`` has a
    transient code (that call then gets retries, and a failover, of its own). A ``GetParametersByPath`` page
    that came with a ``NextToken`` is followed by the call for the next page, which carries the pages so far:
    each page is a call of its own, counted and retried like any other. Any other call needs none."""
    if isinstance(answer, FailOver):
        assert call.failover_region is not None  # noqa: S101 - the policy fails over only calls that can
        return (replace(call, region=call.failover_region, failover_region=None, failed_over_from=call.region,
                        page=None),)
    if call.operation == "GetParametersByPath" and not isinstance(answer, FallBack):
        return tuple(replace(call, page=page) for page in answer.values() if isinstance(page, TreePage))
    if call.operation != "BatchGetSecretValue":
        return ()
    if isinstance(answer, FallBack):
        return _singles(call, call.targets)
    again = [
        t for t, outcome in answer.items()
        if isinstance(t, SecretTarget) and isinstance(outcome, Failure) and outcome.code in TRANSIENT_CODES
    ]
    return _singles(call, again)


def _singles(call: Call, targets: Iterable[Target]) -> tuple[Call, ...]:
    """One ``GetSecretValue`` for each of ``targets``, with the batch's client and failover region."""
    return tuple(replace(call, operation="GetSecretValue", targets=(target,)) for target in targets)


def _parameter_chunks(parameters: Sequence[Target]) -> list[tuple[Target, ...]]:
    """Chunks of at most ten names in which no parameter name appears twice: ``/a:1`` and ``/a:2`` go apart,
    and so do ``/a`` and an ARN of ``/a`` (another account's, perhaps). GetParameters answers with the bare
    name (or an ARN), without the selector, so each answer then maps back to exactly one request."""
    rounds: list[list[Target]] = []
    for target in parameters:
        base = target.base_name if isinstance(target, ParameterTarget) else repr(target)
        if isinstance(target, ParameterTarget) and target.is_secret_reference:
            # Alone: a missing secret can fail the whole call (ParameterNotFound, not InvalidParameters), and
            # only this call needs decryption when it is a refresh check.
            rounds.append([target])
            continue
        for chunk in rounds:
            if len(chunk) < MAX_GET_PARAMETERS_NAMES and all(
                not isinstance(t, ParameterTarget) or (t.base_name != base and not t.is_secret_reference)
                for t in chunk
            ):
                chunk.append(target)
                break
        else:
            rounds.append([target])
    return [tuple(chunk) for chunk in rounds]


def _chunks(items: Sequence[Target], size: int) -> list[tuple[Target, ...]]:
    return [tuple(items[start : start + size]) for start in range(0, len(items), size)]


def is_immutable(target: Target) -> bool:
    """A reference pinned to one version can never change, so a refresh never checks it."""
    if isinstance(target, SecretTarget):
        return target.version_id is not None
    if isinstance(target, ParameterTarget):
        selector = target.name.partition(":")[2]
        return selector.isdigit()
    if isinstance(target, ParameterPathTarget):
        return False  # parameters come and go under a path
    return target.version_id is not None


def make_check_plan(
    targets: Iterable[Target], sm_batch: SmBatch = "auto",
    batch_denied: Collection[tuple[str, str | None]] = frozenset(),
) -> tuple[Call, ...]:
    """The calls that tell whether any target changed, as few as the APIs allow, each serving one client
    (service, region, role):

    - ``AWSCURRENT`` secrets: ``BatchGetSecretValue`` in twenties (version and value in one answer, so a
      change needs no re-fetch); where ``batch_denied`` holds the (region, role), one ``GetSecretValue`` each
      (the permission the batch itself requires, so the task has it); with ``sm_batch`` ``never``, one
      ``DescribeSecret`` per secret, which reads no value;
    - secrets pinned to another stage: one ``DescribeSecret`` per secret (the batch answers only
      ``AWSCURRENT``; ``DescribeSecret`` answers every stage at once);
    - parameters: ``GetParameters`` in tens, without decryption, except for references to Secrets Manager,
      which Parameter Store answers only with it;
    - parameter trees: the pages of ``GetParametersByPath``, without decryption (names and versions);
    - objects: one ``HeadObject`` each.

    Targets pinned to a version never change and are not checked."""
    mutable = sorted({t for t in targets if not is_immutable(t)}, key=lambda t: (t.service, repr(t)))
    calls: list[Call] = []
    current: dict[tuple[str, str, str], list[Target]] = {}
    staged: dict[tuple[str, str, str, str], list[Target]] = {}
    parameters: dict[tuple[str, str, str], list[Target]] = {}
    for target in mutable:
        role = target.role_arn or ""
        if isinstance(target, SecretTarget) and target.is_current and sm_batch != "never":
            current.setdefault((target.region, role, target.failover_region or ""), []).append(target)
        elif isinstance(target, SecretTarget):
            staged.setdefault((target.region, role, target.failover_region or "", target.secret_id), []).append(target)
        elif isinstance(target, ParameterTarget):
            parameters.setdefault((target.region, role, target.failover_region or ""), []).append(target)
        elif isinstance(target, ParameterPathTarget):
            calls.append(Call(target.service, target.region, "GetParametersByPath", (target,), target.role_arn,
                              failover_region=target.failover_region))
        else:
            calls.append(Call(target.service, target.region, "HeadObject", (target,), target.role_arn))
    for (region, role, failover), group in sorted(current.items()):
        role_arn, failover_region = role or None, failover or None
        if (region, role_arn) in batch_denied:
            calls += [Call(SecretTarget.service, region, "GetSecretValue", (t,), role_arn,
                           failover_region=failover_region) for t in group]
            continue
        calls += [
            Call(SecretTarget.service, region, "BatchGetSecretValue", chunk, role_arn, failover_region=failover_region)
            for chunk in _chunks(group, MAX_BATCH_SECRET_IDS)
        ]
    for (region, role, failover, _), group in sorted(staged.items()):
        calls.append(Call(SecretTarget.service, region, "DescribeSecret", tuple(group), role or None,
                          failover_region=failover or None))
    for (region, role, failover), group in sorted(parameters.items()):
        calls += [
            Call(ParameterTarget.service, region, "GetParameters", chunk, role or None,
                 failover_region=failover or None)
            for chunk in _parameter_chunks(group)
        ]
    return tuple(calls)
