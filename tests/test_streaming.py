"""Streaming sources: generators of DataFrames load completely in bounded memory; rows as
tuples, dicts, async generators and factories; a source that fails mid-stream writes nothing;
an empty source writes nothing (and can still create a table)."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _support import KEYED, MODES

from resources import Mode, PostgresBulkWriter, SchemaMismatchError, TerminalWriteError

CHUNK_ROWS = 5_000


def events(db: Any, schema: str) -> None:
    db.execute(
        f'CREATE TABLE "{schema}".events (id bigint PRIMARY KEY, value double precision, '
        "label text)"
    )


def event_frames(chunks: int, rows: int = CHUNK_ROWS, start: int = 0) -> Iterator[pd.DataFrame]:
    """``chunks`` frames of ``rows`` rows, each made when asked for."""
    for c in range(chunks):
        ids = np.arange(start + c * rows, start + (c + 1) * rows, dtype=np.int64)
        yield pd.DataFrame(
            {"id": ids, "value": ids * 0.5, "label": np.char.add("event ", ids.astype(str))}
        )


def totals(db: Any, schema: str, table: str = "events") -> tuple[int, int]:
    row = db.fetch(f'SELECT count(*) AS n, coalesce(sum(id), 0) AS s FROM "{schema}"."{table}"')
    return row[0]["n"], int(row[0]["s"])


def peak_during(write: Callable[[], Any]) -> tuple[Any, int]:
    """The result of ``write`` and the peak of Python allocations (all threads) while it ran."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        result = write()
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    return result, peak


def measures(db: Any, schema: str, *tables: str) -> None:
    for table in tables:
        db.execute(
            f'CREATE TABLE "{schema}"."{table}" (id bigint, value double precision, flag boolean)'
        )


def measure_frames(chunks: int) -> Iterator[pd.DataFrame]:
    """``chunks`` frames of CHUNK_ROWS rows and three numeric columns, made when asked for."""
    for c in range(chunks):
        ids = np.arange(c * CHUNK_ROWS, (c + 1) * CHUNK_ROWS, dtype=np.int64)
        yield pd.DataFrame({"id": ids, "value": ids * 0.5, "flag": ids % 3 == 0})


def test_generator_of_200_chunks_loads_completely_in_flat_memory(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """200 chunks of 5,000 rows all arrive (exact count and sum of ids), and the peak of Python
    allocations during the write stays where it is for 50 chunks: memory is bounded by the
    chunk, not by the total."""
    measures(db, schema, "warmup", "fifty", "two_hundred")
    # Warm up the pool, statement caches and lazy imports outside the measurements.
    writer.write("warmup", measure_frames(3), schema=schema)

    _, peak_50 = peak_during(lambda: writer.write("fifty", measure_frames(50), schema=schema))
    result, peak_200 = peak_during(
        lambda: writer.write("two_hundred", measure_frames(200), schema=schema)
    )

    n = 200 * CHUNK_ROWS
    assert result.rows == n
    assert result.chunks == 200
    assert totals(db, schema, "two_hundred") == (n, n * (n - 1) // 2)
    assert totals(db, schema, "fifty") == (50 * CHUNK_ROWS, sum(range(50 * CHUNK_ROWS)))
    assert peak_200 <= 1.5 * peak_50, f"peak {peak_200:,} B for 200 chunks, {peak_50:,} B for 50"


# -- every shape of source ---------------------------------------------------------------------

ROWS = 2_500
EXPECTED = [(i, i * 0.5, f"event {i}") for i in range(ROWS)]


def tuple_rows() -> Iterator[tuple[int, float, str]]:
    for i in range(ROWS):
        yield (i, i * 0.5, f"event {i}")


def dict_rows() -> Iterator[dict[str, Any]]:
    for i in range(ROWS):
        yield {"label": f"event {i}", "id": i, "value": i * 0.5}


async def async_frames() -> AsyncIterator[pd.DataFrame]:
    for frame in event_frames(5, rows=ROWS // 5):
        await asyncio.sleep(0)
        yield frame


async def async_tuples() -> AsyncIterator[tuple[int, float, str]]:
    for row in tuple_rows():
        if row[0] % 500 == 0:
            await asyncio.sleep(0)
        yield row


SOURCES: dict[str, tuple[Callable[[], Any], list[str] | None]] = {
    # name: (make the data, columns=)
    "list-of-tuples": (lambda: list(tuple_rows()), ["id", "value", "label"]),
    "generator-of-tuples": (tuple_rows, ["id", "value", "label"]),
    "generator-of-dicts": (dict_rows, None),
    "list-of-dicts": (lambda: list(dict_rows()), None),
    "generator-of-frames": (lambda: event_frames(5, rows=ROWS // 5), None),
    "list-of-frames": (lambda: list(event_frames(5, rows=ROWS // 5)), None),
    "async-generator-of-frames": (async_frames, None),
    "async-generator-of-tuples": (async_tuples, ["id", "value", "label"]),
    "factory-of-a-generator": (lambda: lambda: event_frames(5, rows=ROWS // 5), None),
    "factory-of-a-frame": (lambda: lambda: next(event_frames(1, rows=ROWS)), None),
    "factory-of-tuples": (lambda: tuple_rows, ["id", "value", "label"]),
}


@pytest.mark.parametrize("api", ["write", "awrite"])
@pytest.mark.parametrize("source", SOURCES)
def test_every_source_shape_loads_every_row(
    source: str, api: str, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Tuples (named by columns=), dicts, DataFrames, in lists, generators and async
    generators, or made by a factory: every row arrives, in chunks of chunk_size."""
    events(db, schema)
    make, columns = SOURCES[source]
    kwargs: dict[str, Any] = {"columns": columns, "schema": schema, "chunk_size": 1_000}

    if api == "write":
        result = writer.write("events", make(), **kwargs)
    else:

        async def main() -> Any:
            return await writer.awrite("events", make(), **kwargs)

        result = asyncio.run(main())

    assert result.rows == ROWS
    assert result.chunks >= 3
    rows = db.fetch(f'SELECT id, value, label FROM "{schema}".events ORDER BY id')
    assert [tuple(r) for r in rows] == EXPECTED


@pytest.mark.parametrize("mode", MODES)
def test_tuple_rows_in_every_mode(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """A generator of tuples with columns= works in every mode, keys included."""
    events(db, schema)
    if mode == "update":
        db.execute(
            f"INSERT INTO \"{schema}\".events SELECT g, 0, 'old' "
            f"FROM generate_series(0, {ROWS - 1}) g"
        )
    result = writer.write(
        "events",
        tuple_rows(),
        mode=mode,
        columns=["id", "value", "label"],
        key_columns=["id"] if mode in KEYED else None,
        schema=schema,
        chunk_size=700,
    )
    assert result.rows == result.rows_affected == ROWS
    assert result.chunks == 4
    rows = db.fetch(f'SELECT id, value, label FROM "{schema}".events ORDER BY id')
    assert [tuple(r) for r in rows] == EXPECTED


@pytest.mark.parametrize("source", ["frame", "generator-of-frames"])
def test_columns_selects_the_dataframe_columns_to_write(
    source: str, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """columns= picks the DataFrame columns to write (others are left out), whether the data is
    one DataFrame or a stream of them."""
    events(db, schema)
    frame = next(event_frames(1, rows=10)).assign(scratch=range(10))
    data = frame if source == "frame" else iter([frame.iloc[:5], frame.iloc[5:]])

    result = writer.write("events", data, columns=["id", "label"], schema=schema)

    assert result.columns == ("id", "label")
    rows = db.fetch(f'SELECT id, value, label FROM "{schema}".events ORDER BY id')
    assert [tuple(r) for r in rows] == [(i, None, f"event {i}") for i in range(10)]


# -- a source that fails mid-stream ------------------------------------------------------------


class SourceBroke(Exception):
    """Raised by a test source, to be recognised on the other side of the writer."""


def breaking_frames() -> Iterator[pd.DataFrame]:
    yield from event_frames(3, rows=1_000)
    raise SourceBroke("the source broke after 3 chunks (disk on fire)")


async def breaking_async_frames() -> AsyncIterator[pd.DataFrame]:
    for frame in event_frames(3, rows=1_000):
        await asyncio.sleep(0)
        yield frame
    raise SourceBroke("the source broke after 3 chunks (disk on fire)")


@pytest.mark.parametrize("source", ["generator", "async-generator", "factory"])
@pytest.mark.parametrize("mode", MODES)
def test_source_failing_mid_stream_propagates_and_writes_nothing(
    mode: Mode, source: str, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """The source's own exception, message intact, reaches the caller after 3 chunks were
    sent, and the table is as it was."""
    events(db, schema)
    # Keyed modes find ids 0..4999 already there; the appending modes add new ids.
    first = 0 if mode in KEYED else 10_000
    db.execute(
        f"INSERT INTO \"{schema}\".events SELECT g, 1, 'before' "
        f"FROM generate_series({first}, {first + 4_999}) g"
    )
    before = db.fetch(f'SELECT * FROM "{schema}".events ORDER BY id')
    data: Any = {
        "generator": breaking_frames(),
        "async-generator": breaking_async_frames(),
        "factory": breaking_frames,
    }[source]

    with pytest.raises(SourceBroke, match=r"^the source broke after 3 chunks \(disk on fire\)$"):
        writer.write(
            "events",
            data,
            mode=mode,
            key_columns=["id"] if mode in KEYED else None,
            schema=schema,
            chunk_size=1_000,
        )

    assert db.fetch(f'SELECT * FROM "{schema}".events ORDER BY id') == before


@pytest.mark.parametrize("mode", ["copy", "upsert"])
def test_source_failing_late_during_one_long_copy_raises_its_own_exception(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Large chunks stream through one COPY that reads the source as it goes; a failure a
    moment after the third chunk surfaces inside that COPY. The caller still gets the very
    exception the source raised (not a write error wrapping it), and nothing is written."""
    events(db, schema)
    raised: list[SourceBroke] = []

    def late_failure() -> Iterator[pd.DataFrame]:
        yield from event_frames(3, rows=300_000)
        time.sleep(0.3)
        raised.append(SourceBroke("the source broke late"))
        raise raised[0]

    with pytest.raises(SourceBroke) as caught:
        writer.write(
            "events",
            late_failure(),
            mode=mode,
            key_columns=["id"] if mode in KEYED else None,
            schema=schema,
            chunk_size=300_000,
        )
    assert caught.value is raised[0]
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".events') == 0


def test_source_failing_mid_stream_with_commit_chunk_keeps_the_chunks_before(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """With commit="chunk" the 3 chunks sent before the failure stay, and the source's own
    exception reaches the caller."""
    events(db, schema)
    with pytest.raises(SourceBroke, match="disk on fire"):
        writer.write("events", breaking_frames(), schema=schema, commit="chunk")
    assert totals(db, schema) == (3_000, sum(range(3_000)))


# -- empty sources -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "empty",
    ["empty-frame", "empty-list", "empty-generator", "generator-of-empty-frames"],
)
@pytest.mark.parametrize("mode", MODES)
def test_empty_source_writes_nothing(
    mode: Mode, empty: str, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """No rows: rows=0, chunks=0, and the table keeps its rows."""
    events(db, schema)
    db.execute(f"INSERT INTO \"{schema}\".events VALUES (1, 1, 'kept')")
    frame = next(event_frames(1, rows=0))
    data: Any = {
        "empty-frame": frame,
        "empty-list": [],
        "empty-generator": iter(()),
        "generator-of-empty-frames": iter([frame, frame.copy()]),
    }[empty]

    result = writer.write(
        "events", data, mode=mode, key_columns=["id"] if mode in KEYED else None, schema=schema
    )

    assert (result.rows, result.chunks, result.rows_affected) == (0, 0, 0)
    assert [tuple(r) for r in db.fetch(f'SELECT * FROM "{schema}".events')] == [(1, 1.0, "kept")]


@pytest.mark.parametrize("mode", MODES)
def test_empty_typed_frame_with_create_makes_the_table(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """An empty frame still has dtypes: with create=True the table is made from them, empty."""
    frame = pd.DataFrame(
        {
            "id": pd.Series([], dtype="int64"),
            "ratio": pd.Series([], dtype="float32"),
            "at": pd.Series([], dtype="datetime64[us, UTC]"),
            "name": pd.Series([], dtype="string"),
        }
    )

    result = writer.write("fresh", frame, mode=mode, key_columns=["id"], schema=schema, create=True)

    assert result.rows == 0
    assert result.created is True
    types = db.fetch(
        "SELECT attname, format_type(atttypid, atttypmod) AS t FROM pg_attribute "
        "WHERE attrelid = to_regclass($1) AND attnum > 0 ORDER BY attnum",
        f'"{schema}".fresh',
    )
    assert [(r["attname"], r["t"]) for r in types] == [
        ("id", "bigint"),
        ("ratio", "real"),
        ("at", "timestamp with time zone"),
        ("name", "text"),
    ]
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".fresh') == 0


# -- shapes that cannot be written -------------------------------------------------------------

COLUMNS = ["id", "value", "label"]
BAD_SHAPES: dict[str, tuple[Callable[[], Any], list[str] | None, str]] = {
    # name: (data, columns=, a word of the message)
    "tuples-without-columns": (lambda: iter([(1, 0.5, "x")]), None, "columns"),
    "tuple-of-the-wrong-width": (lambda: iter([(1, 0.5, "x"), (2, 1.0)]), COLUMNS, "row 1"),
    "dicts-with-different-keys": (lambda: iter([{"id": 1}, {"id": 2, "value": 1}]), None, "row 1"),
    "frames-and-rows-mixed": (
        lambda: iter([next(event_frames(1, rows=2)), (5, 1.0, "x")]),
        None,
        "mixes",
    ),
    "a-bare-string": (lambda: "id,value\n1,2", None, "str"),
}


@pytest.mark.parametrize("shape", BAD_SHAPES)
def test_unusable_shapes_are_refused_and_write_nothing(
    shape: str, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Data whose shape cannot be read as rows is a TerminalWriteError naming the problem."""
    events(db, schema)
    make, columns, word = BAD_SHAPES[shape]
    with pytest.raises(TerminalWriteError, match=word):
        writer.write("events", make(), columns=columns, schema=schema)
    assert totals(db, schema) == (0, 0)


@pytest.mark.parametrize(
    ("later", "named"),
    [
        (lambda f: f.assign(extra=1), "extra"),  # a column that appears
        (lambda f: f.drop(columns=["label"]), "label"),  # a column that disappears
    ],
)
def test_chunks_whose_columns_change_are_refused(
    later: Callable[[pd.DataFrame], pd.DataFrame],
    named: str,
    writer: PostgresBulkWriter,
    db: Any,
    schema: str,
) -> None:
    """Later chunks must carry the first chunk's columns: nothing is dropped or NULLed
    silently, and nothing is written."""
    events(db, schema)
    first, second = event_frames(2)
    with pytest.raises(SchemaMismatchError) as caught:
        writer.write("events", [first, later(second)], schema=schema)
    assert named in str(caught.value) and f"row {CHUNK_ROWS}" in str(caught.value)
    assert totals(db, schema) == (0, 0)


def test_chunks_may_order_their_columns_differently(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    events(db, schema)
    first, second = event_frames(2)
    writer.write("events", [first, second[["label", "id", "value"]]], schema=schema)
    stored = db.fetch(f'SELECT id, label FROM "{schema}".events WHERE id = $1', CHUNK_ROWS)
    assert stored[0]["label"] == f"event {CHUNK_ROWS}"


def test_progress_lines_are_throttled_by_time_not_chunks(
    writer: PostgresBulkWriter, db: Any, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Each progress line is a row in Dagster's event log: a write of 40 chunks reports at
    most once per 2 s since it began, not once per chunk, and its summary says the rest."""
    events(db, schema)
    with caplog.at_level(logging.INFO, logger="resources.postgres_bulk_writer"):
        result = writer.write("events", event_frames(40, rows=100), schema=schema, chunk_size=100)
    assert result.chunks == 40
    lines = [r for r in caplog.records if "rows so far" in r.getMessage()]
    assert len(lines) <= int(result.seconds / 2.0)


def test_a_write_longer_than_the_interval_reports_progress(
    writer: PostgresBulkWriter, db: Any, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    events(db, schema)

    def slow() -> Iterator[pd.DataFrame]:
        frames = event_frames(2, rows=100)
        yield next(frames)
        # Past the 2 s between progress lines: the second chunk's line goes out.
        time.sleep(2.1)
        yield next(frames)

    with caplog.at_level(logging.INFO, logger="resources.postgres_bulk_writer"):
        writer.write("events", slow(), schema=schema, chunk_size=100)
    lines = [r.getMessage() for r in caplog.records if "rows so far" in r.getMessage()]
    assert len(lines) == 1 and "chunk 2 written" in lines[0] and "200 rows so far" in lines[0]
