"""Structured logging: one JSON object per line on stdout (CloudWatch via awslogs), or a console format.

Secret values cannot reach a log line: ``SecretBytes`` renders as ``<redacted>``, raw ``bytes`` are never
rendered, and exception output is plain text without stack locals.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import FilteringBoundLogger

from sidecar.secret import REDACTED, SecretBytes

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def redact(_logger: object, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        event[key] = _redacted(value)
    return event


def _redacted(value: object) -> object:
    """``value`` with every secret or raw-bytes value inside it, at any depth, replaced by ``<redacted>``.
    Containers are copied, never changed in place: they may belong to the caller."""
    if isinstance(value, SecretBytes | bytes | bytearray | memoryview):
        return REDACTED
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redacted(item) for item in value]
    return value


def configure(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> FilteringBoundLogger:
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
        if fmt == "console"
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    if fmt != "console":
        processors.append(structlog.processors.format_exc_info)  # plain text; never show_locals
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
    logger: FilteringBoundLogger = structlog.get_logger("secrets-sidecar")  # the wrapper_class above
    return logger


def line_writer(stream: TextIO | None = None) -> Callable[[str], None]:
    """Writes whole lines that are not events (the metrics line) to the log's stream, under the lock structlog
    takes for each event on that stream: no line lands inside another, whichever threads write."""
    return structlog.PrintLogger(stream or sys.stdout).msg
