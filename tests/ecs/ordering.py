"""The ECS agent's container ordering, as a pure function of what each container is doing.

Follows agent/engine/dependencygraph/graph.go (aws/amazon-ecs-agent) and the task-level rules next to it:

- ``verifyContainerOrderingStatusResolvable``: for each dependency of a container not yet created, in order:
  the dependency timed out (``hasDependencyTimedOut``: the DEPENDENCY's own ``startTimeout``, counted from the
  dependency's own start, for SUCCESS, COMPLETE and HEALTHY, never START, and only while it has not stopped);
  a SUCCESS dependency stopped with a non-zero code; the dependency will never start. Each is terminal.
  Otherwise ``containerOrderingDependenciesIsResolved``: START once the dependency runs (or has stopped),
  SUCCESS once it stopped with 0, COMPLETE once it stopped with any code, HEALTHY once its Docker health
  check reports healthy.
- ``handleTerminalDependencyError`` (agent/engine/task_manager.go): a terminal error marks the container
  stopped with exit code 143 (CannotStartContainerError); it never starts.
- ``updateTaskDesiredStatusUnsafe`` (agent/api/task/task.go): when an essential container is stopped, the task
  stops, and every container with it.
- ``ValidDependencies`` / ``containerOrderingDependenciesCanResolve``: HEALTHY on a container without a health
  check, or a cycle, can never resolve. RegisterTaskDefinition (AWS API reference, ContainerDependency)
  rejects SUCCESS and COMPLETE on an essential container.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

CONDITIONS: Final = ("START", "COMPLETE", "SUCCESS", "HEALTHY")
TIMED_CONDITIONS: Final = ("SUCCESS", "COMPLETE", "HEALTHY")  # hasDependencyTimedOut ignores START
NEVER_STARTED_EXIT_CODE: Final = 143  # what the agent records for a container a terminal error stopped

Status = Literal["pending", "running", "exited", "never"]


@dataclass(frozen=True)
class Spec:
    """What ordering needs from one container definition."""

    name: str
    essential: bool
    depends_on: tuple[tuple[str, str], ...]
    start_timeout: float | None
    health_check: bool

    @classmethod
    def of(cls, container: Mapping[str, Any]) -> Spec:
        timeout = container.get("startTimeout")
        return cls(
            name=str(container["name"]),
            essential=container.get("essential", True) is not False,
            depends_on=tuple(
                (str(d["containerName"]), str(d["condition"])) for d in container.get("dependsOn") or []
            ),
            start_timeout=float(timeout) if isinstance(timeout, int | float) else None,
            health_check=isinstance(container.get("healthCheck"), Mapping),
        )


@dataclass(frozen=True)
class State:
    """``pending``: created, not started; ``never``: a terminal dependency error, it will not start."""

    status: Status = "pending"
    exit_code: int | None = None
    started_at: float | None = None
    healthy: bool = False


@dataclass(frozen=True)
class Decision:
    start: tuple[str, ...] = ()
    never_start: tuple[tuple[str, str], ...] = ()  # (container, the agent's reason)
    stop_task: str | None = None


def invalid(specs: Sequence[Spec]) -> list[str]:
    """Why ECS would refuse this task (at registration or before starting anything); empty when it would not."""
    by_name = {spec.name: spec for spec in specs}
    problems = []
    for spec in specs:
        for target, condition in spec.depends_on:
            dependency = by_name.get(target)
            if dependency is None:
                problems.append(f"{spec.name} depends on {target}, which is not a container of the task")
            elif condition not in CONDITIONS:
                problems.append(f"{spec.name} depends on {target} with the unknown condition {condition}")
            elif condition in ("SUCCESS", "COMPLETE") and dependency.essential:
                problems.append(f"{spec.name} depends on {target} with {condition}, but {target} is essential: "
                                "RegisterTaskDefinition rejects it")
            elif condition == "HEALTHY" and not dependency.health_check:
                problems.append(f"{spec.name} waits for {target} to be HEALTHY, but {target} has no healthCheck")
    if not problems and _has_cycle(specs):
        problems.append("the dependsOn graph has a cycle")
    return problems


def _has_cycle(specs: Sequence[Spec]) -> bool:
    resolved: set[str] = set()
    pending = list(specs)
    while pending:
        ready = [s for s in pending if all(t in resolved for t, _ in s.depends_on)]
        if not ready:
            return True
        resolved |= {s.name for s in ready}
        pending = [s for s in pending if s.name not in resolved]
    return False


def decide(specs: Sequence[Spec], states: Mapping[str, State], now: float) -> Decision:
    """What the agent does next, given every container's state at ``now`` (seconds, same clock as started_at)."""
    for spec in specs:
        state = states[spec.name]
        if spec.essential and state.status in ("exited", "never"):
            how = "never started" if state.status == "never" else f"exited with code {state.exit_code}"
            return Decision(stop_task=f"essential container {spec.name} {how}")
    by_name = {spec.name: spec for spec in specs}
    start: list[str] = []
    never: list[tuple[str, str]] = []
    for spec in specs:
        if states[spec.name].status != "pending":
            continue
        terminal, blocked = None, False
        for target, condition in spec.depends_on:
            terminal = _terminal(by_name[target], states[target], condition, now)
            if terminal:
                break
            blocked = blocked or not _resolved(by_name[target], states[target], condition)
        if terminal:
            never.append((spec.name, terminal))
        elif not blocked:
            start.append(spec.name)
    return Decision(tuple(start), tuple(never))


def _terminal(dependency: Spec, state: State, condition: str, now: float) -> str | None:
    if state.status != "exited" and _timed_out(dependency, state, condition, now):
        return f"dependency {dependency.name} has timed out ({condition} not reached within its startTimeout)"
    if condition == "SUCCESS" and state.status == "exited" and state.exit_code != 0:
        return f"dependency {dependency.name} did not exit successfully (exit code {state.exit_code})"
    if state.status == "never":
        return f"dependency {dependency.name} will never start"
    return None


def _timed_out(dependency: Spec, state: State, condition: str, now: float) -> bool:
    if state.started_at is None or not dependency.start_timeout or dependency.start_timeout <= 0:
        return False
    return condition in TIMED_CONDITIONS and now > state.started_at + dependency.start_timeout


def _resolved(dependency: Spec, state: State, condition: str) -> bool:
    if condition == "START":
        return state.status in ("running", "exited")
    if condition == "SUCCESS":
        return state.status == "exited" and state.exit_code == 0
    if condition == "COMPLETE":
        return state.status == "exited"
    if condition == "HEALTHY":
        return dependency.health_check and state.status == "running" and state.healthy
    return False
