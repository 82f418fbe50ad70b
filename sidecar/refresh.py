"""Refresh mode: after the first commit, keep the files current after rotation.

Every interval (with jitter, so a fleet does not poll in lockstep) one cycle checks versions with as few calls
as the APIs allow (``plan.make_check_plan``: ``AWSCURRENT`` secrets twenty to a ``BatchGetSecretValue``, whose
answer carries the value too); only the targets whose version changed, and whose value the check did not
already read, are fetched, then the whole set is rendered and committed again exactly as in the first run. A
version never goes back (``sidecar.versions``). A failed cycle keeps the last good set, logs why, and backs
off; it never deletes or truncates a file.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any, Final

from sidecar import health
from sidecar.errors import FetchError, Interrupted, SidecarError
from sidecar.metrics import ENDED_WELL, Emitter, Ending, Meter
from sidecar.notify import notify
from sidecar.outcomes import Checked, CheckOutcome, Failure, Fetched, FetchedTree, Outcome
from sidecar.plan import Call, make_check_plan
from sidecar.references import Target
from sidecar.run import Job, plan_for
from sidecar.versions import VersionGuard

JITTER: Final = 0.1  # each wait is the interval +-10 %
FAILURE_BACKOFF_BASE_SECONDS: Final = 5.0
# 5 s doubled 20 times is 60 days, past any interval (at most a week): more doublings change nothing, and
# 5.0 * 2 ** 1100 would not fit in a float.
MAX_BACKOFF_DOUBLINGS: Final = 20


def next_delay(interval: float, failures: int, rng: random.Random) -> float:
    """The wait before the next cycle: the interval with jitter, or a shorter backoff after failures."""
    doublings = min(failures - 1, MAX_BACKOFF_DOUBLINGS)
    base = interval if failures == 0 else min(interval, FAILURE_BACKOFF_BASE_SECONDS * 2**doublings)
    return base * rng.uniform(1 - JITTER, 1 + JITTER)


class Refresher:
    def __init__(self, job: Job, rng: random.Random | None = None, metrics: Emitter | None = None) -> None:
        self.job = job
        self.metrics = metrics  # one line per cycle, whatever its end
        self.log = job.log
        self.settings = job.settings
        self.check_calls = self._plan_checks()  # the targets never change: planned again only after a denied batch
        self.versions: VersionGuard[Target] = VersionGuard()
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.stop = job.stop  # installed before the first fetch; checked between steps, never raised into one
        self.last_success = time.time()
        self.last_error: str | None = None

    # -- loop ------------------------------------------------------------------------------------------------

    def run_forever(self) -> None:
        interval = self.settings.refresh_interval
        assert interval is not None  # noqa: S101 - only called in refresh mode
        if not self.stop.is_set():  # SIGTERM during the first commit: that set stays, nothing starts
            self.log.info(
                "refresh_started", interval_s=interval, check_calls_per_cycle=len(self.check_calls),
                check_calls_per_hour=round(len(self.check_calls) * 3600 / interval, 1),
            )
            self._write_health()
        failures = 0
        while not self.stop.wait(next_delay(interval, failures, self.rng)):
            meter = Meter(self.metrics, "refresh", time.monotonic())
            try:
                self.cycle(meter)
            except Interrupted as exc:
                meter.finish(Ending(exc.kind, exc.exit_code))
                break  # the cycle stopped between two steps: the last committed set is whole
            except SidecarError as exc:
                meter.finish(Ending(exc.kind, exc.exit_code))
                failures += 1
                self.last_error = exc.message
                self.log.warning("refresh_failed", error=exc.kind, reason=exc.message, failures=failures)
            else:
                meter.finish(ENDED_WELL)
                failures = 0
                self.last_success = time.time()
                self.last_error = None
            self._write_health()
        self.log.info("stopped", generation=self.job.generation, reason=self.stop.signal_name, exit_code=0)

    def _plan_checks(self) -> tuple[Call, ...]:
        return make_check_plan(self.job.targets, self.settings.sm_batch, frozenset(self.job.batch_denied))

    def cycle(self, meter: Meter | None = None) -> bool:
        """One check; fetch and commit what changed. True when a new set was committed."""
        job = self.job
        meter = meter or Meter(None, "refresh", time.monotonic())
        fetcher = job.fetcher(self.settings.timeout_seconds)
        meter.watch(fetcher.stats)
        checked = fetcher.check(self.check_calls)
        if any(c.operation == "BatchGetSecretValue" and (c.region, c.role_arn) in job.batch_denied
               for c in self.check_calls):
            self.check_calls = self._plan_checks()  # denied once (and warned once): not asked again
        changed = [t for t in job.targets if t in checked and self._accepted(t, checked[t])]
        self.log.info("refresh_check", api_calls=fetcher.stats.api_calls, changed=len(changed))
        if not changed:
            return False
        read = {t: now.fetched for t in changed if isinstance(now := checked[t], Checked) and now.fetched}
        unread = [t for t in changed if t not in read]
        fresh: dict[Target, Outcome] = {**read, **(fetcher.fetch(plan_for(self.settings, unread)) if unread else {})}
        previous = {t: job.values.get(t) for t in changed}
        published = job.publish({**job.values, **fresh})
        meter.wrote(published.files, published.bytes)
        for target in changed:
            before, after = previous[target], fresh.get(target)
            if isinstance(before, Fetched) and isinstance(after, Fetched):
                self.versions.replaced(target, before.change_token, after.change_token)
        self.log.info(
            "refreshed", generation=job.generation, changed=[t.describe() for t in changed],
            files=published.files, api_calls=fetcher.stats.api_calls,
        )
        if self.stop.is_set():  # the signal came during the commit: the task is stopping, the app with it
            self.log.info("notify_skipped", generation=job.generation, reason=f"{self.stop.signal_name} arrived")
            return True
        notify(
            self.log, signal=self.settings.notify_signal, process=self.settings.notify_process,
            command=self.settings.notify_command, output_dir=self.settings.output_dir, generation=job.generation,
            stop=self.stop,
        )
        return True

    def _accepted(self, target: Target, now: CheckOutcome) -> bool:
        """Whether the check's answer replaces what is in place: a change, and never a step back."""
        previous = self.job.values.get(target)
        if not isinstance(previous, Fetched) or not isinstance(now, Checked):
            return self._changed(previous, now)
        verdict = self.versions.verdict(target, previous, now)  # every answer, so "twice" means in a row
        if verdict == "older-once":
            self.log.warning(
                "older_version_answered", reference=target.describe(),
                reason="the check answered a version older than the one in place (a lagging read, or a stage "
                "moved back): the files stay; it is applied only if the next check answers it again",
            )
        elif verdict == "older-confirmed":
            self.log.warning("older_version_applied", reference=target.describe(),
                             reason="two checks in a row answered the older version: the stage was moved back")
        return verdict in ("newer", "older-confirmed")

    @staticmethod
    def _changed(previous: Outcome | None, now: Any) -> bool:
        if isinstance(now, Failure):
            if isinstance(previous, Failure) and previous.not_found and now.not_found:
                return False  # an optional secret that is still absent
            raise FetchError(f"refresh check: {now.reason}")
        if isinstance(previous, Fetched | FetchedTree):
            return bool(now.token != previous.change_token)
        return True  # an optional secret that now exists

    def _write_health(self) -> None:
        settings = self.settings
        record = health.Health(
            last_success=self.last_success, last_attempt=time.time(), last_error=self.last_error,
            generation=self.job.generation, pid=os.getpid(),
        )
        try:
            health.write_health(settings.output_dir, record, mode=settings.file_mode, uid=settings.uid,
                                gid=settings.gid)
        except OSError as exc:
            self.log.warning("health_not_written", reason=exc.strerror)
