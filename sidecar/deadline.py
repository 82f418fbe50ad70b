"""The run's one overall deadline, and the clock and sleep it is measured with, injected so tests need no real time."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]  # seconds, monotonic
Sleep = Callable[[float], None]


class Deadline:
    def __init__(self, seconds: float, clock: Clock = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - self.clock())
