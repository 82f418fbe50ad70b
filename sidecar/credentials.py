"""Resolve AWS credentials once, before any call needs them, so a missing task role is one clear error."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from sidecar import aws_errors
from sidecar.deadline import Deadline
from sidecar.errors import FetchError
from sidecar.retrying import Stopped
from sidecar.stopping import POLL_SECONDS, Stop

Attempts = Callable[[Callable[[], object]], object]  # runs a callable with retries; its result or ``Stopped``


@dataclass(frozen=True)
class AssumedRole:
    """A role whose credentials are resolved, and the region whose STS endpoint is asked for them."""

    arn: str
    region: str


def resolve_credentials(
    get_credentials: Callable[[], object], *, deadline: Deadline, attempts: Attempts, stop: Stop | None = None,
    role: AssumedRole | None = None,
) -> None:
    """Raise ``FetchError`` unless ``get_credentials`` (botocore's provider chain, or with ``role`` the
    role's credentials, which call sts:AssumeRole when they have none or little time left) finds credentials
    in time.

    One attempt against the container endpoint can take seconds (botocore tries it three times, a second
    apart), so the resolution runs in a daemon thread and is given up when the deadline passes."""
    answer: list[object] = []
    failure: list[BaseException] = []

    def resolve() -> None:
        try:
            answer.append(attempts(get_credentials))
        except BaseException as exc:  # handed to the waiting thread
            failure.append(exc)

    worker = threading.Thread(target=resolve, name="credentials", daemon=True)
    worker.start()
    while worker.is_alive() and deadline.remaining() > 0:
        if stop is not None:
            stop.check()  # SIGTERM: stop waiting for the endpoint
        worker.join(min(deadline.remaining(), POLL_SECONDS))
    if worker.is_alive() and role is not None:
        raise FetchError(f"could not assume role {role.arn} before the SIDECAR_TIMEOUT deadline: STS in "
                         f"{role.region} did not answer in time")
    if worker.is_alive():
        raise FetchError(
            "could not obtain AWS credentials (the task role) before the SIDECAR_TIMEOUT deadline: the "
            "credentials endpoint did not answer in time"
        )
    if failure:
        raise failure[0]  # not an AWS error: a bug
    credentials = answer[0]
    if isinstance(credentials, Stopped) and role is not None:
        raise FetchError(_not_assumed(role, credentials)) from None
    if isinstance(credentials, Stopped):
        exc = credentials.error
        raise FetchError(
            f"could not obtain AWS credentials (the task role): {type(exc).__name__}: {aws_errors.aws_message(exc)}"
        ) from None
    if credentials is None:
        raise FetchError(
            "no AWS credentials found: give the task a taskRoleArn (ECS then sets "
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI), or set AWS credentials for a local run"
        )


def _not_assumed(role: AssumedRole, stopped: Stopped) -> str:
    """Why AssumeRole gave no credentials, in one line: for a refusal, the two places a permission is missing."""
    code = stopped.error_class.code
    message = aws_errors.aws_message(stopped.error)[: aws_errors.MAX_AWS_MESSAGE_CHARS]
    said = f" (AWS: {message})" if message else ""
    if stopped.error_class.denied:
        return (f"could not assume role {role.arn}: access denied ({code}): the task role needs sts:AssumeRole on "
                f"{role.arn}, and that role's trust policy must allow the task role to assume it{said}")
    if stopped.decision.why == "permanent":
        return f"could not assume role {role.arn} through STS in {role.region}: {code}{said}"
    where = aws_errors.network_detail(stopped.error, "sts", role.region)
    return (f"could not assume role {role.arn}: AssumeRole in {role.region} kept failing with {code} after "
            f"{stopped.attempts} attempt(s){where or said}")
