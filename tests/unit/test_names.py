"""Identifiers: refused unless PostgreSQL keeps them exactly as given; quoted whatever they
hold."""

from __future__ import annotations

import pytest

from resources import check_identifier, qualified, quote_ident
from resources._identifiers import MAX_IDENTIFIER_BYTES, column_list


@pytest.mark.parametrize(
    "name",
    [
        "t",
        "Users",
        "with space",
        'quote"inside',
        "semi;colon",
        "DROP TABLE y; --",
        "ünïcödé",
        "x" * MAX_IDENTIFIER_BYTES,
        "é" * (MAX_IDENTIFIER_BYTES // 2),  # 62 bytes: two per letter
    ],
)
def test_names_postgresql_keeps_whole_are_accepted(name: str) -> None:
    assert check_identifier(name) == name


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "non-empty str"),
        (None, "non-empty str"),
        (42, "non-empty str"),
        (b"t", "non-empty str"),
        ("a\x00b", "NUL byte"),
        ("x" * (MAX_IDENTIFIER_BYTES + 1), "64 bytes long"),
        # 32 two-byte letters: 32 characters, but 64 bytes, one past the limit.
        ("é" * 32, "64 bytes long"),
    ],
)
def test_names_postgresql_would_change_are_refused(name: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        check_identifier(name, what="table name")


def test_the_refusal_names_what_was_checked() -> None:
    with pytest.raises(ValueError, match=r"^column name must be"):
        check_identifier("", what="column name")


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("t", '"t"'),
        ("Users", '"Users"'),
        ('a"b', '"a""b"'),
        ('""', '""""""'),
        ("x; DROP TABLE y", '"x; DROP TABLE y"'),
    ],
)
def test_quote_ident_doubles_quotes(name: str, quoted: str) -> None:
    assert quote_ident(name) == quoted


@pytest.mark.parametrize("name", ["", "a\x00", "x" * 64])
def test_quote_ident_refuses_what_check_identifier_refuses(name: str) -> None:
    with pytest.raises(ValueError):
        quote_ident(name)


@pytest.mark.parametrize(
    ("schema", "table", "sql"),
    [
        (None, "t", '"t"'),
        ("s", "t", '"s"."t"'),
        ("my.schema", 'odd"name', '"my.schema"."odd""name"'),
    ],
)
def test_qualified(schema: str | None, table: str, sql: str) -> None:
    assert qualified(schema, table) == sql


def test_column_list() -> None:
    assert column_list(["id", "Name", 'a"b']) == '"id", "Name", "a""b"'
    assert column_list([]) == ""
