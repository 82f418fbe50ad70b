"""The command line's grammar, built from the table of settings: ``secrets-sidecar [run|check|...] [options]``.

A parse error raises ``UsageError`` instead of printing and exiting, so that the CLI decides what to print
and the linter can read the sidecar's command words with the sidecar's own parser, in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
from collections.abc import Sequence
from typing import Final, NoReturn

from sidecar import __version__
from sidecar.errors import ConfigError
from sidecar.settings.options import CONFIG_FILE, OPTIONS, SECRETS, Setting
from sidecar.settings.parsers import suggest

COMMANDS: Final = ("run", "check", "healthcheck", "lint-task-definition", "compose", "iam-policy")
SETTINGS_COMMANDS: Final = ("run", "check", "healthcheck")  # the commands that take the sidecar's settings
LINT_COMMAND: Final = "lint-task-definition"
COMPOSE_COMMAND: Final = "compose"
IAM_POLICY_COMMAND: Final = "iam-policy"
IAM_POLICY_FLAGS: Final = ("--task-definition", "--account", "--kms-key")
EXIT_CODES: Final = """\
exit codes:
  0  every required secret was written (check: the configuration is valid; check --aws:
     every required entry would succeed)
  1  unexpected error (a bug: please report it with the log)
  2  configuration error; nothing was fetched
  3  a secret could not be fetched or did not match its reference
     (not found, access denied, KMS decryption failure, json-key missing, too large,
     retries or deadline exhausted, a role that could not be assumed;
     check --aws: some required entry would fail so)
  4  the files could not be written (output directory missing or not writable, volume
     full or read-only, owner change not permitted); previous contents are untouched
  130, 143  stopped by SIGINT or SIGTERM before the set was committed; nothing was written

Every setting is also read from its SIDECAR_* environment variable and from the JSON file named
by SIDECAR_CONFIG_FILE; flags win over the environment, the environment over the file.
Documentation: docs/configuration.md"""
JSON_FLAG: Final = "--json"
PREFLIGHT_FLAGS: Final = ("--aws", "--read")  # check: ask AWS about each entry (docs/operations.md)
FORMAT_FLAG: Final = "--format"
COMPOSE_FLAGS: Final = ("--moto", "--image", "--no-seed")  # with --output-dir and --region, which settings have
# Every long flag of every command, for "did you mean": from the table, not from argparse's internals.
ALL_FLAGS: Final = (
    *(o.flag for o in OPTIONS), SECRETS.flag, CONFIG_FILE.flag, JSON_FLAG, FORMAT_FLAG, "--version", "--help",
    *COMPOSE_FLAGS, *IAM_POLICY_FLAGS, *PREFLIGHT_FLAGS,
)


class UsageError(ConfigError):
    """The command line does not parse; ``usage`` is the usage line of the (sub)command concerned."""

    def __init__(self, message: str, usage: str, prog: str) -> None:
        super().__init__(message)
        self.usage = usage
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse, raising ``UsageError`` (with the flag a mistyped one was probably meant to be)."""

    def error(self, message: str) -> NoReturn:
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            for word in message[len(prefix) :].split():
                hint = suggest(word.partition("=")[0], sorted(ALL_FLAGS)) if word.startswith("--") else ""
                if hint:
                    message += hint
                    break
        raise UsageError(message, self.format_usage(), self.prog)


def _add_setting(parser: argparse.ArgumentParser, setting: Setting) -> None:
    parser.add_argument(setting.flag, dest=setting.key, metavar=setting.metavar, help=setting.help)


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    for option in OPTIONS:
        common.add_argument(option.flag, dest=option.key, metavar=option.env, help=option.help)
    _add_setting(common, SECRETS)
    _add_setting(common, CONFIG_FILE)

    parser = _Parser(
        prog="secrets-sidecar",
        description="Fetch secrets from AWS Secrets Manager, SSM Parameter Store and S3, and write them as "
        "files with restrictive modes, atomically, before the app container starts.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"secrets-sidecar {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    commands.add_parser(
        "run", parents=[common], help="fetch and write every secret (the default)",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check = commands.add_parser(
        "check", parents=[common], help="validate the configuration and print the plan; no network access "
        "unless --aws",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(JSON_FLAG, action="store_true", help="print the plan (with --aws: the report) as JSON")
    check.add_argument("--aws", action="store_true", help="ask AWS, with the credentials at hand, whether each "
                       "entry would succeed (metadata calls; no value is printed, nothing is written); exit 3 when "
                       "a required entry would fail")
    check.add_argument("--read", action="store_true", help="with --aws: fetch every value and render every file "
                       "as a run would, then discard them (proves GetSecretValue, kms:Decrypt, json keys)")
    commands.add_parser(
        "healthcheck", parents=[common],
        help="refresh mode: exit 0 while the last good refresh is recent (for the ECS container health check)",
    )
    iam = commands.add_parser(
        IAM_POLICY_COMMAND, parents=[common], help="print the task role's least-privilege IAM policy for this "
        "configuration, or for the sidecar of --task-definition; exit 0 printed, 2 unreadable or incomplete "
        "(docs/operations.md)",
    )
    iam.add_argument("--task-definition", dest="task_definition", metavar="FILE",
                     help="read the sidecar's settings from this task definition (- reads stdin); of the settings "
                     "flags, only --region applies: the task's region, unless the container names one")
    iam.add_argument("--account", metavar="ID", help="the task's account, for parameters named without an ARN "
                     "(default: the task definition's taskRoleArn)")
    iam.add_argument("--kms-key", dest="kms_keys", action="append", default=[], metavar="ARN",
                     help="a customer-managed KMS key behind the values (repeatable; * for any key): adds "
                     "kms:Decrypt through Secrets Manager, SSM and S3 only")
    iam.add_argument(JSON_FLAG, action="store_true",
                     help="print {\"taskRole\": policy, \"roles\": {role ARN: policy}} instead of the task "
                     "role's policy")
    lint = commands.add_parser(
        LINT_COMMAND, help="check an ECS task definition (JSON file, or - for stdin) that runs the "
        "sidecar; exit 0 clean or warnings only, 1 errors, 2 unreadable (docs/lint-task-definition.md)",
    )
    lint.add_argument("file", help="task definition JSON, or describe-task-definition output; - reads stdin")
    lint.add_argument(FORMAT_FLAG, choices=("text", "json"), default="text", help="report format (default text)")
    compose = commands.add_parser(
        COMPOSE_COMMAND, help="turn an ECS task definition into a docker-compose project and report what it "
        "cannot map; exit 0 written, 2 unreadable or bad option, 4 not written (docs/run-task-definition-locally.md)",
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


def with_command(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``run`` in front when it names no command (``secrets-sidecar --output-dir ...``)."""
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        return ["run", *argv]
    return list(argv)


@functools.cache
def _shared_parser() -> argparse.ArgumentParser:
    # Parsing leaves no state in the parser, so one serves every call (the linter parses many commands).
    return build_parser()


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; raises ``UsageError``, or ``SystemExit(0)`` after printing --help or --version."""
    return _shared_parser().parse_args(with_command(argv))


def container_command_flags(words: Sequence[str]) -> dict[str, str]:
    """The settings a sidecar container's command (the words after the image's entrypoint) gives as flags,
    read as ``run`` would read them. Raises ``UsageError`` when the words do not parse; --help and --version
    count as not parsing (they print and exit instead of running)."""
    if not words or list(words) in (["run"], ["check"]):
        return {}  # the image's default command: no flag
    if words[0] not in ("run", "check"):
        words = ["run", *words]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return setting_flags(parse_arguments(words))
    except SystemExit:
        raise UsageError("it does not parse", "", "") from None


def setting_flags(arguments: argparse.Namespace) -> dict[str, str]:
    """The settings given as flags, by setting key: what ``load_settings`` takes."""
    keys = (*(o.key for o in OPTIONS), SECRETS.key, CONFIG_FILE.key)
    return {key: value for key in keys if isinstance(value := getattr(arguments, key, None), str)}
