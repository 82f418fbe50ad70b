"""Rules over all entries together: names that collide, names the env file cannot hold, an env file that
would widen an entry's access, and the warnings a valid configuration still deserves. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from sidecar.access import Access, env_file_problem, world_readable_warning
from sidecar.errors import ConfigError
from sidecar.names import collision_problems, is_env_name
from sidecar.settings.model import ECS_MAX_START_TIMEOUT_SECONDS, Entry


def check_names(entries: Sequence[Entry], env_file: str | None) -> None:
    names = [entry.name for entry in entries]
    if env_file:
        names.append(env_file)
    for problem in collision_problems(names, directories=[e.name for e in entries if e.is_directory]):
        raise ConfigError(f"duplicate names: {problem}")
    if env_file:
        for entry in entries:
            if not is_env_name(entry.name):
                raise ConfigError(
                    f"{entry.name!r} is not a valid environment variable name, which the env file "
                    f"{env_file!r} needs (letters, digits and _, not starting with a digit)"
                )


def world_readable_warnings(entries: Sequence[Entry]) -> list[str]:
    return [f"{e.name!r} will be readable by every user (mode {e.mode:04o})" for e in entries if e.mode & 0o004]


def check_env_file_access(entries: Sequence[Entry], env_file: str | None, env: Access) -> list[str]:
    """The env file gets the global mode and owner; it must not let anyone read an entry its own file keeps
    from them. Refused rather than narrowed: a narrowed env file would fail the app at run time instead."""
    if not env_file:
        return []
    problem = env_file_problem(env_file, env, [(e.name, Access(e.mode, e.uid, e.gid)) for e in entries])
    if problem:
        raise ConfigError(problem)
    warning = world_readable_warning(f"the env file {env_file!r}", env)
    return [warning] if warning else []


def timeout_warnings(timeout: float) -> list[str]:
    if timeout < ECS_MAX_START_TIMEOUT_SECONDS:
        return []
    return [
        f"timeout {timeout:g}s is not below Fargate's largest startTimeout ({ECS_MAX_START_TIMEOUT_SECONDS}s), "
        "which ECS reads from the sidecar's container: on Fargate the task may stop before the sidecar says why"
    ]
