"""Rules ``start-timeout-*``: how long ECS lets the app wait for the sidecar.

ECS reads ``startTimeout`` from the container being WAITED ON: the agent's ``hasDependencyTimedOut``
(agent/engine/dependencygraph/graph.go in aws/amazon-ecs-agent) compares the dependency's own start time
plus the dependency's own ``startTimeout`` with the clock, for the SUCCESS, COMPLETE and HEALTHY conditions;
the API reference (ContainerDefinition.startTimeout) says the same with containerA waiting on containerB.
So the bound belongs on the sidecar; on the app it bounds only the app's own dependents. When it runs out,
the app gives up and the task stops, so it must end after the sidecar's own deadline (``SIDECAR_TIMEOUT``):
otherwise ECS stops a task whose sidecar was still going to succeed, or to say why it failed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from sidecar.lint.finding import Finding
from sidecar.lint.task import Container, Sidecar, is_refresh_mode, roles, setting, start_timeout
from sidecar.settings.model import ECS_MAX_START_TIMEOUT_SECONDS
from sidecar.settings.options import TIMEOUT

# Between ECS's start of the container and the sidecar's own clock (process start-up, imports), and between
# the sidecar's exit and the agent seeing it: a few seconds at worst; ten leaves room.
MARGIN_SECONDS: Final = 10
# ECS's health check defaults when a field is absent (API reference, HealthCheck: interval 30 s, timeout 5 s).
DEFAULT_HEALTH_INTERVAL_SECONDS: Final = 30
DEFAULT_HEALTH_TIMEOUT_SECONDS: Final = 5


def check_start_timeout(task: Mapping[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    for sidecar in roles(task).sidecars:
        needed = required_start_timeout(sidecar.container)
        timeout = start_timeout(sidecar.container)
        if timeout is None:
            findings += _missing(sidecar, needed)
        elif needed is not None and timeout < needed:
            findings.append(_too_short(sidecar, timeout, needed, _on_fargate(task)))
    return findings


def required_start_timeout(container: Container) -> int | None:
    """The shortest ``startTimeout`` that outlasts the sidecar's deadline; None when the deadline is unknown.

    In refresh mode HEALTHY comes at the first health check after the first commit: up to one interval and
    one check's own timeout after the deadline.
    """
    deadline = sidecar_deadline(container)
    if deadline is None:
        return None
    needed = deadline + MARGIN_SECONDS
    if is_refresh_mode(container):
        interval, check_timeout = _health_timing(container)
        needed += interval + check_timeout
    return math.ceil(needed)


def sidecar_deadline(container: Container) -> float | None:
    """SIDECAR_TIMEOUT (or ``--timeout``) in seconds, the default when unset, None when it does not parse.

    A value that does not parse is the ``sidecar-config`` rule's finding, not this one's.
    """
    raw = setting(container, TIMEOUT)
    if raw is None:
        return TIMEOUT.default
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if 0 < value < 10**6 else None


def _health_timing(container: Container) -> tuple[int, int]:
    check = container.get("healthCheck")
    check = check if isinstance(check, Mapping) else {}

    def seconds(key: str, default: int) -> int:
        value = check.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default

    return seconds("interval", DEFAULT_HEALTH_INTERVAL_SECONDS), seconds("timeout", DEFAULT_HEALTH_TIMEOUT_SECONDS)


def _missing(sidecar: Sidecar, needed: int | None) -> list[Finding]:
    suggestion = f"\"startTimeout\": {needed}" if needed is not None else "a \"startTimeout\""
    on_readers = [
        Finding(
            "start-timeout-on-app", "warning", name,
            f"the container has a startTimeout, but ECS reads it from the container being waited on "
            f"({sidecar.name!r}): here it bounds only the wait of containers that depend on this one, not the "
            "wait for the secrets",
            f"move it to the sidecar: {suggestion} on {sidecar.name!r} (at least SIDECAR_TIMEOUT plus "
            f"{MARGIN_SECONDS} s)",
        )
        for name, container in sidecar.readers
        if start_timeout(container) is not None
    ]
    if on_readers or is_refresh_mode(sidecar.container):
        return on_readers
    return [Finding(
        "start-timeout-missing", "warning", sidecar.name,
        "the sidecar has no startTimeout: nothing but the sidecar's own deadline bounds the app's wait, so a "
        "sidecar that hangs keeps the task pending without a reason",
        f"set {suggestion} on the sidecar (at least SIDECAR_TIMEOUT plus {MARGIN_SECONDS} s); ECS reads it from "
        "the container being waited on",
    )]


def _too_short(sidecar: Sidecar, timeout: int, needed: int, fargate: bool) -> Finding:
    deadline = sidecar_deadline(sidecar.container)
    health = " plus one health check interval and timeout" if is_refresh_mode(sidecar.container) else ""
    fix = f"set \"startTimeout\": {needed} or more on the sidecar, or lower SIDECAR_TIMEOUT"
    if fargate and needed > ECS_MAX_START_TIMEOUT_SECONDS:
        fix = (
            f"lower SIDECAR_TIMEOUT: Fargate accepts a startTimeout of at most "
            f"{ECS_MAX_START_TIMEOUT_SECONDS} s, and this one needs {needed} s"
        )
    return Finding(
        "start-timeout-short", "error", sidecar.name,
        f"the sidecar's startTimeout ({timeout} s) ends before its own deadline (SIDECAR_TIMEOUT {deadline:g} s"
        f"{health}, plus a {MARGIN_SECONDS} s margin): ECS would stop the task while a slow fetch is still "
        "succeeding, before the sidecar can say why",
        fix,
    )


def _on_fargate(task: Mapping[str, Any]) -> bool:
    wanted = task.get("requiresCompatibilities")
    return isinstance(wanted, list) and "FARGATE" in wanted
