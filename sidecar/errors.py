"""The sidecar's error types. Each carries the exit code an operator sees.

Messages are composed from references, names and AWS error codes only: never from a secret value.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_CONFIG = 2
EXIT_FETCH = 3
EXIT_WRITE = 4


class SidecarError(Exception):
    """Root of every expected failure; ``main`` maps it to one log line and its exit code."""

    exit_code = EXIT_UNEXPECTED
    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(SidecarError):
    """The configuration cannot be used as written; nothing was fetched."""

    exit_code = EXIT_CONFIG
    kind = "configuration_error"


class FetchError(SidecarError):
    """A secret could not be fetched, or its value does not match its reference."""

    exit_code = EXIT_FETCH
    kind = "fetch_error"


class WriteError(SidecarError):
    """The files could not be written; the output directory keeps its previous contents."""

    exit_code = EXIT_WRITE
    kind = "write_error"


class Interrupted(SidecarError):
    """SIGTERM or SIGINT arrived before the set was committed; nothing new was written. Exit code 128 plus the
    signal's number, as a shell reports a process the signal ended (143 for SIGTERM, 130 for SIGINT)."""

    kind = "stopped"

    def __init__(self, signal_name: str, signum: int) -> None:
        super().__init__(f"{signal_name} arrived before the new set was committed; the previous contents are "
                         "untouched")
        self.exit_code = 128 + signum
