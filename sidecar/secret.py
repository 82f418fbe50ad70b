"""A value type that keeps secret bytes out of logs, reprs and exception text."""

from __future__ import annotations

from typing import Final

REDACTED: Final = "<redacted>"


class SecretBytes:
    """Secret content. Renders as ``<redacted>`` everywhere; ``reveal()`` is the one way out."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = bytes(value)

    def reveal(self) -> bytes:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"SecretBytes({REDACTED}, {len(self._value)} bytes)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretBytes) and other._value == self._value

    def __hash__(self) -> int:
        return hash((SecretBytes, self._value))

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would copy the bytes somewhere we do not control.
        raise TypeError("SecretBytes cannot be pickled")
