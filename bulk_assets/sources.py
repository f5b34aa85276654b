"""A dataset's rows for one partition, as data the writer can read again on a retry."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._fetch_many import choose_format
from ._fetch_slice import RowSlice
from ._location import fill
from .specs import DatasetSpec, FetchSource

if TYPE_CHECKING:
    from .fetch import Fetcher
    from .partitions import Partition

__all__ = ["rows_for"]

# Formats read as Arrow batches parsed by the table's types when no dtypes are declared;
# JSON Lines keeps the pandas reader, which names a malformed line.
_ARROW_FORMATS = frozenset({"csv", "parquet"})


def rows_for(spec: DatasetSpec, partition: Partition, fetcher: Fetcher) -> Callable[[], Any]:
    """A zero-argument factory of the partition's rows: the writer calls it again to replay
    the source when a transient failure forces a retry of the whole write."""
    source = spec.source
    if isinstance(source, FetchSource):
        location = _format_location(source.location, partition)
        within = None
        if partition.range is not None and source.filters_slice:
            within = RowSlice(partition.range, name=partition.key or "")

        chosen = _format_name(location, source)
        if not source.dtypes and chosen in _ARROW_FORMATS:
            # Arrow batches, each column parsed as the table's column type: the writer looks
            # the table up and tells the reader before reading (see Fetcher.batches).
            return fetcher.batches(
                location,
                format=source.format,
                rename=source.rename or None,
                columns=source.columns,
                chunk_rows=spec.chunk_size,
                null_values=source.null_values,
                read_options=source.read_options or None,
                within=within,
            )
        read_options = dict(source.read_options)
        if source.null_values is not None and (source.format or "csv") == "csv":
            read_options.update(na_values=source.null_values, keep_default_na=False)

        def fetched() -> Any:
            return fetcher.frames(
                location,
                format=source.format,
                rename=source.rename or None,
                dtypes=source.dtypes or None,
                columns=source.columns,
                chunk_rows=spec.chunk_size,
                read_options=read_options or None,
                within=within,
            )

        return fetched
    function = source.function
    if not callable(function):
        raise TypeError(
            f"dataset {spec.name}: generator {function!r} was not resolved to a callable"
        )
    if _takes_argument(function):
        return lambda: function(partition)
    return function


def _format_name(location: str, source: FetchSource) -> str | None:
    try:
        return choose_format(location, source.format)[0].name
    except ValueError:
        return None  # frames() says why, when the dataset is read


def _format_location(location: str, partition: Partition) -> str:
    # The template was checked when the spec was built: its fields exist for this partition.
    return fill(
        location, {"partition_key": partition.key, "start": partition.start, "end": partition.end}
    )


def _takes_argument(function: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters
    )
