"""Refresh mode (SIDECAR_REFRESH_INTERVAL): a long-running sidecar, a health check, a HEALTHY dependency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sidecar.lint import lint

from .tasks import container, good_task, hits, refresh_task, rules_hit, set_env, unset_env

Task = dict[str, Any]
HEALTH_CHECK = {"command": ["CMD", "secrets-sidecar", "healthcheck"], "interval": 30, "timeout": 5, "retries": 3}


def run_once(task: Task) -> None:
    """The refresh example turned back into a run-once sidecar, notify settings and all removed."""
    for variable in ("SIDECAR_REFRESH_INTERVAL", "SIDECAR_NOTIFY_SIGNAL", "SIDECAR_NOTIFY_PROCESS"):
        unset_env(task, "secrets-sidecar", variable)


def test_the_refresh_example_has_no_finding() -> None:
    assert lint(refresh_task()) == []


# --- refresh mode is recognised by the environment or the command ---------------------------------------


@pytest.mark.parametrize(
    "command",
    [["run", "--refresh-interval", "300"], ["--refresh-interval=300"], ["secrets-sidecar", "--refresh-interval", "60"]],
)
def test_a_refresh_interval_in_the_command_is_refresh_mode(command: list[str]) -> None:
    task = refresh_task()
    unset_env(task, "secrets-sidecar", "SIDECAR_REFRESH_INTERVAL")
    container(task, "secrets-sidecar")["command"] = command
    assert lint(task) == []


# --- sidecar-essential no longer applies; refresh-essential ---------------------------------------------


def test_an_essential_refresh_sidecar_is_not_a_sidecar_essential_error() -> None:
    task = refresh_task()
    assert container(task, "secrets-sidecar")["essential"] is True
    assert hits(task, "sidecar-essential") == []
    run_once(task)
    assert [(f.severity, f.container) for f in hits(task, "sidecar-essential")] == [("error", "secrets-sidecar")]


def test_a_non_essential_refresh_sidecar_is_a_warning() -> None:
    task = refresh_task()
    container(task, "secrets-sidecar")["essential"] = False
    (finding,) = hits(task, "refresh-essential")
    assert (finding.severity, finding.container) == ("warning", "secrets-sidecar")
    assert "without the next rotation" in finding.message
    assert '"essential": true' in finding.fix
    assert hits(task, "sidecar-essential") == []


def test_a_non_essential_run_once_sidecar_is_not_a_refresh_essential_warning() -> None:
    assert hits(good_task(), "refresh-essential") == []


def test_a_restart_policy_is_allowed_on_a_refresh_sidecar() -> None:
    task = refresh_task()
    container(task, "secrets-sidecar")["restartPolicy"] = {"enabled": True}
    assert hits(task, "sidecar-restart") == []


# --- app-dependency in refresh mode ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("depends_on", "says"),
    [
        (None, "does not depend on 'secrets-sidecar'"),
        ([{"containerName": "secrets-sidecar", "condition": "SUCCESS"}],
         "SUCCESS waits for an exit that a refresh-mode sidecar never makes"),
        ([{"containerName": "secrets-sidecar", "condition": "COMPLETE"}], "COMPLETE waits for an exit"),
        ([{"containerName": "secrets-sidecar", "condition": "START"}], "before the first set of secrets is written"),
    ],
)
def test_an_app_must_wait_for_a_refresh_sidecar_with_healthy(
    depends_on: list[dict[str, str]] | None, says: str
) -> None:
    task = refresh_task()
    if depends_on is None:
        container(task, "app").pop("dependsOn")
    else:
        container(task, "app")["dependsOn"] = depends_on
    (finding,) = hits(task, "app-dependency")
    assert (finding.severity, finding.container) == ("error", "app")
    assert says in finding.message
    assert '{"containerName": "secrets-sidecar", "condition": "HEALTHY"}' in finding.fix
    assert "secrets-sidecar" in finding.fix and "healthcheck" in finding.fix


def test_a_run_once_sidecar_with_a_healthy_dependency_is_an_error() -> None:
    task = refresh_task()
    run_once(task)
    container(task, "secrets-sidecar")["essential"] = False
    (finding,) = hits(task, "app-dependency")
    assert (finding.severity, finding.container) == ("error", "app")
    assert "HEALTHY never becomes true for a run-once sidecar" in finding.message
    assert "SIDECAR_REFRESH_INTERVAL" in finding.message
    assert '"condition": "SUCCESS"' in finding.fix
    container(task, "app")["dependsOn"][0]["condition"] = "SUCCESS"
    assert hits(task, "app-dependency") == []


# --- sidecar-healthcheck --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "remove", [lambda c: c.pop("healthCheck"), lambda c: c.update(healthCheck={}), lambda c: c.update(healthCheck=[])]
)
def test_a_refresh_sidecar_without_a_health_check_is_an_error(remove: Callable[[dict[str, Any]], object]) -> None:
    task = refresh_task()
    remove(container(task, "secrets-sidecar"))
    findings = hits(task, "sidecar-healthcheck")
    assert [(f.severity, f.container) for f in findings] == [("error", "secrets-sidecar")]
    assert "HEALTHY condition the app must wait on never becomes true" in findings[0].message
    assert '["CMD", "secrets-sidecar", "healthcheck"]' in findings[0].fix


@pytest.mark.parametrize(
    "command",
    [
        ["CMD", "healthcheck"],  # the image's entrypoint does not apply to a health check
        ["CMD-SHELL", "test -f /run/secrets/..version"],
        ["CMD", "secrets-sidecar", "check"],
    ],
)
def test_a_health_check_that_does_not_run_the_sidecars_is_an_error(command: list[str]) -> None:
    task = refresh_task()
    container(task, "secrets-sidecar")["healthCheck"]["command"] = command
    (finding,) = hits(task, "sidecar-healthcheck")
    assert finding.severity == "error"
    assert "does not run `secrets-sidecar healthcheck`" in finding.message


@pytest.mark.parametrize(
    "command",
    [
        ["CMD", "/opt/sidecar/bin/secrets-sidecar", "healthcheck"],
        ["CMD-SHELL", "secrets-sidecar healthcheck || exit 1"],
    ],
)
def test_health_checks_that_run_the_sidecars_pass(command: list[str]) -> None:
    task = refresh_task()
    container(task, "secrets-sidecar")["healthCheck"]["command"] = command
    assert hits(task, "sidecar-healthcheck") == []


def test_a_run_once_sidecar_needs_no_health_check() -> None:
    task = good_task()
    assert "healthCheck" not in container(task, "secrets-sidecar")
    assert hits(task, "sidecar-healthcheck") == []


# --- notify-pid-mode, notify-uid ------------------------------------------------------------------------


@pytest.mark.parametrize(("pid_mode", "says"), [(None, "no \"pidMode\": \"task\""), ("host", "in other tasks too")])
def test_a_signal_without_the_tasks_pid_namespace_is_a_warning(pid_mode: str | None, says: str) -> None:
    task = refresh_task()
    task.pop("pidMode")
    if pid_mode:
        task["pidMode"] = pid_mode
    (finding,) = hits(task, "notify-pid-mode")
    assert (finding.severity, finding.container) == ("warning", "secrets-sidecar")
    assert says in finding.message
    assert '"pidMode": "task"' in finding.fix


def test_without_a_signal_no_pid_mode_is_needed() -> None:
    task = refresh_task()
    task.pop("pidMode")
    unset_env(task, "secrets-sidecar", "SIDECAR_NOTIFY_SIGNAL")
    unset_env(task, "secrets-sidecar", "SIDECAR_NOTIFY_PROCESS")
    assert lint(task) == []


def test_a_signal_to_an_app_of_another_uid_is_a_warning() -> None:
    task = refresh_task()
    container(task, "app")["user"] = "1000:1000"
    (finding,) = hits(task, "notify-uid")
    assert (finding.severity, finding.container) == ("warning", "secrets-sidecar")
    assert "runs as uid 10001 and no app does ('app' as 1000)" in finding.message
    assert "run the app as uid 10001" in finding.fix


@pytest.mark.parametrize(
    "arrange",
    [
        lambda t: container(t, "app").pop("user"),  # the app's image decides: not known here
        lambda t: container(t, "app").update(user="www-data"),
        lambda t: container(t, "secrets-sidecar").update(user="0:1000"),  # root may signal anyone (and is warned about)
        lambda t: container(t, "app").update(user="10001"),
    ],
)
def test_a_signal_is_not_flagged_when_it_can_work_or_the_uids_are_unknown(arrange: Callable[[Task], object]) -> None:
    task = refresh_task()
    container(task, "app")["user"] = "1000:1000"
    arrange(task)
    assert hits(task, "notify-uid") == []


def test_a_refresh_sidecar_passes_the_other_rules_unchanged() -> None:
    task = refresh_task()
    set_env(task, "secrets-sidecar", "SIDECAR_REFRESH_INTERVAL", "0")
    assert ("sidecar-config", "error", "secrets-sidecar") in rules_hit(task)
