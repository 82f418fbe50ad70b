"""The stop flag: a signal wakes every wait at once and is raised only where the run checks it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from sidecar.errors import Interrupted
from sidecar.stopping import Stop

# In a child process: the handlers replace the interpreter's, which pytest's own process must keep.
CHILD = textwrap.dedent("""
    import os, signal, threading, time
    from sidecar.stopping import Stop
    from sidecar.errors import Interrupted

    stop = Stop()
    stop.install()
    threading.Timer(0.3, os.kill, (os.getpid(), signal.{name})).start()
    started = time.monotonic()
    woke = stop.wait(30)
    waited = time.monotonic() - started
    try:
        stop.check()
    except Interrupted as exc:
        print(woke, round(waited, 1) < 2, exc.exit_code, exc.message)
""")


@pytest.mark.parametrize(("name", "code"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_wakes_the_wait_at_once_and_check_raises(name: str, code: int) -> None:
    completed = subprocess.run([sys.executable, "-c", CHILD.format(name=name)], capture_output=True, text=True,
                               timeout=30, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == (f"True True {code} {name} arrived before the new set was committed; the previous "
                                "contents are untouched\n")


def test_a_stop_never_installed_never_fires() -> None:
    stop = Stop()
    assert not stop.wait(0.01)
    stop.check()  # no signal: nothing raised
    assert not stop.is_set()


def test_interrupted_is_exit_128_plus_the_signal() -> None:
    assert Interrupted("SIGTERM", 15).exit_code == 143
