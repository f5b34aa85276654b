"""A write's running totals, and the run-log line that reports them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

# Seconds between progress lines of one write.
REPORT_EVERY = 2.0

if TYPE_CHECKING:
    from ._chunks import Chunk
    from ._request import WriteRequest


class Log(Protocol):
    """Where progress goes: a Dagster run log (``context.log``) or a ``logging.Logger``."""

    def info(self, msg: str, *args: Any) -> Any: ...

    def warning(self, msg: str, *args: Any) -> Any: ...


@dataclass(slots=True)
class Stats:
    rows: int = 0
    affected: int = 0
    chunks: int = 0
    duplicates: int = 0
    deleted: int = 0
    rejected: int = 0
    rejects_table: str | None = None
    created: bool = False
    columns: tuple[str, ...] = ()
    table: str = ""
    started: float = field(default_factory=time.perf_counter)
    maxima: dict[str, int] = field(default_factory=dict)
    #: When the last progress line went out (None: none yet).
    reported: float | None = None

    def add(self, chunk: Chunk, affected: int) -> None:
        self.rows += chunk.rows
        self.affected += affected
        self.chunks += 1
        self.duplicates += chunk.duplicates
        self.rejected += len(chunk.rejects)
        self.rejects_table = chunk.rejects_table or self.rejects_table
        for name, value in chunk.maxima.items():
            self.maxima[name] = max(value, self.maxima.get(name, value))


def report(log: Log, request: WriteRequest, stats: Stats) -> None:
    """A progress line for the run log, once REPORT_EVERY seconds have passed since the write
    began or since the last line: each line is a row in Dagster's event storage. A write done
    sooner says everything in its summary line; reporting its first chunk too cost the
    single-run backfill of 100 ``users`` partitions 100 of its 523 event-log rows."""
    now = time.perf_counter()
    if now - (stats.started if stats.reported is None else stats.reported) < REPORT_EVERY:
        return
    stats.reported = now
    elapsed = now - stats.started
    rate = stats.rows / elapsed if elapsed > 0 else 0.0
    log.info(
        "%s: chunk %d written (%s): %s rows so far, %s rows/s%s",
        stats.table or request.display,
        stats.chunks,
        request.mode,
        f"{stats.rows:,}",
        f"{rate:,.0f}",
        f"; {stats.rejected:,} bad rows set aside in {stats.rejects_table}"
        if stats.rejected
        else "",
    )
