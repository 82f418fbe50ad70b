"""Rules for a sidecar in refresh mode (SIDECAR_REFRESH_INTERVAL): a long-running container with a health check.

Such a sidecar never exits, so the app waits for it with ``HEALTHY`` (checked by ``app-dependency``), which
needs a container health check running ``secrets-sidecar healthcheck``. It should be essential, so that a
dead sidecar does not leave the app running on files that no longer follow rotations. Signalling the app
after a change needs the task's PID namespace and the app's uid. Each rule is a pure function from the parsed
task definition to a list of findings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sidecar.lint.finding import Finding
from sidecar.lint.task import (
    Container,
    health_check_words,
    is_essential,
    is_refresh_mode,
    notifies_by_signal,
    roles,
    runs_sidecar_healthcheck,
    user_id,
)

Task = Mapping[str, Any]
TASK_PID_MODE: Final = "task"
ROOT_UID: Final = 0
HEALTH_CHECK_FIX: Final = (
    "add \"healthCheck\": {\"command\": [\"CMD\", \"secrets-sidecar\", \"healthcheck\"], \"interval\": 30, "
    "\"timeout\": 5, \"retries\": 3, \"startPeriod\": 60} to the sidecar"
)


def _refresh_sidecars(task: Task) -> list[tuple[str, Container]]:
    return [(s.name, s.container) for s in roles(task).sidecars if is_refresh_mode(s.container)]


def check_refresh_health_check(task: Task) -> list[Finding]:
    findings = []
    for name, container in _refresh_sidecars(task):
        words = health_check_words(container)
        if words is None:
            findings.append(Finding(
                "sidecar-healthcheck", "error", name,
                "the sidecar runs in refresh mode (SIDECAR_REFRESH_INTERVAL is set) without a healthCheck: the "
                "HEALTHY condition the app must wait on never becomes true, so the app never starts",
                HEALTH_CHECK_FIX,
            ))
        elif not runs_sidecar_healthcheck(words):
            findings.append(Finding(
                "sidecar-healthcheck", "error", name,
                "the sidecar's healthCheck does not run `secrets-sidecar healthcheck`, so HEALTHY does not mean "
                "that the first set of secrets was written or that the last refresh is recent",
                "set the healthCheck's command to [\"CMD\", \"secrets-sidecar\", \"healthcheck\"]",
            ))
    return findings


def check_refresh_essential(task: Task) -> list[Finding]:
    return [
        Finding(
            "refresh-essential", "warning", name,
            "the sidecar runs in refresh mode but is not essential: if it stops, the task keeps running and the "
            "app silently keeps the secrets it has, without the next rotation",
            "set \"essential\": true on the sidecar (ECS then stops the task when it stops, and a replacement "
            "task starts with current secrets)",
        )
        for name, container in _refresh_sidecars(task)
        if not is_essential(container)
    ]


def check_notify_pid_mode(task: Task) -> list[Finding]:
    pid_mode = task.get("pidMode")
    if pid_mode == TASK_PID_MODE:
        return []
    if pid_mode == "host":
        why = (
            "the task has \"pidMode\": \"host\": the sidecar sees every process on the instance and would "
            "signal any process of that name it may signal, in other tasks too"
        )
    else:
        why = (
            "the task has no \"pidMode\": \"task\": the sidecar cannot see the app's processes, so every signal "
            "fails (logged as notify_failed) and the app is never told about new secrets"
        )
    return [
        Finding(
            "notify-pid-mode", "warning", name, f"SIDECAR_NOTIFY_SIGNAL is set but {why}",
            "set \"pidMode\": \"task\" on the task (Fargate platform 1.4.0 or later, or EC2), or drop the signal "
            "and let the app watch /run/secrets/..version",
        )
        for name, container in ((s.name, s.container) for s in roles(task).sidecars)
        if notifies_by_signal(container)
    ]


def check_notify_uid(task: Task) -> list[Finding]:
    findings = []
    for sidecar in roles(task).sidecars:
        app_uids = [user_id(app) for _, app in sidecar.readers]
        if not app_uids or None in app_uids:
            continue  # a reader without a numeric user runs as its image's user: not known here
        uid = user_id(sidecar.container)
        if not notifies_by_signal(sidecar.container) or uid is None or uid == ROOT_UID or uid in app_uids:
            continue
        apps = ", ".join(f"{app!r} as {user_id(app_container)}" for app, app_container in sidecar.readers)
        findings.append(Finding(
            "notify-uid", "warning", sidecar.name,
            f"SIDECAR_NOTIFY_SIGNAL is set but the sidecar runs as uid {uid} and no app does ({apps}): the "
            "kernel lets a process signal only processes of its own uid unless it is root, so every signal "
            "fails (logged as notify_failed)",
            f"run the app as uid {uid} (its group can stay the app's), or drop the signal and let the app watch "
            "/run/secrets/..version",
        ))
    return findings
