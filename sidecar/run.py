"""The job: configuration -> plan -> fetch -> render -> commit, with one log line per step.

``run`` does it once. Refresh mode (``sidecar.refresh``) reuses the same ``Job`` to check versions and
re-commit the whole set when something changed.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sidecar import commit, output_dir
from sidecar.deadline import Deadline
from sidecar.errors import ConfigError
from sidecar.metrics import ENDED_WELL, Meter
from sidecar.outcomes import Outcome
from sidecar.output import OutputFile
from sidecar.plan import Call, make_plan
from sidecar.references import Target
from sidecar.render import render
from sidecar.secret import SecretBytes
from sidecar.settings.model import Settings
from sidecar.settings.options import FAILOVER_REGION
from sidecar.stopping import Stop

if TYPE_CHECKING:  # imported lazily at run time: start-up cost
    from botocore.session import Session
    from structlog.typing import FilteringBoundLogger

    from sidecar.fetch import Fetcher


def targets_of(settings: Settings) -> tuple[Target, ...]:
    return tuple(sorted({ref.target for entry in settings.entries for ref in entry.references}, key=repr))


def plan_for(settings: Settings, targets: Iterable[Target] | None = None) -> tuple[Call, ...]:
    chosen = targets_of(settings) if targets is None else targets
    return make_plan(chosen, settings.sm_batch, settings.concurrency)


def check_regions(settings: Settings, session: Session | None = None) -> None:
    """A region botocore's endpoint data does not know is a configuration error (a typo would otherwise
    surface as a DNS failure after every retry)."""
    from sidecar.aws import known_regions

    regions = known_regions(session)
    failover = settings.failover_region
    if failover is not None and failover not in regions:  # checked even when no secret would use it
        close = closest_region(failover, regions)
        hint = f"; did you mean {close}?" if close else ""
        raise ConfigError(f"{FAILOVER_REGION.env}: {failover!r} is not a known AWS region{hint}")
    for entry in settings.entries:
        for reference in entry.references:
            target = reference.target
            for role, region in (("region", target.region), ("failover region", target.failover_region)):
                if region is not None and region not in regions:
                    close = closest_region(region, regions)
                    hint = f"; did you mean {close}?" if close else ""
                    raise ConfigError(
                        f"{entry.name!r}: {role} {region!r} is not a known AWS region ({target.describe()}){hint}"
                    )


_LOOK_ALIKES = str.maketrans({"l": "1", "I": "1", "O": "0", "o": "0"})


def closest_region(region: str, regions: Iterable[str]) -> str | None:
    """The known region a mistyped one most likely meant: a look-alike character swapped (``eu-west-l``),
    else the most similar name, the first alphabetically among equals, so the answer never varies."""
    known = sorted(regions)
    head, _, number = region.rpartition("-")
    look_alike = f"{head}-{number.translate(_LOOK_ALIKES)}"
    if look_alike in known:
        return look_alike
    scored = [(difflib.SequenceMatcher(None, region, name).ratio(), name) for name in known]
    best = max((score for score, _ in scored), default=0.0)
    return next((name for score, name in scored if score == best), None) if best >= 0.8 else None


@dataclass(frozen=True)
class Published:
    committed: commit.Committed
    files: int
    skipped: int
    bytes: int  # of the files written, for the metrics


class Job:
    """Holds what a long-running process keeps between cycles: clients, the last values, the generation."""

    def __init__(self, settings: Settings, log: FilteringBoundLogger, stop: Stop | None = None) -> None:
        from sidecar.aws import ClientFactory

        self.settings = settings
        self.log = log
        self.stop = stop or Stop()  # one that was never installed never fires
        self.targets = targets_of(settings)
        self.clients = ClientFactory(
            concurrency=settings.concurrency, read_timeout=min(10.0, settings.timeout_seconds),
            max_bytes=settings.max_bytes,
        )
        self.values: dict[Target, Outcome] = {}
        self.generation = 0
        self.batch_denied: set[tuple[str, str | None]] = set()  # (region, role) where the batch was denied

    def fetcher(self, seconds: float) -> Fetcher:
        from sidecar.deadline import Deadline
        from sidecar.fetch import Fetcher

        return Fetcher(
            self.clients, Deadline(seconds), self.log,
            concurrency=self.settings.concurrency, max_bytes=self.settings.max_bytes, stop=self.stop,
            batch_denied=self.batch_denied,
        )

    def publish(self, outcomes: dict[Target, Outcome], deadline: Deadline | None = None) -> Published:
        """Render and commit the whole set; on success it becomes the set later cycles compare with.
        ``deadline`` bounds rendering and writing up to the swap (what is left of SIDECAR_TIMEOUT).

        After SIGTERM no commit begins (``Interrupted``); one that has begun finishes, so the set stays whole."""
        self.stop.check()
        settings = self.settings
        generation = self.generation + 1
        now = datetime.now(UTC)
        rendered = render(settings, outcomes, now=now, generation=generation, deadline=deadline)
        for name, reason in rendered.skipped:
            self.log.warning("optional_skipped", name=name, reason=reason)
        # The sidecar's own files hold no value; they share the writer, the mode, the owner and the commit.
        internal = [
            OutputFile(commit.MANIFEST, SecretBytes(rendered.manifest), settings.file_mode, settings.uid, settings.gid),
            OutputFile(commit.VERSION, SecretBytes(f"{generation}\n".encode()), settings.file_mode, settings.uid,
                       settings.gid),
        ]
        committed = commit.commit(
            settings.output_dir, rendered.files, internal, dir_uid=settings.uid, dir_gid=settings.gid,
            deadline=deadline,
        )
        for file in rendered.files:
            owner = f"{file.uid}:{file.gid}"
            self.log.info("file", name=file.shown, bytes=len(file.content), mode=f"{file.mode:04o}", owner=owner,
                          region=rendered.regions.get(file.path))
        for name in committed.removed:
            self.log.info("file_removed", name=name, reason="no longer configured")
        for name in committed.kept:
            self.log.warning("previous_set_kept", name=name,
                             reason="the previous set's directory could not be removed (another owner?); "
                             "a later run with permission removes it")
        for reason in committed.untidy:
            self.log.warning("commit_untidy", reason=reason)
        self.values = dict(outcomes)
        self.generation = generation
        return Published(committed, len(rendered.files), len(rendered.skipped),
                         sum(len(file.content) for file in rendered.files))


def run(settings: Settings, log: FilteringBoundLogger, started: float, stop: Stop | None = None,
        meter: Meter | None = None) -> Job:
    """Write every required secret, or raise a ``SidecarError`` leaving the output directory untouched
    (``Interrupted`` when SIGTERM or SIGINT came first). ``meter`` counts the run; on success its line is
    written before ``done``, so that ``done`` stays the log's last line (on failure, the caller writes it)."""
    meter = meter or Meter(None, "start", started)
    job = Job(settings, log, stop)  # a botocore session and no network access yet
    check_regions(settings, job.clients.session)
    calls = plan_for(settings)
    log.info(
        "start",
        entries=len(settings.entries),
        planned_calls=len(calls),
        output_dir=settings.output_dir,
        timeout_s=settings.timeout_seconds,
    )
    for warning in settings.warnings:
        log.warning("config_warning", reason=warning)
    owners = {(e.uid, e.gid) for e in settings.entries} | {(settings.uid, settings.gid)}
    output_dir.preflight(settings.output_dir, owners)

    fetcher = job.fetcher(max(0.0, settings.timeout_seconds - (time.monotonic() - started)))
    meter.watch(fetcher.stats)
    fetcher.resolve_credentials()
    outcomes = fetcher.fetch(calls)
    # SIDECAR_TIMEOUT lasts to the last file: what is left of it bounds rendering and writing too.
    published = job.publish(outcomes, Deadline(settings.timeout_seconds - (time.monotonic() - started)))
    meter.wrote(published.files, published.bytes)
    meter.finish(ENDED_WELL)
    log.info(
        "done",
        entries=len(settings.entries) - published.skipped,
        skipped=published.skipped,
        files=published.files,
        api_calls=fetcher.stats.api_calls,
        retries=fetcher.stats.retries,
        failovers=fetcher.stats.failovers,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return job
