"""Credentials of a role assumed through STS, and the botocore session whose clients sign with them.

A role's clients get a botocore session of their own. Its credentials are botocore's
``DeferredRefreshableCredentials``: nothing is asked of STS until they are first needed, then
``sts:AssumeRole`` is called with the task's own credentials, and called again before the answer expires.
botocore's ``RefreshableCredentials`` (botocore/credentials.py) decides when: every use checks the time
left; under ``_advisory_refresh_timeout`` (15 minutes) one caller refreshes while the others go on with the
current credentials, and a failure there is logged and ignored; under ``_mandatory_refresh_timeout`` (10
minutes) every caller waits for the refresh, and a failure reaches the caller. The run resolves them before
its calls (``sidecar.credentials``), so a refused AssumeRole is one clear error, not one per call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Final

from botocore.credentials import CredentialProvider, CredentialResolver, DeferredRefreshableCredentials
from botocore.session import Session

if TYPE_CHECKING:
    from botocore.credentials import RefreshableCredentials
    from mypy_boto3_sts import STSClient

SESSION_NAME: Final = "secrets-sidecar"  # RoleSessionName: what CloudTrail shows in the role's sessions
# The task role's credentials are themselves a role session, so this is role chaining, which STS limits to
# one hour (AssumeRole's DurationSeconds in botocore's sts model): a longer duration would be refused.
DURATION_SECONDS: Final = 3600
METHOD: Final = "assume-role"

Clock = Callable[[], datetime]  # botocore's time_fetcher: an aware datetime


def assume_role_credentials(sts: STSClient, role_arn: str, clock: Clock | None = None) -> RefreshableCredentials:
    """Credentials of ``role_arn``, fetched with ``sts`` (a client signing with the task's credentials) on
    first use and renewed by botocore before they expire; ``clock`` is for tests."""

    def assume() -> dict[str, str]:
        answer = sts.assume_role(RoleArn=role_arn, RoleSessionName=SESSION_NAME, DurationSeconds=DURATION_SECONDS)
        credentials = answer["Credentials"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    if clock is None:
        return DeferredRefreshableCredentials(assume, METHOD)
    return DeferredRefreshableCredentials(assume, METHOD, time_fetcher=clock)


class _Assumed(CredentialProvider):
    METHOD = METHOD
    CANONICAL_NAME = "custom-secrets-sidecar-assume-role"  # botocore asks custom providers to say "custom"

    def __init__(self, credentials: RefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> RefreshableCredentials:
        return self._credentials


def role_session(base: Session, credentials: RefreshableCredentials) -> Session:
    """A session whose only credentials are ``credentials``. It shares ``base``'s data loader, so service
    models and endpoint data are read once, whatever the number of sessions."""
    session = Session()
    session.register_component("data_loader", base.get_component("data_loader"))
    session.register_component("credential_provider", CredentialResolver([_Assumed(credentials)]))
    return session
