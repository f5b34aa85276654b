"""Redaction: what a URL or DSN shows, and the secrets scrubbed from any text."""

from __future__ import annotations

from pathlib import Path

import pytest

from resources._redact import (
    MASK,
    MalformedDsnError,
    Secrets,
    ambiguous_userinfo,
    dsn_secrets,
    mask_url,
    url_secrets,
)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://example.com/data.csv", "https://example.com/data.csv"),
        ("https://u:pw@example.com/x.csv", "https://***@example.com/x.csv"),
        ("https://token@example.com/x.csv", "https://***@example.com/x.csv"),
        # Everything up to the last "@" is user info, unencoded "/", "?", "#" and "@" too.
        ("https://u:p/w?#@x@example.com/x", "https://***@example.com/x"),
        ("https://example.com/x?sig=abc&page=2", "https://example.com/x?sig=***&page=***"),
        ("https://example.com/x?flag", "https://example.com/x?***"),
        ("https://example.com/x#frag-token", "https://example.com/x"),
        ("/data/x.csv", "/data/x.csv"),
        ("data/x.csv?not=a-url", "data/x.csv?not=a-url"),
        (r"C:\data\x.csv", r"C:\data\x.csv"),  # a drive letter, not a scheme
        ("s3://key:secret@bucket/x", "s3://***@bucket/x"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://loader:pw@db/x", "postgresql://loader:***@db/x"),
        ("postgresql://loader@db/x", "postgresql://loader:***@db/x"),
        ("postgresql://db/x?password=pw", "postgresql://db/x?password=***"),
        # A user name that would move where the host seems to start is not shown either.
        ("postgresql://a/b:pw@db/x", "postgresql://***@db/x"),
    ],
)
def test_mask_url_keeping_the_role(dsn: str, shown: str) -> None:
    assert mask_url(dsn, keep_user=True) == shown


@pytest.mark.parametrize(
    ("url", "secrets", "not_secret"),
    [
        ("https://u:pw@h/x", {"u:pw", "pw"}, "u"),
        ("https://tok123@h/x", {"tok123"}, "h"),
        ("https://h/x?api_key=k1&page=2", {"api_key=k1&page=2", "k1"}, "2"),
        # Any long query value may be a signature under a name we do not know.
        ("https://h/x?v=1&z=0123456789", {"v=1&z=0123456789", "0123456789"}, "1"),
        ("https://h/x?X-Amz-Signature=s", {"X-Amz-Signature=s", "s"}, "x"),
    ],
)
def test_url_secrets(url: str, secrets: set[str], not_secret: str) -> None:
    found = url_secrets(url).values
    assert secrets <= found
    assert not_secret not in found


def test_a_path_has_no_secrets() -> None:
    assert url_secrets("/data/x.csv?password=visible") == Secrets()


@pytest.mark.parametrize(
    ("url", "first_at", "ambiguous"),
    [
        ("https://u:pw@h/x", False, False),
        ("https://h/x", False, False),
        ("/a@b", False, False),
        ("https://u:p/w@h/x", False, True),  # the "/" ends the host before the "@"
        ("https://u:p#w@h/x", False, True),
        ("https://u:p@w@h/x", False, False),
        ("https://u:p@w@h/x", True, True),  # asyncpg splits at the first "@"
        ("https://[u:pw@h/x", False, True),  # unbalanced "[": nothing can be trusted
    ],
)
def test_ambiguous_userinfo(url: str, first_at: bool, ambiguous: bool) -> None:
    assert ambiguous_userinfo(url, first_at=first_at) is ambiguous


@pytest.fixture
def no_password_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """asyncpg also reads PGPASSWORD and the passfile: neither may add a secret here."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))


@pytest.mark.usefixtures("no_password_sources")
@pytest.mark.parametrize(
    ("dsn", "secret"),
    [
        ("postgresql://u:s3cret@h/db", "s3cret"),
        ("postgresql://u:p%40ss@h/db", "p@ss"),  # what asyncpg sends: decoded
        ("postgresql://u@h/db?password=qpw", "qpw"),
        ("postgresql://u@h/db?PassWord=qpw", "qpw"),
        ("postgresql://u@h/db?sslpassword=kpw", "kpw"),
    ],
)
def test_dsn_secrets(dsn: str, secret: str) -> None:
    secrets = dsn_secrets(dsn)
    assert secret in secrets.values
    assert MASK in secrets.scrub(f"connecting with {secret} failed")
    assert secret not in secrets.scrub(f"connecting with {secret} failed")


@pytest.mark.usefixtures("no_password_sources")
def test_dsn_secrets_with_pgpassword(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "from-env")
    assert "from-env" in dsn_secrets("postgresql://u@h/db").values


@pytest.mark.usefixtures("no_password_sources")
@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://u:p@ss@h/db",  # two "@": which one ends the password?
        "postgresql://u:p/ss@h/db",
        "postgresql://u:pw@h:notaport/db",
    ],
)
def test_a_dsn_that_cannot_be_read_safely_is_refused_without_being_quoted(dsn: str) -> None:
    with pytest.raises(MalformedDsnError) as caught:
        dsn_secrets(dsn)
    assert "ss" not in str(caught.value).replace("password", "").replace("passwo", "")
    assert "notaport" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


@pytest.mark.parametrize(
    "shown",
    [
        "p@ss/w?rd",  # as written
        "p%40ss%2Fw%3Frd",  # percent-encoded
        "p%40ss/w%3Frd",  # quote() keeps "/"
    ],
)
def test_scrub_finds_every_form_of_a_secret(shown: str) -> None:
    secrets = Secrets(frozenset({"p@ss/w?rd"}))
    text = f"could not connect: password {shown} rejected"
    assert secrets.leaks(text)
    assert secrets.scrub(text) == f"could not connect: password {MASK} rejected"


def test_a_secret_written_encoded_is_found_decoded() -> None:
    """A URL holds the password percent-encoded; a driver's message quotes it decoded."""
    secrets = Secrets(frozenset({"p%40ss%2Fw"}))
    assert secrets.scrub("password p@ss/w rejected") == f"password {MASK} rejected"


def test_scrub_replaces_a_longer_secret_whole() -> None:
    secrets = Secrets(frozenset({"abc", "abcdef"}))
    assert secrets.scrub("x abcdef y abc") == f"x {MASK} y {MASK}"


def test_repr_escaped_secrets_are_found() -> None:
    secrets = Secrets(frozenset({"a'b\\c"}))
    assert secrets.leaks(repr("a'b\\c"))


def test_no_secrets_scrub_nothing() -> None:
    assert Secrets().scrub("password pw") == "password pw"
    assert not Secrets(frozenset({""})).leaks("anything")


def _chained(message: str, cause_message: str) -> Exception:
    try:
        try:
            raise OSError(cause_message)
        except OSError as cause:
            raise RuntimeError(message) from cause
    except RuntimeError as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "kept"),
    [
        (ValueError("plain"), True),
        (ValueError("has pw123 in it"), False),
        (ValueError("x", {"dsn": "pw123"}), False),  # in the args
        (_chained("outer", "inner pw123"), False),  # in the cause
        (_chained("outer", "inner"), True),
        (ExceptionGroup("g", [ValueError("pw123")]), False),
    ],
)
def test_safe_cause(exc: BaseException, kept: bool) -> None:
    secrets = Secrets(frozenset({"pw123"}))
    assert (secrets.safe_cause(exc) is exc) is kept


def test_safe_cause_checks_attributes() -> None:
    exc = OSError("refused")
    exc.filename = "postgresql://u:pw123@h"
    assert Secrets(frozenset({"pw123"})).safe_cause(exc) is None


def test_describe_scrubs() -> None:
    secrets = Secrets(frozenset({"pw123"}))
    assert secrets.describe(OSError("auth pw123")) == f"OSError: auth {MASK}"
