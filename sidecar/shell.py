"""POSIX shell quoting: the one implementation behind the env file's values and the template's ``sh`` filter."""

from __future__ import annotations


def shell_quoted(value: bytes) -> bytes:
    """``value`` as one POSIX sh word. Single quotes keep every byte literal; a quote itself is closed, escaped
    and reopened. (NUL cannot be in a shell word: callers refuse it.)"""
    return b"'" + value.replace(b"'", b"'\\''") + b"'"


def shell_quoted_text(text: str) -> str:
    """``shell_quoted`` for text; surrogatepass, so that any ``str`` round-trips unchanged."""
    return shell_quoted(text.encode("utf-8", "surrogatepass")).decode("utf-8", "surrogatepass")
