"""The table of settings: one record per setting, from which everything else is derived.

The command line's flags (``sidecar.settings.arguments``), the loader's sources and precedence
(``sidecar.settings.load``), the linter's reading of a task definition and the settings table in
docs/configuration.md (held to these records by a test) all come from here: a setting is added or renamed
in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar

from sidecar.metrics import DEFAULT_NAMESPACE, MetricsMode
from sidecar.plan import SmBatch
from sidecar.settings import parsers as p
from sidecar.settings.model import (
    DEFAULT_CONCURRENCY,
    DEFAULT_FILE_MODE,
    DEFAULT_MAX_BYTES,
    DEFAULT_OUTPUT_DIR,
    DEFAULT_TIMEOUT_SECONDS,
    LOG_FORMATS,
    LOG_LEVELS,
    MAX_CONCURRENCY,
    MAX_MAX_BYTES,
    METRICS_MODES,
    SM_BATCH_MODES,
    LogFormat,
    LogLevel,
)

T_co = TypeVar("T_co", covariant=True)  # an Option[int] is an Option[object]: its values are read, never set
ENV_PREFIX: Final = "SIDECAR_"
SHORTHAND_PREFIX: Final = "SIDECAR_SECRET_"  # SIDECAR_SECRET_<NAME>=<valueFrom>: one entry each


class Named(Protocol):
    """What every setting has: where it is given."""

    @property
    def key(self) -> str: ...  # the config file's key, and the setting's name among parsed flags
    @property
    def env(self) -> str: ...
    @property
    def flag(self) -> str: ...


@dataclass(frozen=True)
class Option(Generic[T_co]):
    """A scalar setting: where it is given, the parser of its value, and its value when no source gives one
    (None: computed by the loader, or unset)."""

    key: str
    env: str
    flag: str
    parse: Callable[[str, object], T_co]
    default: T_co
    documented_default: str  # the default column of docs/configuration.md
    help: str


@dataclass(frozen=True)
class Setting:
    """A setting that is not one scalar value: the secrets list, the config file's path."""

    key: str
    env: str
    flag: str
    metavar: str
    documented_default: str
    help: str
    in_file: bool


OUTPUT_DIR: Final = Option(
    "outputDir", "SIDECAR_OUTPUT_DIR", "--output-dir", p.parse_output_dir, DEFAULT_OUTPUT_DIR,
    f"`{DEFAULT_OUTPUT_DIR}`", f"directory to write into ({DEFAULT_OUTPUT_DIR})")
FILE_MODE: Final = Option(
    "fileMode", "SIDECAR_FILE_MODE", "--file-mode", p.parse_mode, DEFAULT_FILE_MODE,
    f"`{DEFAULT_FILE_MODE:04o}`", f"octal mode of every file (default {DEFAULT_FILE_MODE:04o})")
UID: Final = Option[int | None](
    "uid", "SIDECAR_UID", "--uid", p.parse_id, None,
    "the process's uid", "owner of the files (default: the process's uid)")
GID: Final = Option[int | None](
    "gid", "SIDECAR_GID", "--gid", p.parse_id, None,
    "the process's gid", "group of the files (default: the process's gid)")
TIMEOUT: Final = Option(
    "timeout", "SIDECAR_TIMEOUT", "--timeout", p.parse_seconds, DEFAULT_TIMEOUT_SECONDS,
    f"`{DEFAULT_TIMEOUT_SECONDS:g}`", f"overall deadline in seconds (default {DEFAULT_TIMEOUT_SECONDS:g})")
LOG_LEVEL: Final = Option[LogLevel](
    "logLevel", "SIDECAR_LOG_LEVEL", "--log-level", p.choice(LOG_LEVELS), "info",
    "`info`", "debug, info, warning or error (default info)")
LOG_FORMAT: Final = Option[LogFormat](
    "logFormat", "SIDECAR_LOG_FORMAT", "--log-format", p.choice(LOG_FORMATS), "json",
    "`json`", "json (default) or console")
MAX_BYTES: Final = Option(
    "maxBytes", "SIDECAR_MAX_BYTES", "--max-bytes", p.whole_number(1, MAX_MAX_BYTES), DEFAULT_MAX_BYTES,
    f"`{DEFAULT_MAX_BYTES}`", f"largest value accepted per entry (default {DEFAULT_MAX_BYTES})")
ENV_FILE: Final = Option[str | None](
    "envFile", "SIDECAR_ENV_FILE", "--env-file", p.parse_env_file, None,
    "none", "also write this dotenv file in the output directory")
SM_BATCH: Final = Option[SmBatch](
    "smBatch", "SIDECAR_SM_BATCH", "--sm-batch", p.choice(SM_BATCH_MODES), "auto",
    "`auto`", "BatchGetSecretValue use: auto (default), always, never")
CONCURRENCY: Final = Option(
    "concurrency", "SIDECAR_CONCURRENCY", "--concurrency", p.whole_number(1, MAX_CONCURRENCY), DEFAULT_CONCURRENCY,
    f"`{DEFAULT_CONCURRENCY}`", f"API calls in flight at once, 1-{MAX_CONCURRENCY} (default {DEFAULT_CONCURRENCY})")
REGION: Final = Option[str | None](
    "region", "SIDECAR_REGION", "--region", p.parse_region, None,
    "`AWS_REGION`, then `AWS_DEFAULT_REGION`", "region for references without one (default AWS_REGION)")
ROLE_ARN: Final = Option[str | None](
    "roleArn", "SIDECAR_ROLE_ARN", "--role-arn", p.parse_role_arn, None,
    "none (the task role)", "IAM role to assume for every entry without its own roleArn (default: none)")
FAILOVER_REGION: Final = Option[str | None](
    "failoverRegion", "SIDECAR_FAILOVER_REGION", "--failover-region", p.parse_region, None,
    "none", "read Secrets Manager secrets from this region when their own is unavailable")
REFRESH_INTERVAL: Final = Option[float | None](
    "refreshInterval", "SIDECAR_REFRESH_INTERVAL", "--refresh-interval", p.parse_seconds, None,
    "none (run once)", "keep running and check for new versions every N seconds (default: run once)")
HEALTH_MAX_AGE: Final = Option[float | None](
    "healthMaxAge", "SIDECAR_HEALTH_MAX_AGE", "--health-max-age", p.parse_seconds, None,
    "3 intervals", "healthcheck fails when the last good refresh is older (default 3 intervals)")
NOTIFY_SIGNAL: Final = Option[int | None](
    "notifySignal", "SIDECAR_NOTIFY_SIGNAL", "--notify-signal", p.parse_signal, None,
    "none", "signal to send on change, e.g. HUP")
NOTIFY_PROCESS: Final = Option[str | None](
    "notifyProcess", "SIDECAR_NOTIFY_PROCESS", "--notify-process", p.parse_process_name, None,
    "none", "name of the process to signal")
NOTIFY_COMMAND: Final = Option[tuple[str, ...]](
    "notifyCommand", "SIDECAR_NOTIFY_COMMAND", "--notify-command", p.parse_command, (),
    "none", "JSON array: command to run on change")
METRICS: Final = Option[MetricsMode](
    "metrics", "SIDECAR_METRICS", "--metrics", p.choice(METRICS_MODES), "off",
    "`off`", "off (default) or emf: one CloudWatch metrics line per run and per refresh cycle")
METRICS_NAMESPACE: Final = Option(
    "metricsNamespace", "SIDECAR_METRICS_NAMESPACE", "--metrics-namespace", p.parse_namespace, DEFAULT_NAMESPACE,
    f"`{DEFAULT_NAMESPACE}`", f"CloudWatch namespace of the metrics (default {DEFAULT_NAMESPACE})")

# In the order they are read: with several mistakes, the first of this order is reported.
OPTIONS: Final[tuple[Option[object], ...]] = (
    OUTPUT_DIR, FILE_MODE, UID, GID, TIMEOUT, LOG_LEVEL, LOG_FORMAT, MAX_BYTES, ENV_FILE, SM_BATCH, CONCURRENCY,
    REGION, ROLE_ARN, FAILOVER_REGION, REFRESH_INTERVAL, HEALTH_MAX_AGE, NOTIFY_SIGNAL, NOTIFY_PROCESS,
    NOTIFY_COMMAND, METRICS, METRICS_NAMESPACE,
)  # fmt: skip
REFRESH_ONLY: Final[tuple[Option[object], ...]] = (HEALTH_MAX_AGE, NOTIFY_SIGNAL, NOTIFY_PROCESS, NOTIFY_COMMAND)

SECRETS: Final = Setting(
    "secrets", "SIDECAR_SECRETS", "--secrets", "JSON", "none", "JSON array of {name, valueFrom, ...}", in_file=True)
CONFIG_FILE: Final = Setting(
    "configFile", "SIDECAR_CONFIG_FILE", "--config-file", "FILE", "none", "JSON config file", in_file=False)
SETTINGS: Final[tuple[Named, ...]] = (SECRETS, CONFIG_FILE, *OPTIONS)
KNOWN_ENV: Final = frozenset(s.env for s in SETTINGS)
FILE_KEYS: Final = (SECRETS.key, *(o.key for o in OPTIONS))
