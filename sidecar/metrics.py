"""A run's (or a refresh cycle's) metrics as one CloudWatch Embedded Metric Format (EMF) line.

CloudWatch Logs turns such a JSON line into metrics by itself: no agent and no PutMetricData call
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
The line holds counts, a duration, the outcome and the task's cluster and family: never a value, a key or a
secret's name. Pure: the clock, the writer and the task metadata are injected.
"""

from __future__ import annotations

import json
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal, Protocol

from sidecar.errors import EXIT_OK

MetricsMode = Literal["off", "emf"]
Phase = Literal["start", "refresh"]  # the run that writes the first set, or one refresh cycle
Unit = Literal["Milliseconds", "Count", "Bytes"]

DEFAULT_NAMESPACE: Final = "SecretsSidecar"
# The EMF specification's limits, and CloudWatch's for a namespace and a dimension value.
MAX_METRICS_PER_DIRECTIVE: Final = 100
MAX_DIMENSIONS_PER_SET: Final = 30
MAX_DIMENSION_VALUE_CHARS: Final = 1024
MAX_NAMESPACE_CHARS: Final = 255
NAMESPACE_CHARACTERS: Final = frozenset(string.ascii_letters + string.digits + "._-/#: ")
RESERVED_NAMESPACE_PREFIX: Final = "AWS/"

EVENT: Final = "metrics"  # the line's "event", like every log line's
SUCCESS: Final = "success"
STOPPED: Final = "stopped"

# Dimension keys: the first two as Container Insights names them (ECS/ContainerInsights).
CLUSTER: Final = "ClusterName"
FAMILY: Final = "TaskDefinitionFamily"
PHASE: Final = "Phase"
OUTCOME: Final = "Outcome"
EXIT_CODE: Final = "ExitCode"

DURATION: Final = "Duration"
API_CALLS: Final = "ApiCalls"
RETRIES: Final = "Retries"
THROTTLED: Final = "ThrottledCalls"
FAILOVERS: Final = "Failovers"
BYTES_WRITTEN: Final = "BytesWritten"
FILES_WRITTEN: Final = "FilesWritten"
FAILED: Final = "Failed"
METRICS: Final[tuple[tuple[str, Unit], ...]] = (
    (DURATION, "Milliseconds"), (API_CALLS, "Count"), (RETRIES, "Count"), (THROTTLED, "Count"),
    (FAILOVERS, "Count"), (BYTES_WRITTEN, "Bytes"), (FILES_WRITTEN, "Count"), (FAILED, "Count"),
)


@dataclass(frozen=True)
class Counts:
    duration_ms: float
    api_calls: int = 0
    retries: int = 0
    throttled: int = 0
    failovers: int = 0
    bytes_written: int = 0
    files_written: int = 0


@dataclass(frozen=True)
class Ending:
    """How a run or cycle ended: ``success``, or the error's kind (``fetch_error``, ...), and its exit code
    (for a refresh cycle, the code a run failing so would exit with)."""

    outcome: str
    exit_code: int

    @property
    def failed(self) -> bool:
        """A failure of the sidecar's: not a success, and not a stop that SIGTERM or SIGINT asked for."""
        return self.exit_code != EXIT_OK and self.outcome != STOPPED


ENDED_WELL: Final = Ending(SUCCESS, EXIT_OK)


@dataclass(frozen=True)
class Task:
    """The dimensions read from the ECS task metadata endpoint; None when unknown."""

    cluster: str | None = None
    family: str | None = None


def cluster_name(cluster: str) -> str:
    """The cluster's short name: the metadata endpoint gives an ARN (``arn:aws:ecs:...:cluster/NAME``) or the
    name itself, and the name is what ECS's own metrics use."""
    head, marker, name = cluster.rpartition(":cluster/")
    return name if marker and head.startswith("arn:") and name else cluster


def dimension_value(text: object) -> str | None:
    """``text`` as a dimension value CloudWatch accepts (ASCII, at least one non-whitespace character, at most
    1024 characters), or None."""
    if not isinstance(text, str) or not text.strip() or not text.isascii() or not text.isprintable():
        return None
    return text if len(text) <= MAX_DIMENSION_VALUE_CHARS else None


def namespace_problem(namespace: str) -> str | None:
    """Why CloudWatch would refuse ``namespace``, or None. The rules of CloudWatch's concepts page (ASCII
    letters, digits, ``. - _ / # :`` and space; at most 255 characters; one non-space), PutMetricData's
    pattern (no leading ``:``) and its reservation of ``AWS/``."""
    if not namespace.strip():
        return "needs at least one character other than a space"
    if len(namespace) > MAX_NAMESPACE_CHARS:
        return f"is {len(namespace)} characters long; CloudWatch allows at most {MAX_NAMESPACE_CHARS}"
    wrong = sorted(set(namespace) - NAMESPACE_CHARACTERS)
    if wrong:
        return (f"contains {wrong[0]!r}; a namespace may hold ASCII letters, digits, spaces and the characters "
                ". - _ / # :")
    if namespace.startswith(":"):
        return "may not begin with ':'"
    if namespace.startswith(RESERVED_NAMESPACE_PREFIX):
        return f"may not begin with {RESERVED_NAMESPACE_PREFIX!r}, which AWS services' namespaces use"
    return None


def dimensions(phase: Phase, ending: Ending, task: Task) -> tuple[dict[str, str], list[list[str]]]:
    """The dimension members and the two dimension sets: per task family (for alarms), and per outcome too."""
    members: dict[str, str] = {}
    if task.cluster is not None:
        members[CLUSTER] = task.cluster
    if task.family is not None:
        members[FAMILY] = task.family
    members[PHASE] = phase
    per_family = list(members)
    members[OUTCOME] = ending.outcome
    members[EXIT_CODE] = str(ending.exit_code)
    return members, [per_family, [*per_family, OUTCOME, EXIT_CODE]]


def document(
    namespace: str, counts: Counts, ending: Ending, *, phase: Phase, task: Task, timestamp_ms: int
) -> dict[str, object]:
    """The EMF document: the ``_aws`` metadata, then every dimension and metric as a member of the root."""
    members, sets = dimensions(phase, ending, task)
    values: dict[str, float] = {
        DURATION: round(counts.duration_ms, 1), API_CALLS: counts.api_calls, RETRIES: counts.retries,
        THROTTLED: counts.throttled, FAILOVERS: counts.failovers, BYTES_WRITTEN: counts.bytes_written,
        FILES_WRITTEN: counts.files_written, FAILED: int(ending.failed),
    }
    at = datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat().replace("+00:00", "Z")
    return {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": sets,
                "Metrics": [{"Name": name, "Unit": unit} for name, unit in METRICS],
            }],
        },
        "event": EVENT, "level": "info", "timestamp": at,
        **members,
        **values,
    }


def render(doc: dict[str, object]) -> str:
    """One line: a JSON object and nothing else, as CloudWatch Logs needs to find the metrics in it."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Counters(Protocol):
    """The fetch counters (``sidecar.fetch.Stats``)."""

    @property
    def api_calls(self) -> int: ...
    @property
    def retries(self) -> int: ...
    @property
    def throttled(self) -> int: ...
    @property
    def failovers(self) -> int: ...


class Emitter:
    """Writes the lines: where to, in which namespace, with which task dimensions."""

    def __init__(self, namespace: str, write: Callable[[str], None], task: Callable[[], Task] = Task,
                 clock_ms: Callable[[], int] = wall_clock_ms) -> None:
        self.namespace = namespace
        self._write = write
        self._task = task
        self._clock_ms = clock_ms

    def emit(self, phase: Phase, counts: Counts, ending: Ending) -> None:
        self._write(render(document(self.namespace, counts, ending, phase=phase, task=self._task(),
                                    timestamp_ms=self._clock_ms())))


class Meter:
    """One run's or cycle's counts so far; ``finish`` writes its line, once, on success or failure alike.
    Without an emitter (metrics off) it counts and writes nothing."""

    def __init__(self, emitter: Emitter | None, phase: Phase, started: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.emitter = emitter
        self.phase: Phase = phase
        self._started = started
        self._clock = clock
        self._counters: Counters | None = None
        self._files = 0
        self._bytes = 0
        self._finished = False

    def watch(self, counters: Counters) -> None:
        """Count what these counters count (a fetcher's, live: a failure part-way reports the calls made)."""
        self._counters = counters

    def wrote(self, files: int, size: int) -> None:
        self._files += files
        self._bytes += size

    def counts(self) -> Counts:
        c = self._counters
        return Counts(
            duration_ms=(self._clock() - self._started) * 1000,
            api_calls=c.api_calls if c else 0, retries=c.retries if c else 0, throttled=c.throttled if c else 0,
            failovers=c.failovers if c else 0, bytes_written=self._bytes, files_written=self._files,
        )

    def finish(self, ending: Ending) -> None:
        if self._finished:
            return
        self._finished = True
        if self.emitter is not None:
            self.emitter.emit(self.phase, self.counts(), ending)
