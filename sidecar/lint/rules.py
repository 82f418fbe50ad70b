"""Rules about how the sidecar is wired into the task: ordering, the shared volume, hardening, the role.

Each rule is a pure function from the parsed task definition to a list of findings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sidecar.lint.finding import Finding
from sidecar.lint.task import (
    Container,
    depends_on,
    is_essential,
    is_refresh_mode,
    mount_points,
    output_dir,
    roles,
    same_path,
    volume_names,
)

Task = Mapping[str, Any]
ROOT_USERS: Final = frozenset({"0", "root"})
SUCCESS: Final = "SUCCESS"
HEALTHY: Final = "HEALTHY"
_WRONG_FOR_RUN_ONCE: Final = {
    "COMPLETE": "COMPLETE starts the app even when the sidecar failed, without its secrets",
    "START": "START starts the app as soon as the sidecar starts, before the secrets are written",
    "HEALTHY": "HEALTHY never becomes true for a run-once sidecar, which exits once the files are written "
    "(a container that has exited passes no health check), so the app never starts; use SUCCESS, or set "
    "SIDECAR_REFRESH_INTERVAL to keep the sidecar running (docs/rotation.md)",
}
_WRONG_FOR_REFRESH: Final = {
    "SUCCESS": "SUCCESS waits for an exit that a refresh-mode sidecar never makes, so the app never starts "
    "(and ECS refuses a SUCCESS dependency on an essential container)",
    "COMPLETE": "COMPLETE waits for an exit that a refresh-mode sidecar never makes, so the app never starts "
    "(and ECS refuses a COMPLETE dependency on an essential container)",
    "START": "START starts the app as soon as the sidecar starts, before the first set of secrets is written",
}


def check_sidecar_present(task: Task) -> list[Finding]:
    if roles(task).sidecars:
        return []
    return [Finding(
        "no-sidecar", "error", None,
        "no container is recognisable as the secrets sidecar, so no secrets will be written",
        "use the secrets-sidecar image, run the secrets-sidecar program, or configure it with SIDECAR_* "
        "environment variables",
    )]


def check_sidecar_essential(task: Task) -> list[Finding]:
    return [
        Finding(
            "sidecar-essential", "error", name,
            "the sidecar is essential (\"essential\" is true or absent, and ECS defaults it to true): ECS "
            "stops the whole task when it exits, and rejects a SUCCESS dependency on an essential container",
            "set \"essential\": false on the sidecar",
        )
        for name, container in roles(task).sidecars
        if is_essential(container) and not is_refresh_mode(container)
    ]


def check_sidecar_restart(task: Task) -> list[Finding]:
    findings = []
    for name, container in roles(task).sidecars:
        policy = container.get("restartPolicy")
        if is_refresh_mode(container):
            continue  # a long-running sidecar that ECS restarts after a crash keeps the files current
        if isinstance(policy, Mapping) and policy.get("enabled") is True:
            findings.append(Finding(
                "sidecar-restart", "error", name,
                "the sidecar has restartPolicy.enabled true: a run-once container that ECS restarts after it "
                "exits never settles, and a failure is retried instead of reported",
                "remove restartPolicy from the sidecar, or set \"enabled\": false",
            ))
    return findings


def check_app_dependency(task: Task) -> list[Finding]:
    findings = []
    found = roles(task)
    for sidecar, sidecar_container in found.sidecars:
        refresh = is_refresh_mode(sidecar_container)
        expected = HEALTHY if refresh else SUCCESS
        for app, container in found.apps:
            condition = depends_on(container).get(sidecar)
            if condition == expected:
                continue
            findings.append(Finding(
                "app-dependency", "error", app, _dependency_problem(sidecar, condition, refresh),
                _dependency_fix(sidecar, refresh),
            ))
    return findings


def _dependency_problem(sidecar: str, condition: object, refresh: bool) -> str:
    if condition is None:
        return f"the app does not depend on {sidecar!r}, so it may start before the secrets are written"
    if refresh:
        reason = _WRONG_FOR_REFRESH.get(
            str(condition), "only HEALTHY waits for the first set of secrets from a refresh-mode sidecar"
        )
        return (
            f"the app depends on {sidecar!r}, which runs in refresh mode (SIDECAR_REFRESH_INTERVAL is set), "
            f"with the condition {condition!r}: {reason}"
        )
    reason = _WRONG_FOR_RUN_ONCE.get(str(condition), "only SUCCESS waits for the secrets to be written")
    return f"the app depends on {sidecar!r} with the condition {condition!r}: {reason}"


def _dependency_fix(sidecar: str, refresh: bool) -> str:
    if refresh:
        return (
            f"add {{\"containerName\": \"{sidecar}\", \"condition\": \"HEALTHY\"}} to its dependsOn, with a "
            f"healthCheck on {sidecar!r} that runs [\"CMD\", \"secrets-sidecar\", \"healthcheck\"]"
        )
    return f"add {{\"containerName\": \"{sidecar}\", \"condition\": \"SUCCESS\"}} to its dependsOn"


def check_secrets_volume(task: Task) -> list[Finding]:
    findings: list[Finding] = []
    found = roles(task)
    defined = volume_names(task)
    for sidecar, container in found.sidecars:
        directory = output_dir(container)
        mounts = [m for m in mount_points(container) if same_path(m.get("containerPath"), directory)]
        if not mounts:
            findings.append(Finding(
                "volume-unmounted", "error", sidecar,
                f"the sidecar mounts no volume at its output directory {directory}: the files would stay "
                "inside the sidecar (whose read-only root filesystem refuses them)",
                f"add a mountPoint with containerPath {directory} and a task volume as sourceVolume",
            ))
            continue
        volume = mounts[-1].get("sourceVolume")
        if mounts[-1].get("readOnly") is True:
            findings.append(Finding(
                "volume-readonly-in-sidecar", "error", sidecar,
                f"the sidecar mounts its output directory {directory} read-only, so it cannot write the secrets",
                "remove \"readOnly\": true from the sidecar's mountPoint (keep it on the app's)",
            ))
        if not isinstance(volume, str) or volume not in defined:
            what = f"the volume {volume!r}, which the task's volumes do not define" if isinstance(volume, str) \
                else "no sourceVolume"
            findings.append(Finding(
                "volume-missing", "error", sidecar,
                f"the sidecar's mountPoint at its output directory {directory} names {what}",
                f"add {{\"name\": \"{volume if isinstance(volume, str) else 'secrets'}\"}} to volumes (Fargate), "
                "or a tmpfs dockerVolumeConfiguration (EC2), and name it as the mountPoint's sourceVolume",
            ))
        for app, app_container in found.apps:
            findings += _app_mount(app, app_container, sidecar, volume, directory)
    return findings


def _app_mount(app: str, container: Container, sidecar: str, volume: object, directory: str) -> list[Finding]:
    mounts = [m for m in mount_points(container) if m.get("sourceVolume") == volume]
    if not mounts:
        return [Finding(
            "volume-unmounted", "error", app,
            f"the app does not mount the volume {volume!r} that {sidecar!r} writes its secrets into",
            f"add {{\"sourceVolume\": \"{volume}\", \"containerPath\": \"{directory}\", \"readOnly\": true}} "
            "to its mountPoints",
        )]
    return [
        Finding(
            "volume-writable-in-app", "error", app,
            f"the app mounts the secrets volume {volume!r} writable: a compromised app could replace the "
            "secrets the next reader trusts",
            "set \"readOnly\": true on that mountPoint",
        )
        for mount in mounts
        if mount.get("readOnly") is not True
    ]


def check_sidecar_user(task: Task) -> list[Finding]:
    findings = []
    for name, container in roles(task).sidecars:
        user = container.get("user")
        who = user.split(":", 1)[0] if isinstance(user, str) else None
        if not who or who in ROOT_USERS:
            state = "has no \"user\"" if not who else f"runs as {user!r}"
            findings.append(Finding(
                "sidecar-root", "warning", name,
                f"the sidecar {state}, so it runs as root: a flaw in it would hold root in the task",
                "set \"user\" to the image's non-root user, e.g. \"10001\", or \"10001:<the app's gid>\" "
                "(docs/ownership.md)",
            ))
    return findings


def check_sidecar_readonly_root(task: Task) -> list[Finding]:
    return [
        Finding(
            "sidecar-writable-root", "warning", name,
            "the sidecar's root filesystem is writable; it only ever needs to write into the secrets volume",
            "set \"readonlyRootFilesystem\": true on the sidecar",
        )
        for name, container in roles(task).sidecars
        if container.get("readonlyRootFilesystem") is not True
    ]


def check_task_role(task: Task) -> list[Finding]:
    role = task.get("taskRoleArn")
    if isinstance(role, str) and role.strip():
        return []
    return [Finding(
        "task-role", "error", None,
        "the task has no taskRoleArn: the sidecar calls AWS itself and has no credentials without a task role "
        "(the execution role is only for the ECS agent)",
        "set taskRoleArn to a role that ecs-tasks.amazonaws.com can assume, allowed to read the secrets "
        "(see task-definitions/iam/task-role-policy.json)",
    )]
