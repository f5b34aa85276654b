"""Where the writer's server-side limits go: once per connection as startup parameters, or, behind
a pooler that hands each transaction to whichever server connection is free, into every
transaction with ``SET LOCAL``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Pooler = Literal["none", "transaction"]

# asyncpg's default number of prepared statements kept per connection.
_ASYNCPG_STATEMENT_CACHE = 100


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """The writer's limits, in seconds (0 disables one), and the pooler in front of the server.

    With ``pooler="none"`` they are startup parameters, set once for the life of the connection.
    With ``pooler="transaction"`` (PgBouncer's ``pool_mode = transaction``) a session setting
    would stay on a server connection that the next client gets, and PgBouncer refuses startup
    parameters it does not track: only ``application_name`` is sent at connect, the limits are
    ``SET LOCAL`` at the start of each transaction (gone at its COMMIT or ROLLBACK), and the
    statement cache is off, since a named prepared statement lives on one server connection.
    """

    pooler: Pooler
    application_name: str
    statement_timeout: float
    lock_timeout: float
    idle_in_transaction_timeout: float
    client_connection_check_interval: float

    def __post_init__(self) -> None:
        if self.pooler not in ("none", "transaction"):
            raise ValueError(f"pooler must be 'none' or 'transaction', got {self.pooler!r}")

    def _limits(self) -> dict[str, str]:
        def ms(seconds: float) -> str:
            return str(int(seconds * 1000))

        return {
            "statement_timeout": ms(self.statement_timeout),
            "lock_timeout": ms(self.lock_timeout),
            "idle_in_transaction_session_timeout": ms(self.idle_in_transaction_timeout),
            # PostgreSQL 13 and older do not know this one: left out when disabled.
            **(
                {"client_connection_check_interval": ms(self.client_connection_check_interval)}
                if self.client_connection_check_interval
                else {}
            ),
        }

    def startup_settings(self) -> dict[str, str]:
        """The server settings sent when a connection opens."""
        settings = {"application_name": self.application_name}
        if self.pooler == "none":
            settings.update(self._limits())
        return settings

    def per_transaction(self) -> str:
        """SQL run right after BEGIN; empty when the limits came with the connection."""
        if self.pooler == "none":
            return ""
        # The values are integers made here, never text from outside.
        return "; ".join(f"SET LOCAL {name} = {value}" for name, value in self._limits().items())

    def statement_cache_size(self) -> int:
        return 0 if self.pooler == "transaction" else _ASYNCPG_STATEMENT_CACHE
