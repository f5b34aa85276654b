"""Deterministic synthetic datasets: the same arguments always give the same rows."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pandas as pd

_EVENT_KINDS = np.array(["view", "click", "signup", "purchase", "refund", "logout"])


def users_frame(start: int, stop: int) -> pd.DataFrame:
    """Users with ids ``start`` .. ``stop - 1``: (id, name, email)."""
    ids = np.arange(start, stop, dtype=np.int64)
    text = ids.astype(str)
    return pd.DataFrame(
        {
            "id": ids,
            "name": np.char.add("User ", text),
            "email": np.char.add(np.char.add("user", text), "@example.com"),
        }
    )


def events_frame(start: dt.datetime, end: dt.datetime, *, rows: int) -> pd.DataFrame:
    """``rows`` events with ``occurred_at`` in [start, end), the same for the same window: the
    random generator is seeded by the window's start."""
    rng = np.random.default_rng(int(start.timestamp()))
    span_us = int((end - start).total_seconds() * 1_000_000)
    offsets = np.sort(rng.integers(0, span_us, size=rows))
    occurred = pd.Timestamp(start).as_unit("us") + pd.to_timedelta(offsets, unit="us")
    raw = rng.integers(0, 256, size=(rows, 16), dtype=np.uint8)
    ids = [str(uuid.UUID(bytes=row.tobytes(), version=4)) for row in raw]
    amount = np.round(rng.gamma(2.0, 20.0, size=rows), 2)
    amount[rng.random(rows) < 0.1] = np.nan
    score = rng.normal(0.0, 1.0, size=rows)
    score[rng.random(rows) < 0.1] = np.nan
    user_id = rng.integers(1, 1_000_001, size=rows)
    kind = _EVENT_KINDS[rng.integers(0, len(_EVENT_KINDS), size=rows)]
    session = pd.array(rng.integers(1, 50_000, size=rows), dtype="Int32")
    session[rng.random(rows) < 0.1] = pd.NA
    pages, refs = rng.integers(1, 100, rows), rng.integers(0, 10, rows)
    payload = [f'{{"page": {p}, "ref": "r{r}"}}' for p, r in zip(pages, refs, strict=True)]
    note = pd.Series([f"note {i}" if i % 7 == 0 else None for i in range(rows)], dtype="str")
    return pd.DataFrame(
        {
            "event_id": ids,
            "occurred_at": occurred,
            "user_id": user_id,
            "kind": kind,
            "amount": amount,
            "score": score,
            "is_test": rng.random(rows) < 0.02,
            "payload": payload,
            "session_id": session,
            "note": note,
        }
    )
