"""Command line: ``secrets-sidecar [run|check] [options]``; ``main`` returns the exit code."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sidecar.errors import EXIT_CONFIG, EXIT_OK, EXIT_UNEXPECTED, ConfigError, Interrupted, SidecarError
from sidecar.settings.arguments import (
    COMPOSE_COMMAND,
    IAM_POLICY_COMMAND,
    LINT_COMMAND,
    UsageError,
    parse_arguments,
    setting_flags,
    with_command,
)
from sidecar.settings.load import load_settings, logging_preferences, metrics_namespace
from sidecar.settings.model import DEFAULT_TIMEOUT_SECONDS, Entry, Settings

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from sidecar.metrics import Emitter, Meter

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    started = time.monotonic()
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = os.environ if environ is None else environ
    try:
        args = parse_arguments(argv)
    except SystemExit as exc:  # argparse has printed --help or --version
        return EXIT_OK if exc.code == 0 else EXIT_CONFIG
    except UsageError as exc:
        sys.stderr.write(f"{exc.usage}{exc.prog}: error: {exc.message}\n")
        if with_command(argv)[0] != LINT_COMMAND:
            # Like every other configuration error, the reason is also the log's last line.
            from sidecar import log as logging

            log = logging.configure(*logging_preferences({}, environ))
            if with_command(argv)[0] == "run":
                _RunMetrics(environ, log, started, metrics_namespace({}, environ)).failed(exc)
            log.error("failed", exit_code=EXIT_CONFIG, error="configuration_error", reason=exc.message)
        return EXIT_CONFIG
    if args.command in (LINT_COMMAND, COMPOSE_COMMAND, IAM_POLICY_COMMAND):
        return _offline_command(args, environ)
    flags = setting_flags(args)

    from sidecar import log as logging

    live = args.command == "check" and bool(args.aws)
    # A live check's report is stdout; its log events (api_call, retry, failed) go to stderr.
    log = logging.configure(*logging_preferences(flags, environ), stream=sys.stderr if live else None)
    metrics = _RunMetrics(environ, log, started,
                          metrics_namespace(flags, environ) if args.command == "run" else None)
    try:
        settings = load_settings(flags, environ)
        if args.command == "check":
            return _check_command(settings, log, started, aws=live, read=bool(args.read), as_json=bool(args.json))
        if args.command == "healthcheck":
            return _healthcheck(settings)
        from sidecar.run import run
        from sidecar.stopping import Stop

        meter = metrics.start(settings)
        stop = Stop()
        stop.install()  # before the first fetch: SIGTERM then stops the run between steps, never inside one
        job = run(settings, log, started, stop, meter)
        if settings.refresh_interval is not None:
            from sidecar.refresh import Refresher

            Refresher(job, metrics=meter.emitter).run_forever()
    except Interrupted as exc:
        metrics.failed(exc)
        log.warning("stopped", generation=0, reason=exc.message, exit_code=exc.exit_code)
        return exc.exit_code
    except SidecarError as exc:
        metrics.failed(exc)
        log.error("failed", exit_code=exc.exit_code, error=exc.kind, reason=exc.message)
        return exc.exit_code
    except Exception as exc:
        metrics.failed(None)
        log.error(
            "failed", exit_code=EXIT_UNEXPECTED, error="unexpected", reason=f"{type(exc).__name__}", exc_info=True
        )
        return EXIT_UNEXPECTED
    return EXIT_OK


class _RunMetrics:
    """The run's metrics line (``SIDECAR_METRICS=emf``), on success or failure alike. Until the settings are
    loaded, metrics are on only when flags or environment say so (``fallback_namespace``): a run whose
    configuration does not load is counted too, unless the broken part is the metrics setting itself."""

    def __init__(self, environ: Mapping[str, str], log: FilteringBoundLogger, started: float,
                 fallback_namespace: str | None) -> None:
        self._environ = environ
        self._log = log
        self._started = started
        self._fallback = fallback_namespace
        self._meter: Meter | None = None

    def start(self, settings: Settings) -> Meter:
        from sidecar.metrics import Meter

        namespace = settings.metrics_namespace if settings.metrics == "emf" else None
        self._meter = Meter(self._emitter(namespace, settings.timeout_seconds), "start", self._started)
        return self._meter

    def failed(self, error: SidecarError | None) -> None:
        """Before the ``failed`` line, which stays the log's last."""
        from sidecar.metrics import Ending, Meter

        meter = self._meter or Meter(self._emitter(self._fallback, DEFAULT_TIMEOUT_SECONDS), "start", self._started)
        meter.finish(Ending(error.kind, error.exit_code) if error else Ending("unexpected", EXIT_UNEXPECTED))

    def _emitter(self, namespace: str | None, timeout_seconds: float) -> Emitter | None:
        """The writer when metrics are on. The task metadata is read from now on, in the background, and waited
        for at most until the run's deadline."""
        if namespace is None:
            return None
        from sidecar.log import line_writer
        from sidecar.metrics import Emitter
        from sidecar.task_metadata import TaskMetadata

        metadata = TaskMetadata(self._environ, self._log).start()
        ends = self._started + timeout_seconds
        return Emitter(namespace, line_writer(), task=lambda: metadata.task(wait=ends - time.monotonic()))


def _offline_command(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """The commands that read a file or a configuration and print, without AWS or logging."""
    if args.command == LINT_COMMAND:
        from sidecar.lint.command import lint_command

        return lint_command(args.file, args.format)
    if args.command == COMPOSE_COMMAND:
        from sidecar.compose.command import compose_command

        return compose_command(args.file, args.output_dir, moto=args.moto, images=args.image,
                               unseeded=args.unseeded, region=args.region)
    from sidecar.iam_policy_command import iam_policy_command

    return iam_policy_command(setting_flags(args), environ, task_definition=args.task_definition,
                              account=args.account, kms_keys=args.kms_keys, as_json=bool(args.json))


def _healthcheck(settings: Settings) -> int:
    from sidecar.health import assess, read_health

    if settings.refresh_interval is None or settings.health_max_age is None:
        print("unhealthy: healthcheck applies to refresh mode (set SIDECAR_REFRESH_INTERVAL)")
        return EXIT_UNEXPECTED
    healthy, message = assess(read_health(settings.output_dir), settings.health_max_age)
    print(message if healthy else f"unhealthy: {message}")
    return EXIT_OK if healthy else EXIT_UNEXPECTED


def _check_command(settings: Settings, log: FilteringBoundLogger, started: float, *, aws: bool, read: bool,
                   as_json: bool) -> int:
    if read and not aws:
        raise ConfigError("check --read needs --aws: it reads every value from AWS")
    if not aws:
        return _check(settings, as_json=as_json)
    from sidecar.preflight import preflight, report_json, report_lines

    report = preflight(settings, log, started, read=read)
    print(report_json(report) if as_json else "\n".join(report_lines(report)))
    return report.exit_code


def _check(settings: Settings, *, as_json: bool) -> int:
    from sidecar.run import check_regions, plan_for

    check_regions(settings)
    calls = plan_for(settings)
    plan: dict[str, Any] = {
        "outputDir": settings.output_dir,
        "calls": [
            {"service": c.service, "region": c.region, "failoverRegion": c.failover_region, "operation": c.operation,
             "targets": [t.describe() for t in c.targets], **({"roleArn": c.role_arn} if c.role_arn else {})}
            for c in calls
        ],
        "files": [_planned_file(e) for e in settings.entries],
        "envFile": settings.env_file,
        "warnings": list(settings.warnings),
    }
    if as_json:
        print(json.dumps(plan, indent=2))
        return EXIT_OK
    print(f"configuration is valid: {len(settings.entries)} entries, {len(calls)} API call(s), "
          f"output directory {settings.output_dir}")
    for call in plan["calls"]:
        failover = f" (failover {call['failoverRegion']})" if call["failoverRegion"] else ""
        role = f" as {call['roleArn']}" if "roleArn" in call else ""
        print(f"  call  {call['service']} {call['operation']} in {call['region']}{failover}{role}: "
              f"{', '.join(call['targets'])}")
    for file in plan["files"]:
        optional = " (optional)" if file["optional"] else ""
        selected = f"  jmesPath {file['jmesPath']}" if "jmesPath" in file else ""
        role = f"  as {file['roleArn']}" if "roleArn" in file else ""
        print(f"  file  {file['name']}  mode {file['mode']}  owner {file['owner']}{optional}  <- {file['valueFrom']}"
              f"{selected}{role}")
    if settings.env_file:
        print(f"  file  {settings.env_file}  (env file)  mode {settings.file_mode:04o}  "
              f"owner {settings.uid}:{settings.gid}")
    for warning in settings.warnings:
        print(f"  warning: {warning}")
    return EXIT_OK


def _planned_file(entry: Entry) -> dict[str, Any]:
    """How ``check`` shows one entry: its file (or directory) and where its value comes from."""
    planned: dict[str, Any] = {"name": entry.name, "mode": f"{entry.mode:04o}", "owner": f"{entry.uid}:{entry.gid}",
                               "optional": entry.optional}
    if entry.role_arn is not None:
        planned["roleArn"] = entry.role_arn
    if entry.tree is not None:
        depth = "recursive" if entry.tree.recursive else "first level only"
        return {**planned, "name": f"{entry.name}/<each parameter>", "parametersByPath": entry.tree.path,
                "recursive": entry.tree.recursive,
                "valueFrom": f"parametersByPath {entry.tree.path} ({depth}) in {entry.tree.region}"}
    if entry.expand:
        planned["name"] = f"{entry.name}/<each key>"
    inputs = ", ".join(f"{n}={vf}" for n, vf, _ in entry.inputs)
    planned["valueFrom"] = entry.value_from or f"template of {inputs}"
    if entry.selection:
        planned["jmesPath"] = entry.selection.expression
    return planned


def entrypoint() -> None:
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: a call still stuck in a worker thread after the deadline must not hold the task open.
    os._exit(code)
