"""How a value appears in an error message."""

from __future__ import annotations

from typing import Any

import numpy as np

# Long enough to recognise a value, short enough to keep a message on one line.
MAX_REPR = 60


def show(value: object) -> str:
    """``repr(value)``, cut to :data:`MAX_REPR` characters (ending in "...") when longer.

    Examples:
        raise BadValueError(f"expected str, got {show(value)}", table=..., column=..., row=...)
    """
    text = repr(value)
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


def first_true(mask: Any) -> int:
    """The position of the first true value of ``mask`` (which has one): the first value a
    vectorised check refused, for the error that names its row."""
    return int(np.flatnonzero(np.asarray(mask, dtype=bool))[0])
