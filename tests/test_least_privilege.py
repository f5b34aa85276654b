"""Every mode works as a role holding only the grants of docs/security.md, and a missing grant
is a clear error. The role logs in itself (LOGIN via the DSN, no password: the system test
server trusts local connections, and the embedded one admits its own OS account, and root, over
its socket as any role)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import pytest
from _support import KEYED, MODES, q

from resources import KeyRange, Mode, PostgresBulkWriter, TerminalWriteError

OWNER_GRANTS = "SELECT, INSERT, UPDATE, DELETE, TRUNCATE"


def as_user(dsn: str, user: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


@dataclass
class Loader:
    role: str
    schema: str
    dsn: str


@pytest.fixture
def loader(dsn: str, db: Any, schema: str) -> Iterator[Loader]:
    """A LOGIN role, no superuser, with the grants of docs/security.md on the test's schema
    (CREATE excepted: tests that use create=True grant it themselves)."""
    role = f"loader_{uuid.uuid4().hex[:10]}"
    owner = db.fetchval("SELECT current_user")
    db.execute(f"CREATE ROLE {q(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT")
    db.execute(f"GRANT USAGE ON SCHEMA {q(schema)} TO {q(role)}")
    db.execute(f"GRANT {OWNER_GRANTS} ON ALL TABLES IN SCHEMA {q(schema)} TO {q(role)}")
    db.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {q(schema)} TO {q(role)}")
    db.execute(
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {q(owner)} IN SCHEMA {q(schema)} "
        f"GRANT {OWNER_GRANTS} ON TABLES TO {q(role)}"
    )
    db.execute(
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {q(owner)} IN SCHEMA {q(schema)} "
        f"GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {q(role)}"
    )
    try:
        yield Loader(role, schema, as_user(dsn, role))
    finally:
        db.execute(f"DROP OWNED BY {q(role)} CASCADE")
        db.execute(f"DROP ROLE {q(role)}")


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"]})


def _table(db: Any, schema: str) -> None:
    """Made by the owner after the grants: only the default privileges let the loader in."""
    db.execute(
        f"CREATE TABLE {q(schema)}.t (seq bigserial, id int PRIMARY KEY, name text NOT NULL)"
    )


def test_the_loader_is_not_a_superuser(loader: Loader) -> None:
    with PostgresBulkWriter(dsn=loader.dsn) as writer:
        me = writer.fetch(
            "SELECT current_user AS who, rolsuper FROM pg_roles WHERE rolname = current_user"
        )
    assert me == [{"who": loader.role, "rolsuper": False}]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_writes_as_the_loader(mode: Mode, loader: Loader, db: Any) -> None:
    _table(db, loader.schema)
    if mode == "update":
        db.execute(f"INSERT INTO {q(loader.schema)}.t (id, name) VALUES (1, 'x'), (2, 'y')")
    with PostgresBulkWriter(dsn=loader.dsn) as writer:
        result = writer.write(
            "t",
            _frame(),
            schema=loader.schema,
            mode=mode,
            key_columns=["id"] if mode in KEYED else None,
        )
    assert result.rows == 3
    rows = db.fetch(f"SELECT id, name FROM {q(loader.schema)}.t ORDER BY id")
    expected = [(1, "a"), (2, "b")] if mode == "update" else [(1, "a"), (2, "b"), (3, "c")]
    assert [tuple(r) for r in rows] == expected


def test_replace_truncates_as_the_loader(loader: Loader, db: Any) -> None:
    _table(db, loader.schema)
    db.execute(f"INSERT INTO {q(loader.schema)}.t (id, name) VALUES (9, 'old')")
    with PostgresBulkWriter(dsn=loader.dsn) as writer:
        writer.write("t", _frame(), schema=loader.schema, replace=True)
    assert db.fetchval(f"SELECT array_agg(id ORDER BY id) FROM {q(loader.schema)}.t") == [1, 2, 3]


def _create(writer: PostgresBulkWriter, mode: Mode, schema: str | None) -> Any:
    return writer.write("made", _frame(), schema=schema, mode=mode, key_columns=["id"], create=True)


def _check_made(db: Any, loader: Loader, mode: Mode) -> None:
    owner = db.fetchval(
        "SELECT tableowner FROM pg_tables WHERE schemaname = $1 AND tablename = 'made'",
        loader.schema,
    )
    assert owner == loader.role
    assert db.fetchval(f"SELECT count(*) FROM {q(loader.schema)}.made") == (
        0 if mode == "update" else 3
    )


@pytest.mark.parametrize("mode", MODES)
def test_create_without_the_create_grant_is_refused(mode: Mode, loader: Loader, db: Any) -> None:
    with PostgresBulkWriter(dsn=loader.dsn) as writer, pytest.raises(TerminalWriteError) as caught:
        _create(writer, mode, loader.schema)
    assert "permission denied" in str(caught.value)
    assert "42501" in str(caught.value)
    assert db.fetchval("SELECT to_regclass($1)", f"{q(loader.schema)}.made") is None


@pytest.mark.parametrize("mode", MODES)
def test_create_with_create_on_the_schema_of_the_search_path(
    mode: Mode, loader: Loader, db: Any
) -> None:
    """An unqualified table resolved through search_path: CREATE on the schema is enough."""
    db.execute(f"GRANT CREATE ON SCHEMA {q(loader.schema)} TO {q(loader.role)}")
    dsn = f"{loader.dsn}{'&' if '?' in loader.dsn else '?'}search_path={loader.schema}"
    with PostgresBulkWriter(dsn=dsn) as writer:
        assert _create(writer, mode, None).created
    _check_made(db, loader, mode)


@pytest.mark.parametrize("mode", ["copy", "upsert"])
def test_create_with_create_on_an_explicit_schema(mode: Mode, loader: Loader, db: Any) -> None:
    db.execute(f"GRANT CREATE ON SCHEMA {q(loader.schema)} TO {q(loader.role)}")
    with PostgresBulkWriter(dsn=loader.dsn) as writer:
        assert _create(writer, mode, loader.schema).created
    _check_made(db, loader, mode)


@pytest.mark.parametrize(
    ("mode", "revoked"),
    [("copy", "INSERT"), ("insert", "INSERT"), ("update", "UPDATE"), ("upsert", "UPDATE")],
)
def test_a_missing_privilege_is_a_clear_terminal_error(
    mode: Mode, revoked: str, loader: Loader, db: Any
) -> None:
    _table(db, loader.schema)
    db.execute(f"INSERT INTO {q(loader.schema)}.t (id, name) VALUES (1, 'kept')")
    db.execute(f"REVOKE {revoked} ON {q(loader.schema)}.t FROM {q(loader.role)}")
    with PostgresBulkWriter(dsn=loader.dsn) as writer, pytest.raises(TerminalWriteError) as caught:
        writer.write(
            "t",
            _frame(),
            schema=loader.schema,
            mode=mode,
            key_columns=["id"] if mode in KEYED else None,
        )
    message = str(caught.value)
    assert "permission denied for table t" in message
    assert "42501" in message and f"{loader.schema}.t" in message
    assert not type(caught.value).__name__.startswith("Transient")
    assert [tuple(r) for r in db.fetch(f"SELECT id, name FROM {q(loader.schema)}.t")] == [
        (1, "kept")
    ]


def test_without_usage_on_the_schema_the_table_is_not_found(loader: Loader, db: Any) -> None:
    _table(db, loader.schema)
    db.execute(f"REVOKE USAGE ON SCHEMA {q(loader.schema)} FROM {q(loader.role)}")
    with PostgresBulkWriter(dsn=loader.dsn) as writer, pytest.raises(TerminalWriteError) as caught:
        writer.write("t", _frame(), schema=loader.schema)
    assert "permission denied for schema" in str(caught.value)
    assert db.fetchval(f"SELECT count(*) FROM {q(loader.schema)}.t") == 0


@pytest.mark.parametrize("granted", [True, False])
def test_explicit_serial_values_advance_the_sequence_only_with_update_on_it(
    granted: bool, loader: Loader, db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _table(db, loader.schema)
    sequence = f"{q(loader.schema)}.t_seq_seq"
    if not granted:
        db.execute(f"REVOKE UPDATE ON SEQUENCE {sequence} FROM {q(loader.role)}")
    frame = _frame().assign(seq=[10, 70, 40])
    with caplog.at_level("INFO"), PostgresBulkWriter(dsn=loader.dsn) as writer:
        assert writer.write("t", frame, schema=loader.schema).rows == 3
    drawn = db.fetchval(
        f"INSERT INTO {q(loader.schema)}.t (id, name) VALUES (4, 'd') RETURNING seq"
    )
    assert drawn == (71 if granted else 1)
    said = "advanced to 70" if granted else "not advanced to 70: the role lacks SELECT or UPDATE"
    assert said in caplog.text


def test_native_partitions_need_truncate_on_the_child_and_ownership_to_attach(
    loader: Loader, db: Any, schema: str
) -> None:
    """Replacing an existing child needs only the grants above (TRUNCATE on the child);
    a first load ATTACHes a new table, which needs ownership of the parent."""
    db.execute(
        f"CREATE TABLE {q(schema)}.p (id int NOT NULL, name text) PARTITION BY RANGE (id);"
        f"CREATE TABLE {q(schema)}.p_1 PARTITION OF {q(schema)}.p FOR VALUES FROM (1) TO (11)"
    )
    db.execute(f"GRANT CREATE ON SCHEMA {q(schema)} TO {q(loader.role)}")
    with PostgresBulkWriter(dsn=loader.dsn) as writer:
        for _ in range(2):
            writer.write(
                "p", _frame(), schema=schema, replace=KeyRange("id", 1, 11), native_partitions=True
            )
        with pytest.raises(TerminalWriteError, match="must be owner of table p"):
            writer.write(
                "p",
                pd.DataFrame({"id": [11], "name": ["x"]}),
                schema=schema,
                replace=KeyRange("id", 11, 21),
                native_partitions=True,
            )
        # Tables the loader creates it owns: their first loads attach.
        writer.write(
            "own", _frame(), schema=schema, create=True, replace=KeyRange("id", 1, 11),
            native_partitions=True,
        )  # fmt: skip
    assert db.fetchval(f"SELECT count(*) FROM {q(schema)}.p") == 3
    assert db.fetchval(f"SELECT count(*) FROM {q(schema)}.own") == 3
    tables = db.fetch(
        "SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind IN "
        "('r', 'p') ORDER BY relname",
        q(schema),
    )
    assert [t["relname"] for t in tables] == ["own", "own_1", "p", "p_1"]
