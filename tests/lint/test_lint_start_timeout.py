"""``start-timeout-*``: ECS reads startTimeout from the container waited on, so it belongs on the sidecar."""

from __future__ import annotations

import pytest

from sidecar.lint.start_timeout import MARGIN_SECONDS, required_start_timeout

from .tasks import container, good_task, hits, refresh_task, rules_hit, set_env, unset_env

SIDECAR = "secrets-sidecar"


def test_the_examples_bound_the_wait_on_the_sidecar_and_not_on_the_app() -> None:
    for task in (good_task(), refresh_task()):
        assert "startTimeout" not in container(task, "app")
        assert container(task, SIDECAR)["startTimeout"] >= required_start_timeout(container(task, SIDECAR))  # type: ignore[operator]


def test_a_run_once_sidecar_without_start_timeout_is_a_warning() -> None:
    task = good_task()
    container(task, SIDECAR).pop("startTimeout")
    assert rules_hit(task) == {("start-timeout-missing", "warning", SIDECAR)}
    (finding,) = hits(task, "start-timeout-missing")
    # SIDECAR_TIMEOUT is 30 in the example: 30 + the margin.
    assert f'"startTimeout": {30 + MARGIN_SECONDS}' in finding.fix


def test_a_start_timeout_only_on_the_app_is_a_warning_that_says_where_it_belongs() -> None:
    task = good_task()
    container(task, "app")["startTimeout"] = container(task, SIDECAR).pop("startTimeout")
    assert rules_hit(task) == {("start-timeout-on-app", "warning", "app")}
    (finding,) = hits(task, "start-timeout-on-app")
    assert "ECS reads it from the container being waited on ('secrets-sidecar')" in finding.message
    assert "on 'secrets-sidecar'" in finding.fix


def test_a_start_timeout_on_both_is_not_reported() -> None:
    task = good_task()
    container(task, "app")["startTimeout"] = 30
    assert hits(task, "start-timeout-on-app") == []


@pytest.mark.parametrize(
    ("sidecar_timeout", "start_timeout", "short"),
    [
        ("30", 40, False),  # exactly the deadline plus the margin
        ("30", 39, True),
        (None, 60, True),  # SIDECAR_TIMEOUT defaults to 60
        (None, 70, False),
        ("12.5", 23, False),  # a fractional deadline rounds the need up: 22.5 -> 23 is enough, 22 is not
        ("12.5", 22, True),
    ],
)
def test_a_sidecar_start_timeout_that_ends_before_its_deadline_is_an_error(
    sidecar_timeout: str | None, start_timeout: int, short: bool
) -> None:
    task = good_task()
    if sidecar_timeout is None:
        unset_env(task, SIDECAR, "SIDECAR_TIMEOUT")
    else:
        set_env(task, SIDECAR, "SIDECAR_TIMEOUT", sidecar_timeout)
    container(task, SIDECAR)["startTimeout"] = start_timeout
    findings = hits(task, "start-timeout-short")
    assert [(f.severity, f.container) for f in findings] == ([("error", SIDECAR)] if short else [])


def test_the_deadline_in_the_command_wins_over_the_environment() -> None:
    task = good_task()
    container(task, SIDECAR)["command"] = ["run", "--timeout", "115"]
    (finding,) = hits(task, "start-timeout-short")
    assert "SIDECAR_TIMEOUT 115 s" in finding.message
    # Fargate caps startTimeout at 120 s: a 115 s deadline plus the margin cannot fit, so the fix is a shorter deadline.
    assert finding.fix.startswith("lower SIDECAR_TIMEOUT")


def test_in_refresh_mode_the_first_health_check_counts_too() -> None:
    task = refresh_task()
    sidecar = container(task, SIDECAR)
    # 30 s deadline + 30 s interval + 5 s check timeout + the margin
    assert required_start_timeout(sidecar) == 30 + 30 + 5 + MARGIN_SECONDS
    sidecar["startTimeout"] = 60  # enough for run-once, not for the first health check
    assert rules_hit(task) == {("start-timeout-short", "error", SIDECAR)}
    sidecar.pop("startTimeout")
    assert rules_hit(task) == set()  # a refresh-mode sidecar without one is not required to have it


def test_an_unparsable_deadline_is_left_to_sidecar_config() -> None:
    task = good_task()
    set_env(task, SIDECAR, "SIDECAR_TIMEOUT", "soon")
    assert {f.rule for f in hits(task, "start-timeout-short")} == set()
    assert ("sidecar-config", "error", SIDECAR) in rules_hit(task)
