"""SIGTERM and SIGINT set a flag; the run checks it at its own points and stops there.

Nothing is raised into whatever the main thread happens to be doing: a commit that has begun finishes (the
directory always holds one whole set), no new step starts after the signal (no fetch, no commit, no notify
command), and every wait of the run wakes up at once (``Stop.wait``), or within ``POLL_SECONDS`` where it
waits on something else.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Final

from sidecar.errors import Interrupted

POLL_SECONDS: Final = 0.1  # how often a wait on threads or a child process also looks at the flag
SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)


class Stop:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum: int | None = None

    def install(self) -> None:
        """Handle SIGTERM and SIGINT from now on (call from the main thread, before the first fetch).

        The Python-level handler only stores the number: taking a lock there (``Event.set``, starting a thread)
        could deadlock on a lock the interrupted main thread holds. The interpreter also writes the signal's
        number to a wakeup pipe from its C-level handler; a watcher thread reading it sets the event, which
        wakes every ``wait``."""
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        for signum in SIGNALS:
            signal.signal(signum, self._on_signal)
        threading.Thread(target=self._watch, args=(read_end,), name="stop-watcher", daemon=True).start()

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.signum is None:
            self.signum = signum

    def _watch(self, read_end: int) -> None:
        while not (received := os.read(read_end, 64)):
            pass
        if self.signum is None:
            self.signum = received[0]
        self._event.set()

    def is_set(self) -> bool:
        return self.signum is not None or self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking at once on a signal; True when a stop was asked for."""
        return self.is_set() or self._event.wait(seconds)

    def check(self) -> None:
        """Raise ``Interrupted`` if a signal arrived: called only where the run may stop without half a set."""
        if self.is_set():
            raise Interrupted(self.signal_name, self.signum or signal.SIGTERM)

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "a signal"
