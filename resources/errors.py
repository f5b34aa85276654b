"""The exceptions a bulk write raises.

One base, :class:`BulkWriteError`, split into errors worth retrying (:class:`TransientWriteError`)
and errors that a retry cannot fix (:class:`TerminalWriteError`). ``retryable`` is the one rule
that says which: the writer's own retries and a Dagster step's retry both read it. The driver's
exception, where there is one, is kept as ``__cause__``, unless its text holds the password
(then its scrubbed text is in the message instead). No message ever contains the DSN's
password.
"""

from __future__ import annotations

__all__ = [
    "BadValueError",
    "BulkWriteError",
    "NoDatabaseError",
    "OutcomeUnknownError",
    "SchemaMismatchError",
    "TerminalWriteError",
    "TransientWriteError",
    "WriteTimeoutError",
]


class BulkWriteError(Exception):
    """Base of every error a bulk write raises. The target table is left as it was before the
    failed unit of work (the whole write, or the failing chunk with ``commit="chunk"``)."""

    def __init__(self, message: str, *, table: str | None = None) -> None:
        super().__init__(message)
        self.table = table
        #: Rows committed before the failure: always 0 for a one-transaction write; with
        #: ``commit="chunk"``, the rows of the chunks that made it.
        self.committed_rows = 0

    @property
    def retryable(self) -> bool:
        """Whether running the failed unit of work again can succeed."""
        return False


class TransientWriteError(BulkWriteError):
    """The server or the network failed (connection lost, backend terminated, deadlock,
    serialization failure). The unit of work was rolled back; running it again can succeed.
    Raised once the writer's own bounded retries are used up, or when the source cannot be
    replayed (a one-shot iterator): re-run the step."""

    @property
    def retryable(self) -> bool:
        return True


class TerminalWriteError(BulkWriteError):
    """The write cannot succeed as asked (bad data, unknown table, missing columns); a retry
    would fail the same way."""


class NoDatabaseError(TerminalWriteError):
    """The writer was given no database: neither ``dsn`` nor ``DATABASE_URL`` is set, and the
    embedded PostgreSQL (for local development) was not asked for. Raised at resource set-up,
    before anything is written, so a deployment that lost its secret fails loudly instead of
    loading into a throwaway server."""


class SchemaMismatchError(TerminalWriteError):
    """The data does not fit the table: unknown table or schema, missing or extra columns,
    no unique index for the key columns of an upsert."""


class BadValueError(TerminalWriteError):
    """One value cannot be stored without loss.

    Attributes:
        table: the target table, schema-qualified.
        column: the column the value belongs to (``None`` if the server did not say).
        row: 0-based position of the row in the whole write (``None`` if unknown).
        reason: what was expected and what was found.
        source: where the row came from, when the data knows (``Fetcher.batches`` and
            ``Fetcher.frames`` do): ``"orders.csv, line 7"`` (header = line 1, lines as an
            editor counts them), ``"s3://bucket/x.parquet, row group 2, row 70"`` (the row
            in the file, from 0); credentials masked. ``None`` if unknown.
    """

    def __init__(
        self,
        reason: str,
        *,
        table: str,
        column: str | None,
        row: int | None,
        source: str | None = None,
    ) -> None:
        self._where = _where(table, column, row, source)
        super().__init__(f"bad value at {self._where}: {reason}", table=table)
        self.column = column
        self.row = row
        self.reason = reason
        self.source = source

    def add_source(self, source: str) -> None:
        """Name where the row came from, in the message too (which may have grown since)."""
        where = _where(str(self.table), self.column, self.row, source)
        message = str(self.args[0]) if self.args else ""
        self.args = (message.replace(self._where, where, 1), *self.args[1:])
        self._where, self.source = where, source


def _where(table: str, column: str | None, row: int | None, source: str | None) -> str:
    where = [f"table {table}"]
    if column is not None:
        where.append(f"column {column!r}")
    if row is not None:
        where.append(f"row {row}" if source is None else f"row {row} ({source})")
    return ", ".join(where)


class WriteTimeoutError(TransientWriteError):
    """A time limit fired. ``limit`` names it: ``connect_timeout``, ``lock_timeout``,
    ``statement_timeout`` or ``round_trip_timeout`` (the client-side guard around each round
    trip). All but ``statement_timeout`` are retried like other transient errors: a statement
    that outran its limit would only outrun it again."""

    def __init__(self, message: str, *, limit: str, table: str | None = None) -> None:
        super().__init__(message, table=table)
        self.limit = limit

    @property
    def retryable(self) -> bool:
        # A statement that outran statement_timeout would only outrun it again.
        return self.limit != "statement_timeout"


class OutcomeUnknownError(BulkWriteError):
    """The connection was lost while COMMIT was in flight: the server may or may not have
    committed. Appending modes never re-send such a unit (it could duplicate rows); re-run it
    only if it is idempotent (a partition replace, an upsert)."""
