"""When ``Fetcher.batches`` decodes in a thread of its own: over the network, or when the
machine has a core beyond the encoder's and a local server's."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from bulk_assets import _fetch_batches
from bulk_assets._fetch_batches import ahead_where_it_helps

_BATCHES = [pa.record_batch({"n": [i, i + 1]}) for i in range(0, 6, 2)]


def _reading_thread() -> bool:
    return any(t.name == "bulk-assets-read-ahead" for t in threading.enumerate())


@pytest.mark.parametrize(
    ("remote", "cores", "ahead"),
    [(False, 2, False), (False, 1, False), (False, 4, True), (True, 2, True), (True, 1, True)],
)
def test_a_thread_reads_ahead_only_where_it_has_something_to_overlap(
    monkeypatch: pytest.MonkeyPatch, remote: bool, cores: int, ahead: bool
) -> None:
    monkeypatch.setattr(_fetch_batches, "_cores", lambda: cores)
    batches = ahead_where_it_helps((b for b in _BATCHES), remote=remote)
    first = next(batches)
    assert _reading_thread() is ahead
    assert [first, *batches] == _BATCHES
    assert not _reading_thread()  # the thread ends with the batches
