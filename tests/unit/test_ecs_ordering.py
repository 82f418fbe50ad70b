"""The harness's model of the ECS agent's container ordering (tests/ecs/ordering.py), rule by rule."""

from __future__ import annotations

from tests.ecs.ordering import Spec, State, decide, invalid


def spec(name: str, *depends: tuple[str, str], essential: bool = True, timeout: float | None = None,
         health: bool = False) -> Spec:
    return Spec(name, essential, tuple(depends), timeout, health)


SIDECAR = spec("sidecar", essential=False, timeout=10)
APP = spec("app", ("sidecar", "SUCCESS"))


def test_a_container_without_dependencies_starts_at_once() -> None:
    assert decide([SIDECAR, APP], {"sidecar": State(), "app": State()}, 0).start == ("sidecar",)


def test_success_waits_for_exit_code_zero() -> None:
    running = {"sidecar": State("running", started_at=0), "app": State()}
    assert decide([SIDECAR, APP], running, 1).start == ()
    done = {"sidecar": State("exited", 0, started_at=0), "app": State()}
    assert decide([SIDECAR, APP], done, 1).start == ("app",)


def test_success_on_a_failed_dependency_is_terminal_and_then_the_essential_app_stops_the_task() -> None:
    failed = {"sidecar": State("exited", 3, started_at=0), "app": State()}
    decision = decide([SIDECAR, APP], failed, 1)
    assert decision.never_start == (("app", "dependency sidecar did not exit successfully (exit code 3)"),)
    after = decide([SIDECAR, APP], {**failed, "app": State("never", 143)}, 1)
    assert after.stop_task == "essential container app never started"


def test_complete_accepts_any_exit_code() -> None:
    app = spec("app", ("sidecar", "COMPLETE"))
    assert decide([SIDECAR, app], {"sidecar": State("exited", 3, started_at=0), "app": State()}, 1).start == ("app",)


def test_start_needs_the_dependency_running_or_stopped() -> None:
    app = spec("app", ("sidecar", "START"))
    assert decide([SIDECAR, app], {"sidecar": State("pending"), "app": State()}, 1).start == ("sidecar",)
    assert decide([SIDECAR, app], {"sidecar": State("running", started_at=0), "app": State()}, 1).start == ("app",)
    assert decide([SIDECAR, app], {"sidecar": State("exited", 1, started_at=0), "app": State()}, 1).start == ("app",)


def test_healthy_needs_the_docker_health_check_to_report_healthy() -> None:
    sidecar = spec("sidecar", timeout=120, health=True)
    app = spec("app", ("sidecar", "HEALTHY"))
    starting = {"sidecar": State("running", started_at=0), "app": State()}
    assert decide([sidecar, app], starting, 5).start == ()
    healthy = {"sidecar": State("running", started_at=0, healthy=True), "app": State()}
    assert decide([sidecar, app], healthy, 5).start == ("app",)


def test_the_dependencys_own_start_timeout_ends_the_wait() -> None:
    running = {"sidecar": State("running", started_at=100), "app": State()}
    assert decide([SIDECAR, APP], running, 110).never_start == ()
    (never,) = decide([SIDECAR, APP], running, 110.5).never_start
    assert never[0] == "app" and "sidecar has timed out" in never[1]


def test_a_start_timeout_on_the_waiting_container_bounds_nothing() -> None:
    sidecar = spec("sidecar", essential=False)
    app = spec("app", ("sidecar", "SUCCESS"), timeout=10)
    running = {"sidecar": State("running", started_at=0), "app": State()}
    assert decide([sidecar, app], running, 1000) == decide([sidecar, app], running, 1)
    assert decide([sidecar, app], running, 1000).never_start == ()


def test_start_is_never_timed_and_a_stopped_dependency_never_times_out() -> None:
    app = spec("app", ("sidecar", "START"))
    assert decide([SIDECAR, app], {"sidecar": State("running", started_at=0), "app": State()}, 99).start == ("app",)
    done = {"sidecar": State("exited", 0, started_at=0), "app": State()}
    assert decide([SIDECAR, APP], done, 99).start == ("app",)


def test_a_dependency_that_will_never_start_is_terminal() -> None:
    first = spec("first", ("sidecar", "SUCCESS"), essential=False)
    second = spec("second", ("first", "START"))
    states = {"sidecar": State("exited", 0, started_at=0), "first": State("never", 143), "second": State()}
    assert decide([SIDECAR, first, second], states, 1).never_start == (
        ("second", "dependency first will never start"),)


def test_an_essential_container_that_exits_stops_the_task() -> None:
    states = {"sidecar": State("exited", 0, started_at=0), "app": State("exited", 0, started_at=1)}
    assert decide([SIDECAR, APP], states, 2).stop_task == "essential container app exited with code 0"
    non_essential_exit = {"sidecar": State("exited", 0, started_at=0), "app": State("running", started_at=1)}
    assert decide([SIDECAR, APP], non_essential_exit, 2).stop_task is None


def test_tasks_ecs_would_refuse() -> None:
    assert invalid([SIDECAR, APP]) == []
    essential = spec("sidecar", essential=True)
    assert "RegisterTaskDefinition rejects it" in invalid([essential, APP])[0]
    no_health = spec("app", ("sidecar", "HEALTHY"))
    assert invalid([SIDECAR, no_health]) == ["app waits for sidecar to be HEALTHY, but sidecar has no healthCheck"]
    assert invalid([spec("a", ("b", "START")), spec("b", ("a", "START"))]) == ["the dependsOn graph has a cycle"]
    assert invalid([spec("a", ("nope", "START"))]) == ["a depends on nope, which is not a container of the task"]
