"""Tell the app that a new set of files was committed: a signal to a named process, or a command.

Signalling another container's process needs the task's PID namespace (``pidMode: task``) and, for a process
of another user, root or the same uid. Failures to notify are logged, never fatal: the files are already
committed, and an app can always watch ``..version``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

from sidecar.stopping import POLL_SECONDS, Stop

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

NOTIFY_COMMAND_TIMEOUT_SECONDS: Final = 30


def find_processes(name: str, proc: Path = Path("/proc")) -> list[int]:
    """Pids whose command name (``comm``) or argv[0] basename is ``name``, except this process."""
    return sorted(pid for pid, names in _processes(proc) if name in names and pid != os.getpid())


def _processes(proc: Path) -> Iterator[tuple[int, set[str]]]:
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
        except OSError:
            continue  # gone, or not ours to read
        yield int(entry.name), {comm, os.path.basename(argv0)}


def notify(
    log: FilteringBoundLogger, *, signal: int | None, process: str | None, command: tuple[str, ...],
    output_dir: str, generation: int, stop: Stop,
) -> None:
    if signal is not None and process is not None:
        pids = find_processes(process)
        if not pids:
            log.warning("notify_failed", process=process,
                        reason="no such process visible: the task needs pidMode task to signal another container")
        for pid in pids:
            try:
                os.kill(pid, signal)
                log.info("notified", process=process, pid=pid, signal=signal)
            except OSError as exc:
                log.warning("notify_failed", process=process, pid=pid, reason=exc.strerror)
    if command:
        _run_command(log, command, output_dir, generation, stop)


def _run_command(
    log: FilteringBoundLogger, command: tuple[str, ...], output_dir: str, generation: int, stop: Stop
) -> None:
    # The command gets no inherited environment: only where the files are and which set it is.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SIDECAR_OUTPUT_DIR": output_dir,
           "SIDECAR_GENERATION": str(generation)}
    try:
        process = subprocess.Popen(list(command), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in an argument
        log.warning("notify_failed", command=command[0], reason=type(exc).__name__)
        return
    deadline = time.monotonic() + NOTIFY_COMMAND_TIMEOUT_SECONDS
    while (code := process.poll()) is None:
        late = time.monotonic() >= deadline
        if late or stop.is_set():  # SIGTERM: the sidecar exits within seconds, not after the command's timeout
            process.kill()
            process.wait()
            reason = "TimeoutExpired" if late else f"{stop.signal_name} arrived: the command was stopped"
            log.warning("notify_failed", command=command[0], reason=reason)
            return
        stop.wait(POLL_SECONDS)
    event = log.info if code == 0 else log.warning
    event("notified" if code == 0 else "notify_failed", command=command[0], exit_code=code)
