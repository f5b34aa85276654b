"""What ``Fetcher.batches`` returns: Arrow record batches that a writer can first tell the
target table's column types, so that the reader parses each column as that type."""

from __future__ import annotations

import functools
import os
import queue
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from ._fetch_errors import Where

if TYPE_CHECKING:
    import pyarrow as pa

    from ._fetch_trail import Traced

__all__ = ["ArrowRead", "read_ahead", "shaped"]

# How long the reading thread waits for room before checking whether the reader was closed.
_POLL_SECONDS = 0.1

#: Opens the read; given the target columns' PostgreSQL base types (empty: infer them).
Open: TypeAlias = "Callable[[Mapping[str, str]], Traced[pa.RecordBatch]]"


class ArrowRead:
    """A replayable source of Arrow record batches.

    Called with no arguments it reads with inferred types. ``PostgresBulkWriter.write`` sees
    :meth:`with_table_types` and, before reading, looks the table up and passes its column
    types: each column is then parsed as ``\\copy`` would parse it into that table.

    Examples:
        .. code-block:: python

            writer.write("cities", fetcher.batches("https://example.com/cities.csv"))
            for batch in fetcher.batches("cities.csv")():   # inferred types
                ...
    """

    def __init__(self, open_: Open) -> None:
        self._open = open_

    def __call__(self) -> Traced[pa.RecordBatch]:
        return self._open({})

    def with_table_types(self, types: Mapping[str, str]) -> Callable[[], Traced[pa.RecordBatch]]:
        """The same read, each column parsed as ``types`` says (target column -> base type,
        e.g. ``int8``, ``bool``, ``timestamptz``, ``numeric``); replayable."""
        return functools.partial(self._open, dict(types))


def shaped(
    batches: Iterator[pa.RecordBatch],
    where: Where,
    *,
    rename: Mapping[str, str],
    columns: Sequence[str] | None,
) -> Iterator[pa.RecordBatch]:
    """``batches`` renamed (source -> target) and narrowed to ``columns`` in that order."""
    names: list[str] | None = None
    for batch in batches:
        if names is None:
            source = batch.schema.names
            if not source and columns is None:
                raise where.error(
                    "holds no data, not even a header; pass columns=[...] to read it as empty"
                )
            if unknown := [c for c in rename if c not in source]:
                raise where.error(f"rename names columns {unknown} that it lacks (it has {source})")
            names = [rename.get(c, c) for c in source]
            if len(set(names)) != len(names):
                raise where.error(f"after rename, columns repeat: {names}")
            if columns is not None and (missing := [c for c in columns if c not in names]):
                raise where.error(f"columns {missing} are not in it (it has {names})")
        batch = batch.rename_columns([rename.get(c, c) for c in batch.schema.names])
        if columns is not None:
            batch = batch.select(list(columns))
        elif batch.schema.names != names:
            # A later file of many with its columns in another order reads in the first's.
            if sorted(batch.schema.names) != sorted(names):
                raise where.error(
                    f"a later file's columns {batch.schema.names} differ from the first's "
                    f"{names}; pass columns=[...] to choose"
                )
            batch = batch.select(names)
        yield batch


def ahead_where_it_helps(
    batches: Generator[pa.RecordBatch, None, None], *, remote: bool
) -> Generator[pa.RecordBatch, None, None]:
    """``batches`` read ahead (:func:`read_ahead`) where a thread of its own has something to
    overlap: the network's waits, or a core that the encoder and a PostgreSQL on the same
    machine leave free. A local file on two cores is decoded in the encoding thread: a
    decoding thread beside them only takes the core the server copies on (1M rows, 12
    interleaved rounds: Parquet 0.85x of the binary COPY ceiling read ahead, 0.92x without;
    CSV files as fast or faster without)."""
    if remote or _cores() > 2:
        return read_ahead(batches)
    return batches


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # sched_getaffinity is Linux's only: macOS, Windows
        return os.cpu_count() or 1


def read_ahead(batches: Iterator[pa.RecordBatch]) -> Generator[pa.RecordBatch, None, None]:
    """``batches``, the next one parsed in a thread of its own while the caller encodes and
    sends this one: parsing (pyarrow, outside the GIL) then overlaps the encoding instead of
    taking turns with it. One batch ahead: memory holds at most one more. Closing this
    iterator stops the thread and closes ``batches`` (its files and connections) there."""
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not put(("batch", batch)):
                    break
            else:
                put(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            put(("error", exc))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="bulk-assets-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join()
