"""The ``lint-task-definition`` command: read a file (or stdin), lint it, print the report, return the code."""

from __future__ import annotations

import sys
from typing import Final, TextIO

from sidecar.lint import lint
from sidecar.lint.document import UnreadableTaskDefinition, parse_task_definition
from sidecar.lint.report import OutputFormat, counts, render

EXIT_CLEAN: Final = 0  # no error (warnings allowed)
EXIT_ERRORS: Final = 1  # at least one error finding
EXIT_UNREADABLE: Final = 2  # the input cannot be read as a task definition, or cannot be checked
INTERNAL_ERROR: Final = "internal error"
STDIN: Final = "-"


def lint_command(
    path: str,
    output_format: OutputFormat = "text",
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    source = "<stdin>" if path == STDIN else path
    try:
        text = _read(path, stdin or sys.stdin)
        task = parse_task_definition(text, source)
    except UnreadableTaskDefinition as exc:
        print(f"secrets-sidecar lint-task-definition: {exc.message}", file=stderr)
        return EXIT_UNREADABLE
    try:
        findings = lint(task)
    except Exception as exc:
        # Only the exception's type: its text may quote the document, and the document may hold a secret.
        print(
            f"secrets-sidecar lint-task-definition: {INTERNAL_ERROR} while checking {source} "
            f"({type(exc).__name__}); nothing was reported about it, please report this",
            file=stderr,
        )
        return EXIT_UNREADABLE
    stdout.write(render(output_format, source, findings))
    errors, _ = counts(findings)
    return EXIT_ERRORS if errors else EXIT_CLEAN


def _read(path: str, stdin: TextIO) -> str | bytes:
    if path == STDIN:
        try:
            return stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read()
        except UnicodeDecodeError:
            raise UnreadableTaskDefinition("<stdin> is not UTF-8 text") from None
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise UnreadableTaskDefinition(f"cannot read {path}: {exc.strerror}") from None
