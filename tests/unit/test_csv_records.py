"""Cutting a CSV byte stream into whole records, checked against a plain reference split on
random input: quotes, doubled quotes, newlines inside quotes, blocks cut anywhere."""

from __future__ import annotations

import io
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulk_assets._fetch_csv import _Records
from bulk_assets._fetch_errors import FetchError, Where
from bulk_assets._fetch_source import Bytes


class Trickle(io.BytesIO):
    """A stream that hands out at most ``block`` bytes a read, as a network would."""

    def __init__(self, data: bytes, block: int) -> None:
        super().__init__(data)
        self.block = block

    def read(self, size: int | None = -1) -> bytes:
        return super().read(self.block if size is None or size < 0 else min(size, self.block))


def reference(data: bytes) -> list[bytes]:
    """Records as a newline outside quotes ends them (the last one may lack a newline)."""
    out, start, quoted = [], 0, False
    for i, byte in enumerate(data):
        if byte == ord('"'):
            quoted = not quoted
        elif byte == ord("\n") and not quoted:
            out.append(data[start : i + 1])
            start = i + 1
    if start < len(data):
        out.append(data[start:])
    return out


_FIELD = st.one_of(
    st.text(alphabet="ab,1 ", max_size=6),
    st.builds(lambda t: '"' + t.replace('"', '""') + '"', st.text(alphabet='ab\n,"', max_size=6)),
)
_FILE = st.lists(st.lists(_FIELD, min_size=1, max_size=4).map(",".join), max_size=40).map(
    lambda rows: "\n".join(rows).encode()
)


@settings(max_examples=300, deadline=None)
@given(data=_FILE, block=st.integers(1, 64), rows=st.integers(1, 7), size=st.integers(0, 80))
def test_records_are_cut_where_a_newline_outside_quotes_ends_them(
    data: bytes, block: int, rows: int, size: int
) -> None:
    records = _Records(
        cast(Bytes, Trickle(data, block)), Where("x.csv", "csv"), quote=ord('"'), max_record=1 << 20
    )
    got, lines = [], []
    while (batch := records.take(rows, size)) is not None:
        lines.append(records.line)
        got.append(batch)
    expected = reference(data)
    assert b"".join(got) == data
    cut = [r for batch in got for r in reference(batch)]
    assert cut == expected  # every batch holds whole records
    assert all(len(reference(b)) <= rows for b in got)
    assert all(len(b) <= size or len(reference(b)) == 1 for b in got)
    assert lines == [1 + sum(b.count(b"\n") for b in got[: i + 1]) for i in range(len(got))]


def test_a_record_over_the_limit_is_refused_by_its_line() -> None:
    data = b'a,b\n1,"x\ny"\n2,' + b"z" * 100 + b"\n"
    records = _Records(
        cast(Bytes, io.BytesIO(data)), Where("x.csv", "csv"), quote=ord('"'), max_record=50
    )
    with pytest.raises(FetchError, match="line 4: a record longer than max_line_bytes=50"):
        while records.take(10, 1 << 20) is not None:
            pass
