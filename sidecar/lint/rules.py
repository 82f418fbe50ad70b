"""Rules about how the sidecar is wired into the task: ordering, the shared volume, hardening, the role.

Each rule is a pure function from the parsed task definition to a list of findings. Every rule here is
about a sidecar, so a task without one gets none of them (only ``no-sidecar``, a warning). The containers
the rules hold to the sidecar's terms are its readers: those that mount its secrets volume.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sidecar.lint.finding import Finding
from sidecar.lint.task import (
    Sidecar,
    depends_on,
    is_essential,
    is_refresh_mode,
    mount_points,
    output_dir,
    roles,
    runs_project_image,
    same_path,
    volume_names,
)

Task = Mapping[str, Any]
ROOT_USERS: Final = frozenset({"0", "root"})
SUCCESS: Final = "SUCCESS"
HEALTHY: Final = "HEALTHY"
CONDITIONS: Final = ("START", "COMPLETE", SUCCESS, HEALTHY)
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
        "no-sidecar", "warning", None,
        "no container is recognisable as the secrets sidecar, so no sidecar rule applies and no secrets "
        "will be written by it",
        "if this task should run the sidecar: use the secrets-sidecar image, run the secrets-sidecar program, "
        "or configure it with SIDECAR_* environment variables",
    )]


def check_sidecar_essential(task: Task) -> list[Finding]:
    return [
        Finding(
            "sidecar-essential", "error", sidecar.name,
            "the sidecar is essential (\"essential\" is true or absent, and ECS defaults it to true): ECS "
            "stops the whole task when it exits, and rejects a SUCCESS dependency on an essential container",
            "set \"essential\": false on the sidecar",
        )
        for sidecar in roles(task).sidecars
        if is_essential(sidecar.container) and not is_refresh_mode(sidecar.container)
    ]


def check_sidecar_restart(task: Task) -> list[Finding]:
    findings = []
    for sidecar in roles(task).sidecars:
        policy = sidecar.container.get("restartPolicy")
        if is_refresh_mode(sidecar.container):
            continue  # a long-running sidecar that ECS restarts after a crash keeps the files current
        if isinstance(policy, Mapping) and policy.get("enabled") is True:
            findings.append(Finding(
                "sidecar-restart", "error", sidecar.name,
                "the sidecar has restartPolicy.enabled true: a run-once container that ECS restarts after it "
                "exits never settles, and a failure is retried instead of reported",
                "remove restartPolicy from the sidecar, or set \"enabled\": false",
            ))
    return findings


def check_app_dependency(task: Task) -> list[Finding]:
    findings = []
    for sidecar in roles(task).sidecars:
        refresh = is_refresh_mode(sidecar.container)
        expected = HEALTHY if refresh else SUCCESS
        for reader, container in sidecar.readers:
            condition = depends_on(container).get(sidecar.name)
            if condition == expected:
                continue
            findings.append(Finding(
                "app-dependency", "error", reader, _dependency_problem(sidecar.name, condition, refresh),
                _dependency_fix(sidecar.name, refresh),
            ))
    return findings


def _dependency_problem(sidecar: str, condition: object, refresh: bool) -> str:
    if condition is None:
        return (
            f"the container mounts the secrets volume of {sidecar!r} but does not depend on {sidecar!r}, so it "
            "may start before the secrets are written"
        )
    if refresh:
        reason = _WRONG_FOR_REFRESH.get(
            str(condition), "only HEALTHY waits for the first set of secrets from a refresh-mode sidecar"
        )
        return (
            f"the app depends on {sidecar!r}, which runs in refresh mode (SIDECAR_REFRESH_INTERVAL is set), "
            f"with the condition {_quoted(condition)}: {reason}"
        )
    reason = _WRONG_FOR_RUN_ONCE.get(str(condition), "only SUCCESS waits for the secrets to be written")
    return f"the app depends on {sidecar!r} with the condition {_quoted(condition)}: {reason}"


def _quoted(condition: object) -> str:
    return repr(condition) if condition in CONDITIONS else "that is not an ECS condition"


def _dependency_fix(sidecar: str, refresh: bool) -> str:
    if refresh:
        return (
            f"add {{\"containerName\": \"{sidecar}\", \"condition\": \"HEALTHY\"}} to its dependsOn, with a "
            f"healthCheck on {sidecar!r} that runs [\"CMD\", \"secrets-sidecar\", \"healthcheck\"]"
        )
    return f"add {{\"containerName\": \"{sidecar}\", \"condition\": \"SUCCESS\"}} to its dependsOn"


def check_secrets_volume(task: Task) -> list[Finding]:
    findings: list[Finding] = []
    defined = volume_names(task)
    for sidecar in roles(task).sidecars:
        directory = output_dir(sidecar.container)
        mounts = [m for m in mount_points(sidecar.container) if same_path(m.get("containerPath"), directory)]
        if not mounts:
            findings.append(Finding(
                "volume-unmounted", "error", sidecar.name,
                f"the sidecar mounts no volume at its output directory {directory}: the files would stay "
                "inside the sidecar (whose read-only root filesystem refuses them)",
                f"add a mountPoint with containerPath {directory} and a task volume as sourceVolume",
            ))
            continue
        volume = mounts[-1].get("sourceVolume")
        if mounts[-1].get("readOnly") is True:
            findings.append(Finding(
                "volume-readonly-in-sidecar", "error", sidecar.name,
                f"the sidecar mounts its output directory {directory} read-only, so it cannot write the secrets",
                "remove \"readOnly\": true from the sidecar's mountPoint (keep it on the app's)",
            ))
        if not isinstance(volume, str) or volume not in defined:
            what = f"the volume {volume!r}, which the task's volumes do not define" if isinstance(volume, str) \
                else "no sourceVolume"
            findings.append(Finding(
                "volume-missing", "error", sidecar.name,
                f"the sidecar's mountPoint at its output directory {directory} names {what}",
                f"add {{\"name\": \"{volume if isinstance(volume, str) else 'secrets'}\"}} to volumes",
            ))
        if isinstance(volume, str):
            findings += _reader_findings(sidecar, directory)
    return findings


def _reader_findings(sidecar: Sidecar, directory: str) -> list[Finding]:
    if not sidecar.readers:
        return [Finding(
            "no-reader", "error", sidecar.name,
            f"no other container mounts the sidecar's secrets volume {sidecar.volume!r}, so the secrets it "
            "writes reach nobody",
            f"add {{\"sourceVolume\": \"{sidecar.volume}\", \"containerPath\": \"{directory}\", "
            "\"readOnly\": true} to the mountPoints of the container that needs the secrets, and make it depend "
            f"on {sidecar.name!r}",
        )]
    return [
        Finding(
            "volume-writable-in-app", "error", reader,
            f"the container mounts the secrets volume of {sidecar.name!r} writable: a compromised container "
            "could replace the secrets the next reader trusts",
            "set \"readOnly\": true on that mountPoint (or volumesFrom entry)",
        )
        for reader, container in sidecar.readers
        for mount in sidecar.reader_mounts(container)
        if mount.get("readOnly") is not True
    ]


def check_sidecar_user(task: Task) -> list[Finding]:
    findings = []
    for sidecar in roles(task).sidecars:
        user = sidecar.container.get("user")
        who = user.split(":", 1)[0] if isinstance(user, str) else None
        if not who and runs_project_image(sidecar.container):
            continue  # the image's own USER is 10001:10001
        if not who or who in ROOT_USERS:
            state = (
                "has no \"user\", so it runs as its image's user, which may be root" if not who
                else f"runs as {user!r}, so it runs as root"
            )
            findings.append(Finding(
                "sidecar-root", "warning", sidecar.name,
                f"the sidecar {state}: a flaw in it would hold root in the task",
                "set \"user\" to the image's non-root user, e.g. \"10001\", or \"10001:<the app's gid>\" "
                "(docs/ownership.md)",
            ))
    return findings


def check_sidecar_readonly_root(task: Task) -> list[Finding]:
    return [
        Finding(
            "sidecar-writable-root", "warning", sidecar.name,
            "the sidecar's root filesystem is writable; it only ever needs to write into the secrets volume",
            "set \"readonlyRootFilesystem\": true on the sidecar",
        )
        for sidecar in roles(task).sidecars
        if sidecar.container.get("readonlyRootFilesystem") is not True
    ]


def check_task_role(task: Task) -> list[Finding]:
    role = task.get("taskRoleArn")
    if not roles(task).sidecars or (isinstance(role, str) and role.strip()):
        return []
    return [Finding(
        "task-role", "error", None,
        "the task has no taskRoleArn: the sidecar calls AWS itself and has no credentials without a task role "
        "(the execution role is only for the ECS agent)",
        "set taskRoleArn to a role that ecs-tasks.amazonaws.com can assume, allowed to read the secrets "
        "(see task-definitions/iam/task-role-policy.json)",
    )]
