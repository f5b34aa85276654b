"""Which format a file name implies. The readers: :mod:`._fetch_csv`, :mod:`._fetch_jsonl`,
:mod:`._fetch_parquet`."""

from __future__ import annotations

from pathlib import PurePosixPath

__all__ = ["infer_format"]

_EXTENSIONS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def infer_format(path: str) -> tuple[str | None, bool]:
    """The format a file name implies, and whether it is gzipped: ``x.csv.gz`` is
    ``("csv", True)``; an unknown extension gives ``None``."""
    name = PurePosixPath(path).name.lower()
    gzipped = name.endswith(".gz")
    if gzipped:
        name = name.removesuffix(".gz")
    return _EXTENSIONS.get(PurePosixPath(name).suffix), gzipped
