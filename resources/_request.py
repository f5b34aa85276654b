"""What one write asks for, checked before anything connects."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypedDict

from ._identifiers import check_identifier
from ._modes import WriteMode, write_mode
from .errors import SchemaMismatchError
from .key_range import KeyRange
from .write_result import Mode

Commit = Literal["write", "chunk"]


OnBadRows = Literal["fail", "quarantine"]


class Named(Protocol):
    """What errors name: the table, or a statement."""

    @property
    def display(self) -> str: ...


class Target(Named, Protocol):
    """What a round trip works for: named in its errors, limited in time."""

    @property
    def round_trip_timeout(self) -> float | None: ...

    @property
    def set_local(self) -> str:
        """SQL that applies the writer's limits right after BEGIN; empty when the connection
        got them at startup (see :class:`~resources._limits.SessionLimits`)."""
        ...


class WriteOptions(TypedDict, total=False):
    """The keyword-only options of ``write`` and ``awrite``, after the table and the data.

    mode: ``copy`` (binary COPY, the default and fastest), ``executemany``, ``insert``
        (multi-row INSERT), ``update`` (set the other columns of rows matched by
        ``key_columns``) or ``upsert`` (insert, or update on a ``key_columns`` conflict).
    key_columns: the columns that identify a row, for ``update`` and ``upsert`` (and the
        primary key of a table made with ``create=True``).
    columns: the names of tuple fields, or the DataFrame columns to write.
    chunk_size: rows per chunk; default: the resource's ``chunk_size``.
    schema: the table's schema; default: the connection's ``search_path``.
    create: create a missing table from the data's dtypes.
    commit: ``"write"`` (default): one transaction for the whole write, nothing is visible
        until all of it is. ``"chunk"``: one transaction per chunk, for loads too long to
        hold one transaction open (locks, WAL, vacuum horizon); a failure keeps the chunks
        committed before it, and the error says how many rows.
    replace: ``True`` empties the table first, in the same transaction: a full refresh whose
        new rows become visible all at once. A :class:`KeyRange` deletes just the rows in
        that range (a partition's slice) and refuses new rows outside it, so running the
        same range again gives the same table; writers of one range take turns. Appending
        modes and ``commit="write"`` only.
    on_bad_rows: ``"fail"`` (default): a bad value fails the whole write. ``"quarantine"``:
        rows with a value the contract or the server refuses (type, NOT NULL, unique, check,
        foreign key, a trigger's RAISE) are set aside, with the error, column and row number,
        in ``rejects_table`` in the same transaction; the good rows load.
    rejects_table: where quarantined rows go; default ``<table>__rejects``, created in the
        table's schema if missing.
    native_partitions: with a KeyRange ``replace``, use PostgreSQL's own partitions: a
        table made by ``create=True`` is ``PARTITION BY RANGE`` on the range's column, and
        the child whose bounds equal the range is emptied by TRUNCATE and loaded by COPY
        FREEZE (created and ATTACHed on its first load) instead of DELETEd row by row. Where
        that cannot work (bounds straddling children, rows of the range in a DEFAULT
        partition, another partition key) the replace DELETEs, and the run log says why.
    """

    mode: Mode
    key_columns: Sequence[str] | str | None
    columns: Sequence[str] | None
    chunk_size: int | None
    schema: str | None
    create: bool
    commit: Commit
    replace: bool | KeyRange
    on_bad_rows: OnBadRows
    rejects_table: str | None
    native_partitions: bool


@dataclass(slots=True)
class WriteRequest:
    table: str
    data: Any
    mode: Mode
    key_columns: tuple[str, ...]
    columns: tuple[str, ...] | None
    chunk_size: int
    schema: str | None
    create: bool
    commit: Commit
    replace: bool | KeyRange
    retries: int
    round_trip_timeout: float | None
    on_bad_rows: OnBadRows = "fail"
    rejects_table: str | None = None
    set_local: str = ""
    native_partitions: bool = False
    #: Where a row of the write came from (file, line), when the data can say: for the
    #: error of each row set aside by quarantine.
    locate: Callable[[int], str | None] | None = None

    def __post_init__(self) -> None:
        """Refuse what cannot work before anything connects."""
        mode = write_mode(self.mode)
        if self.commit not in ("write", "chunk"):
            raise ValueError(f"commit must be 'write' or 'chunk', got {self.commit!r}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {self.chunk_size}")
        if mode.needs_keys and not self.key_columns:
            raise SchemaMismatchError(
                f"mode={self.mode!r} needs key_columns to match rows of {self.display}",
                table=self.display,
            )
        if self.replace is not False and (self.commit == "chunk" or not mode.appends):
            raise ValueError(
                "replace empties the table (or the KeyRange) inside the write's one "
                "transaction: it needs commit='write' and an appending mode, got "
                f"commit={self.commit!r}, mode={self.mode!r}"
            )
        if self.native_partitions and not isinstance(self.replace, KeyRange):
            raise ValueError(
                "native_partitions replaces one partition's slice: it needs "
                f"replace=KeyRange(...), got replace={self.replace!r}"
            )
        if self.on_bad_rows not in ("fail", "quarantine"):
            raise ValueError(
                f"on_bad_rows must be 'fail' or 'quarantine', got {self.on_bad_rows!r}"
            )
        if not isinstance(self.replace, bool | KeyRange):
            raise TypeError(
                f"replace must be True, False or a KeyRange, got {type(self.replace).__name__}"
            )
        # A name PostgreSQL would truncate could write another table: refused before
        # anything connects.
        check_identifier(self.table, what="table name")
        if self.schema is not None:
            check_identifier(self.schema, what="schema name")
        if self.rejects_table is not None:
            check_identifier(self.rejects_table, what="rejects_table")
        for column in (*self.key_columns, *(self.columns or ())):
            check_identifier(column, what="column name")
        if isinstance(self.replace, KeyRange):
            check_identifier(self.replace.column, what="KeyRange column")

    @classmethod
    def of(
        cls,
        table: str,
        data: Any,
        options: WriteOptions,
        *,
        chunk_size: int,
        retries: int,
        round_trip_timeout: float | None,
        set_local: str = "",
    ) -> WriteRequest:
        """The request for ``write(table, data, **options)``; the other arguments are the
        writer's settings that the options may override."""
        unknown = set(options) - set(WriteOptions.__annotations__)
        if unknown:
            raise TypeError(f"write() got unexpected options {sorted(unknown)}")
        key_columns = options.get("key_columns") or ()
        if isinstance(key_columns, str):
            key_columns = [key_columns]
        columns = options.get("columns")
        chunk = options.get("chunk_size")
        return cls(
            table=table,
            data=data,
            mode=options.get("mode", "copy"),
            key_columns=tuple(key_columns),
            columns=tuple(columns) if columns is not None else None,
            chunk_size=chunk_size if chunk is None else chunk,
            schema=options.get("schema"),
            create=options.get("create", False),
            commit=options.get("commit", "write"),
            replace=options.get("replace", False),
            retries=retries,
            round_trip_timeout=round_trip_timeout,
            on_bad_rows=options.get("on_bad_rows", "fail"),
            rejects_table=options.get("rejects_table"),
            set_local=set_local,
            native_partitions=options.get("native_partitions", False),
        )

    @property
    def write_mode(self) -> WriteMode:
        return write_mode(self.mode)

    @property
    def display(self) -> str:
        return self.table if self.schema is None else f"{self.schema}.{self.table}"
