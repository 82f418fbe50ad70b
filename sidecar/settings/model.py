"""The parsed configuration: frozen values that the rest of the program reads. Parsing lives elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from sidecar.metrics import DEFAULT_NAMESPACE, MetricsMode
from sidecar.plan import SmBatch
from sidecar.references import ParameterPathTarget, Reference
from sidecar.selection import Selection
from sidecar.template import Template

DEFAULT_OUTPUT_DIR: Final = "/run/secrets"
DEFAULT_FILE_MODE: Final = 0o400
DEFAULT_TIMEOUT_SECONDS: Final = 60.0
DEFAULT_MAX_BYTES: Final = 1024 * 1024
DEFAULT_CONCURRENCY: Final = 8
# Upper bounds: a duration past these is a typo, and past ~9e9 s the process's waits overflow.
MAX_SECONDS: Final = 7 * 24 * 3600  # SIDECAR_TIMEOUT, SIDECAR_REFRESH_INTERVAL, SIDECAR_HEALTH_MAX_AGE
MAX_MAX_BYTES: Final = 1024**3  # SIDECAR_MAX_BYTES: no secret comes near it; memory is bounded by it
MAX_CONCURRENCY: Final = 64  # threads and pooled connections; far past any quota's useful parallelism
ECS_MAX_START_TIMEOUT_SECONDS: Final = 120
MIN_REFRESH_INTERVAL_SECONDS: Final = 1.0
HEALTH_INTERVALS: Final = 3  # the default health max age, in refresh intervals

LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["json", "console"]
LOG_LEVELS: Final[tuple[LogLevel, ...]] = ("debug", "info", "warning", "error")
LOG_FORMATS: Final[tuple[LogFormat, ...]] = ("json", "console")
SM_BATCH_MODES: Final[tuple[SmBatch, ...]] = ("auto", "always", "never")
METRICS_MODES: Final[tuple[MetricsMode, ...]] = ("off", "emf")


@dataclass(frozen=True)
class Entry:
    """One file to write (or directory, with ``expand`` or ``parametersByPath``): from one reference, or from a
    template whose inputs are references."""

    name: str
    value_from: str
    reference: Reference | None
    mode: int
    uid: int
    gid: int
    optional: bool = False
    expand: bool = False
    template: Template | None = None
    inputs: tuple[tuple[str, str, Reference], ...] = ()  # (input name, valueFrom, reference), templates only
    selection: Selection | None = None  # jmesPath: the part of the JSON value to write

    @property
    def references(self) -> tuple[Reference, ...]:
        return (self.reference,) if self.reference else tuple(ref for _, _, ref in self.inputs)

    @property
    def tree(self) -> ParameterPathTarget | None:
        """The parameter tree a ``parametersByPath`` entry writes (``value_from`` then holds the path)."""
        target = self.reference.target if self.reference else None
        return target if isinstance(target, ParameterPathTarget) else None

    @property
    def is_directory(self) -> bool:
        """Whether the entry's name is a directory of files whose names come from what is fetched."""
        return self.expand or self.tree is not None

    @property
    def role_arn(self) -> str | None:
        """The role the entry is read with (one for all of a template's inputs); None: the task's own."""
        return next((ref.target.role_arn for ref in self.references), None)


@dataclass(frozen=True)
class Settings:
    entries: tuple[Entry, ...]
    output_dir: str = DEFAULT_OUTPUT_DIR
    file_mode: int = DEFAULT_FILE_MODE
    uid: int = -1
    gid: int = -1
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    log_level: LogLevel = "info"
    log_format: LogFormat = "json"
    max_bytes: int = DEFAULT_MAX_BYTES
    env_file: str | None = None
    sm_batch: SmBatch = "auto"
    concurrency: int = DEFAULT_CONCURRENCY
    region: str | None = None
    role_arn: str | None = None  # assumed for every entry without a roleArn of its own; None: the task role
    failover_region: str | None = None  # SIDECAR_FAILOVER_REGION: for Secrets Manager references
    refresh_interval: float | None = None  # None: run once and exit
    health_max_age: float | None = None
    notify_signal: int | None = None
    notify_process: str | None = None
    notify_command: tuple[str, ...] = ()
    metrics: MetricsMode = "off"
    metrics_namespace: str = DEFAULT_NAMESPACE
    warnings: tuple[str, ...] = field(default=(), compare=False)
