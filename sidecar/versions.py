"""A version never goes back: whether a refresh check's answer may replace the value in place.

AWS documents every Secrets Manager operation as eventually consistent, so a check can answer with a version
that an earlier answer has already replaced (a read from a lagging copy). Such an answer is *older*: a version
this process held and replaced, or one AWS says was created before the version in place. An older answer is
not applied on its own word: it is applied only when the next check answers it again (the stage was moved
back on purpose, e.g. ``UpdateSecretVersionStage`` rolling back a bad rotation), one interval later. A stale
read lasts far less than an interval, so it never rolls the files back, and a deliberate rollback still
arrives. Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final, Generic, Literal, TypeVar

from sidecar.outcomes import Checked, Fetched

MAX_SUPERSEDED_KEPT: Final = 16  # versions remembered per reference; rotations past that are years apart

Verdict = Literal["same", "newer", "older-once", "older-confirmed"]
K = TypeVar("K")


@dataclass
class _History:
    superseded: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_SUPERSEDED_KEPT))
    doubted: str | None = None  # an older version answered once, applied if the next answer repeats it


class VersionGuard(Generic[K]):
    """Per reference: the versions it held and replaced, and an older answer awaiting confirmation."""

    def __init__(self) -> None:
        self._history: dict[K, _History] = {}

    def verdict(self, key: K, held: Fetched, answered: Checked) -> Verdict:
        """What ``answered`` is to the version ``held``. Remembers an older answer, so that the same answer
        at the next check confirms it; any other answer forgets it."""
        history = self._history.setdefault(key, _History())
        token = answered.token
        if token == held.change_token:
            history.doubted = None
            return "same"
        if not is_older(token, held, answered, history.superseded):
            history.doubted = None
            return "newer"
        if history.doubted == token:
            history.doubted = None
            return "older-confirmed"
        history.doubted = token
        return "older-once"

    def replaced(self, key: K, old: str | None, new: str | None) -> None:
        """``new`` is committed in place of ``old``: ``old`` is now superseded, and ``new`` no longer is."""
        history = self._history.setdefault(key, _History())
        if new is not None and new in history.superseded:
            history.superseded.remove(new)
        if old is not None and old != new:
            history.superseded.append(old)


def is_older(token: str | None, held: Fetched, answered: Checked, superseded: deque[str]) -> bool:
    """A version this process already replaced, or one created before the version in place."""
    if token is not None and token in superseded:
        return True
    now = answered.fetched.created if answered.fetched is not None else None
    return now is not None and held.created is not None and now < held.created
