"""Materialization metadata for a write: what was written, how fast, into what."""

from __future__ import annotations

from typing import Any

from dagster import MetadataValue

from resources import WriteResult


def write_metadata(result: WriteResult) -> dict[str, Any]:
    return {
        "dagster/row_count": MetadataValue.int(result.rows),
        "table": MetadataValue.text(result.table),
        "mode": MetadataValue.text(result.mode),
        "chunks": MetadataValue.int(result.chunks),
        "seconds": MetadataValue.float(round(result.seconds, 3)),
        "rows_per_second": MetadataValue.float(round(result.rows_per_second, 1)),
        "rows_affected": MetadataValue.int(result.rows_affected),
        "attempts": MetadataValue.int(result.attempts),
    }
