"""What a fetch produced for one target: a value, a tree of values, or a value-free failure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from sidecar.secret import SecretBytes


@dataclass(frozen=True)
class Fetched:
    value: SecretBytes
    version: str | None = None  # Secrets Manager VersionId, SSM Version, S3 VersionId, where AWS says
    token: str | None = None  # what changes when the value changes: the version, or an S3 ETag
    region: str | None = None  # the region that served it: its own, or its failover region
    created: float | None = None  # when AWS says this version was made (Secrets Manager CreatedDate), epoch s

    @property
    def change_token(self) -> str | None:
        return self.token or self.version


@dataclass(frozen=True)
class TreeParameter:
    """One parameter of a tree: its full name (names are not secret), its value (None in a refresh check,
    which reads versions only) and its version."""

    name: str
    value: SecretBytes | None
    version: str | None


@dataclass(frozen=True)
class FetchedTree:
    """Every parameter under a path (``ParameterPathTarget``), in name order; never empty."""

    parameters: tuple[TreeParameter, ...]
    region: str | None = None  # the region that served it: its own, or its failover region

    @property
    def change_token(self) -> str:
        return tree_token(self.parameters)


@dataclass(frozen=True)
class TreePage:
    """The pages of a tree read so far, and the token that asks for the next one: not an answer yet, but what
    the next page's call (``plan.follow_ups``) carries."""

    parameters: tuple[TreeParameter, ...]
    next_token: str


def tree_token(parameters: Iterable[TreeParameter]) -> str:
    """What changes when a parameter under the path is added, deleted or changed: a digest of the sorted
    (name, version) pairs. Values never enter it."""
    pairs = sorted((p.name, p.version or "") for p in parameters)
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


@dataclass(frozen=True)
class Checked:
    """A check's answer for one target: its current change token, and the value when the check read it
    (``BatchGetSecretValue``, or ``GetSecretValue`` after a batch fell back), so a change needs no re-fetch."""

    token: str | None
    fetched: Fetched | None = None


@dataclass(frozen=True)
class Failure:
    code: str  # the AWS error code, or one of ours (TooLarge, DeadlineExceeded, ...)
    reason: str  # plain English naming the reference and the cause; never a value
    not_found: bool = False  # the secret does not exist: an optional entry is skipped


Outcome = Fetched | FetchedTree | TreePage | Failure
CheckOutcome = Checked | TreePage | Failure
