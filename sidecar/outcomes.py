"""What a fetch produced for one target: a value, or a value-free failure."""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.secret import SecretBytes


@dataclass(frozen=True)
class Fetched:
    value: SecretBytes
    version: str | None = None  # Secrets Manager VersionId, SSM Version, S3 VersionId, where AWS says
    token: str | None = None  # what changes when the value changes: the version, or an S3 ETag

    @property
    def change_token(self) -> str | None:
        return self.token or self.version


@dataclass(frozen=True)
class Checked:
    """A metadata-only answer for one target: its current change token, without the value."""

    token: str | None


@dataclass(frozen=True)
class Failure:
    code: str  # the AWS error code, or one of ours (TooLarge, DeadlineExceeded, ...)
    reason: str  # plain English naming the reference and the cause; never a value
    not_found: bool = False  # the secret does not exist: an optional entry is skipped


Outcome = Fetched | Failure
CheckOutcome = Checked | Failure
