"""How a value appears in an error message."""

from __future__ import annotations

# Long enough to recognise a value, short enough to keep a message on one line.
MAX_REPR = 60


def show(value: object) -> str:
    """``repr(value)``, cut to :data:`MAX_REPR` characters (ending in "...") when longer.

    Examples:
        raise BadValueError(f"expected str, got {show(value)}", table=..., column=..., row=...)
    """
    text = repr(value)
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."
