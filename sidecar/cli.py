"""Command line: ``secrets-sidecar [run|check] [options]``; ``main`` returns the exit code."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NoReturn

from sidecar import __version__
from sidecar.config import OPTIONS, Settings, load_settings, logging_preferences
from sidecar.errors import EXIT_CONFIG, EXIT_OK, EXIT_UNEXPECTED, Interrupted, SidecarError

COMMANDS = ("run", "check", "healthcheck", "lint-task-definition", "compose")
EXIT_CODES = """\
exit codes:
  0  every required secret was written (check: the configuration is valid)
  1  unexpected error (a bug: please report it with the log)
  2  configuration error; nothing was fetched
  3  a secret could not be fetched or did not match its reference
     (not found, access denied, KMS decryption failure, json-key missing, too large,
     retries or deadline exhausted)
  4  the files could not be written (output directory missing or not writable, volume
     full or read-only, owner change not permitted); previous contents are untouched
  130, 143  stopped by SIGINT or SIGTERM before the set was committed; nothing was written

Every setting is also read from its SIDECAR_* environment variable and from the JSON file named
by SIDECAR_CONFIG_FILE; flags win over the environment, the environment over the file.
Documentation: docs/configuration.md"""


class _Parser(argparse.ArgumentParser):
    """argparse, with the flag a mistyped one was probably meant to be, and the error kept for the log."""

    errors: ClassVar[list[str]] = []  # shared by the subcommands' parsers, which argparse creates itself

    def error(self, message: str) -> NoReturn:
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            flags = sorted(_option_strings(self))
            for word in message[len(prefix) :].split():
                close = difflib.get_close_matches(word.partition("=")[0], flags, n=1, cutoff=0.6)
                if word.startswith("--") and close:
                    message += f" (did you mean {close[0]}?)"
                    break
        _Parser.errors.append(message)
        super().error(message)


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every flag of the parser and of its subcommands."""
    flags: set[str] = set()
    for action in parser._actions:  # argparse offers no public list of its flags
        flags.update(option for option in action.option_strings if option.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags |= _option_strings(sub)
    return flags


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    for option in OPTIONS:
        common.add_argument(option.flag, dest=option.key, metavar=option.env, help=option.help)
    common.add_argument("--secrets", dest="secrets", metavar="JSON", help="JSON array of {name, valueFrom, ...}")
    common.add_argument("--config-file", dest="configFile", metavar="FILE", help="JSON config file")

    parser = _Parser(
        prog="secrets-sidecar",
        description="Fetch secrets from AWS Secrets Manager, SSM Parameter Store and S3, and write them as "
        "files with restrictive modes, atomically, before the app container starts.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"secrets-sidecar {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{run,check,healthcheck,lint-task-definition,compose}")
    commands.add_parser(
        "run", parents=[common], help="fetch and write every secret (the default)",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check = commands.add_parser(
        "check", parents=[common], help="validate the configuration and print the plan; no network access",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("--json", action="store_true", help="print the plan as JSON")
    commands.add_parser(
        "healthcheck", parents=[common],
        help="refresh mode: exit 0 while the last good refresh is recent (for the ECS container health check)",
    )
    lint = commands.add_parser(
        "lint-task-definition", help="check an ECS task definition (JSON file, or - for stdin) that runs the "
        "sidecar; exit 0 clean or warnings only, 1 errors, 2 unreadable (docs/lint-task-definition.md)",
    )
    lint.add_argument("file", help="task definition JSON, or describe-task-definition output; - reads stdin")
    lint.add_argument("--format", choices=("text", "json"), default="text", help="report format (default text)")
    compose = commands.add_parser(
        "compose", help="turn an ECS task definition into a docker-compose project and report what it cannot "
        "map; exit 0 written, 2 unreadable or bad option, 4 not written (docs/run-task-definition-locally.md)",
    )
    compose.add_argument("file", help="task definition JSON, or describe-task-definition output; - reads stdin")
    compose.add_argument("-o", "--output-dir", dest="output_dir", metavar="DIR",
                         help="write DIR/compose.yaml (default: print the project)")
    compose.add_argument("--moto", action="store_true",
                         help="add a moto server and seed placeholders for every secret the sidecar references")
    compose.add_argument("--image", action="append", default=[], metavar="IMAGE=LOCAL",
                         help="run LOCAL where the task definition names IMAGE (repeatable)")
    compose.add_argument("--no-seed", action="append", default=[], metavar="VALUEFROM", dest="unseeded",
                         help="with --moto: leave this reference out of the seed, to watch the sidecar fail")
    compose.add_argument("--region", help="the task's region (default: from the sidecar's ARNs, else us-east-1)")
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    started = time.monotonic()
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = os.environ if environ is None else environ
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv = ["run", *argv]
    _Parser.errors.clear()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed its usage message
        if exc.code == 0:
            return EXIT_OK
        if argv[0] != "lint-task-definition" and _Parser.errors:
            # Like every other configuration error, the reason is also the log's last line.
            from sidecar import log as logging

            log = logging.configure(*logging_preferences({}, environ))
            log.error("failed", exit_code=EXIT_CONFIG, error="configuration_error", reason=_Parser.errors[-1])
        return EXIT_CONFIG
    if args.command == "lint-task-definition":
        from sidecar.lint.command import lint_command

        return lint_command(args.file, args.format)
    if args.command == "compose":
        from sidecar.compose.command import compose_command

        return compose_command(args.file, args.output_dir, moto=args.moto, images=args.image,
                               unseeded=args.unseeded, region=args.region)
    flags = {key: value for key, value in vars(args).items() if value is not None}

    from sidecar import log as logging

    log = logging.configure(*logging_preferences(flags, environ))
    try:
        settings = load_settings(flags, environ)
        if args.command == "check":
            return _check(settings, as_json=bool(flags.get("json")))
        if args.command == "healthcheck":
            return _healthcheck(settings)
        from sidecar.run import run
        from sidecar.stopping import Stop

        stop = Stop()
        stop.install()  # before the first fetch: SIGTERM then stops the run between steps, never inside one
        job = run(settings, log, started, stop)
        if settings.refresh_interval is not None:
            from sidecar.refresh import Refresher

            Refresher(job).run_forever()
    except Interrupted as exc:
        log.warning("stopped", generation=0, reason=exc.message, exit_code=exc.exit_code)
        return exc.exit_code
    except SidecarError as exc:
        log.error("failed", exit_code=exc.exit_code, error=exc.kind, reason=exc.message)
        return exc.exit_code
    except Exception as exc:
        log.error(
            "failed", exit_code=EXIT_UNEXPECTED, error="unexpected", reason=f"{type(exc).__name__}", exc_info=True
        )
        return EXIT_UNEXPECTED
    return EXIT_OK


def _healthcheck(settings: Settings) -> int:
    from sidecar.health import assess, read_health

    if settings.refresh_interval is None or settings.health_max_age is None:
        print("unhealthy: healthcheck applies to refresh mode (set SIDECAR_REFRESH_INTERVAL)")
        return EXIT_UNEXPECTED
    healthy, message = assess(read_health(settings.output_dir), settings.health_max_age)
    print(message if healthy else f"unhealthy: {message}")
    return EXIT_OK if healthy else EXIT_UNEXPECTED


def _check(settings: Settings, *, as_json: bool) -> int:
    from sidecar.run import check_regions, plan_for

    check_regions(settings)
    calls = plan_for(settings)
    plan: dict[str, Any] = {
        "outputDir": settings.output_dir,
        "calls": [
            {"service": c.service, "region": c.region, "operation": c.operation,
             "targets": [t.describe() for t in c.targets]}
            for c in calls
        ],
        "files": [
            {"name": e.name + ("/<each key>" if e.expand else ""), "mode": f"{e.mode:04o}", "owner": f"{e.uid}:{e.gid}",
             "optional": e.optional,
             "valueFrom": e.value_from or "template of " + ", ".join(f"{n}={vf}" for n, vf, _ in e.inputs)}
            for e in settings.entries
        ],
        "envFile": settings.env_file,
        "warnings": list(settings.warnings),
    }
    if as_json:
        print(json.dumps(plan, indent=2))
        return EXIT_OK
    print(f"configuration is valid: {len(settings.entries)} entries, {len(calls)} API call(s), "
          f"output directory {settings.output_dir}")
    for call in plan["calls"]:
        print(f"  call  {call['service']} {call['operation']} in {call['region']}: {', '.join(call['targets'])}")
    for file in plan["files"]:
        optional = " (optional)" if file["optional"] else ""
        print(f"  file  {file['name']}  mode {file['mode']}  owner {file['owner']}{optional}  <- {file['valueFrom']}")
    if settings.env_file:
        print(f"  file  {settings.env_file}  (env file)  mode {settings.file_mode:04o}  "
              f"owner {settings.uid}:{settings.gid}")
    for warning in settings.warnings:
        print(f"  warning: {warning}")
    return EXIT_OK


def entrypoint() -> None:
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: a call still stuck in a worker thread after the deadline must not hold the task open.
    os._exit(code)
