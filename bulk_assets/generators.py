"""Deterministic synthetic datasets: the same arguments always give the same rows."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd


def users_frame(start: int, stop: int) -> pd.DataFrame:
    """Users ``start`` .. ``stop - 1`` of the users table: (name, email)."""
    ids = np.arange(start, stop).astype(str)
    return pd.DataFrame(
        {
            "name": np.char.add("User ", ids),
            "email": np.char.add(np.char.add("user", ids), "@example.com"),
        }
    )


def users_chunks(count: int, *, chunk_size: int, start: int = 0) -> Iterator[pd.DataFrame]:
    """``count`` users in frames of at most ``chunk_size`` rows, generated lazily so that memory
    stays bounded by one chunk."""
    for first in range(start, start + count, chunk_size):
        yield users_frame(first, min(first + chunk_size, start + count))
