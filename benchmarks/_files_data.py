"""The files of the ``files`` section: one wide CSV and Parquet (12 columns of every common type,
NULLs in most) and one CSV of integers and short text, generated with Arrow, deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

#: The wide table: what `fetcher.batches` parses by these types, and \copy reads as text.
WIDE_DDL = (
    "(id bigint, qty integer, big bigint, price double precision, amount numeric(12, 2), "
    "active boolean, name text, created_at timestamptz, day date, ref uuid, doc jsonb, "
    "note text)"
)
NARROW_DDL = "(id bigint, a integer, b bigint, code text, label text)"
# Rows generated and written at a time: bounds the generator's own memory.
_BLOCK = 250_000
# 2026-01-01 in microseconds after 1970.
_T0 = 1_767_225_600_000_000


def _nulls(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    return rng.random(n) < share


def wide_block(start: int, n: int) -> pa.Table:
    rng = np.random.default_rng(start)
    ids = np.arange(start, start + n, dtype=np.int64)
    cents = rng.integers(-10_000_000, 10_000_000, n)
    amount = pc.binary_join_element_wise(
        pa.array((cents // 100).astype(str)),
        pa.array(np.char.zfill(np.abs(cents % 100).astype(str), 2)),
        ".",
    )
    hexes = rng.integers(0, 2**63, (n, 2)).astype(np.uint64)
    raw = np.char.zfill(np.char.mod("%x", hexes[:, 0]), 16)
    raw2 = np.char.zfill(np.char.mod("%x", hexes[:, 1]), 16)
    uuids = [
        f"{a[:8]}-{a[8:12]}-{a[12:16]}-{b[:4]}-{b[4:16]}" for a, b in zip(raw, raw2, strict=True)
    ]
    docs = pc.binary_join_element_wise(
        '{"k": ', pa.array(ids.astype(str)), ', "tags": ["a", "b"]}', ""
    )
    return pa.table(
        {
            "id": ids,
            "qty": pa.array(rng.integers(0, 1000, n, dtype=np.int32), mask=_nulls(rng, n, 0.1)),
            "big": pa.array(rng.integers(-(2**62), 2**62, n), mask=_nulls(rng, n, 0.1)),
            "price": pa.array(rng.random(n) * 1000, mask=_nulls(rng, n, 0.1)),
            "amount": pc.if_else(
                pa.array(_nulls(rng, n, 0.1)), pa.scalar(None, pa.string()), amount
            ),
            "active": pa.array(rng.random(n) < 0.5, mask=_nulls(rng, n, 0.05)),
            "name": pa.array([f"name {i}" for i in ids.tolist()], pa.string()),
            "created_at": pa.array(
                _T0 + rng.integers(0, 86_400_000_000 * 365, n), pa.timestamp("us", tz="UTC")
            ),
            "day": pa.array(
                (20_454 + rng.integers(0, 365, n)).astype(np.int32),
                pa.date32(),
                mask=_nulls(rng, n, 0.1),
            ),
            "ref": pa.array(uuids, mask=_nulls(rng, n, 0.1)),
            "doc": pc.if_else(pa.array(_nulls(rng, n, 0.2)), pa.scalar(None, pa.string()), docs),
            "note": pa.array(
                [f"note {i % 977}" for i in ids.tolist()], pa.string(), mask=_nulls(rng, n, 0.3)
            ),
        }
    )


def narrow_block(start: int, n: int) -> pa.Table:
    rng = np.random.default_rng(start)
    ids = np.arange(start, start + n, dtype=np.int64)
    return pa.table(
        {
            "id": ids,
            "a": rng.integers(0, 2**31 - 1, n, dtype=np.int32),
            "b": rng.integers(-(2**62), 2**62, n),
            "code": pa.array([f"c{i % 9973}" for i in ids.tolist()]),
            "label": pa.array([f"label {i % 101}" for i in ids.tolist()]),
        }
    )


def write_csv(path: Path, rows: int, *, wide: bool) -> None:
    """The CSV as people export it: a header, NULL as an empty field, ISO timestamps."""
    block = wide_block if wide else narrow_block
    options = pcsv.WriteOptions(quoting_style="needed")
    first = block(0, min(_BLOCK, rows))
    with pcsv.CSVWriter(str(path), first.schema, write_options=options) as writer:
        writer.write_table(first)
        for start in range(_BLOCK, rows, _BLOCK):
            writer.write_table(block(start, min(_BLOCK, rows - start)))


def write_parquet(path: Path, rows: int) -> None:
    """The wide rows as Parquet, ``amount`` as decimal(12, 2) as database exports write it."""
    first = _with_decimal(wide_block(0, min(_BLOCK, rows)))
    with pq.ParquetWriter(str(path), first.schema) as writer:
        writer.write_table(first)
        for start in range(_BLOCK, rows, _BLOCK):
            writer.write_table(_with_decimal(wide_block(start, min(_BLOCK, rows - start))))


def _with_decimal(table: pa.Table) -> pa.Table:
    index = table.schema.get_field_index("amount")
    return table.set_column(index, "amount", table.column(index).cast(pa.decimal128(12, 2)))
