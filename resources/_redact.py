"""Keeping credentials out of messages, logs and Dagster's event storage.

Two tools, shared by the writer (DSNs) and the fetcher (dataset URLs):

- :func:`mask_url` turns a URL into something fit to show: the user info and every query
  value become ``***``. It never parses strictly, so a URL with spaces, an unbalanced ``[`` or
  unencoded ``/ # ?`` in its password is masked all the same.
- :class:`Secrets` is the set of strings a location carries that must never be shown. It scrubs
  them from any text (a driver's or a library's error message), in every form they may take
  there (as written, percent-encoded, escaped by ``repr``), and tells whether an exception may
  be kept as ``__cause__``: Dagster stores the whole cause chain, so a cause whose text holds a
  secret must be dropped, its scrubbed text kept in the message instead.

A DSN's secrets come from asyncpg's own parser (:func:`dsn_secrets`), not from a parser of our
own that could read the DSN differently from the driver that uses it.
"""

from __future__ import annotations

import inspect
import re
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "MASK",
    "MalformedDsnError",
    "Secrets",
    "ambiguous_userinfo",
    "dsn_secrets",
    "mask_url",
    "url_secrets",
]

MASK = "***"
# A URL scheme of two letters or more: one letter is a Windows drive (C:\data), not a scheme.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):(//)?")
# Query parameters whose values are credentials whatever their length: API keys and tokens,
# signatures of presigned URLs (S3's X-Amz-*, GCS's X-Goog-*, Azure's sig), passwords.
_SECRET_NAME = re.compile(
    r"token|key|sig|password|passwd|pwd|secret|auth|credential|session|x-amz-|x-goog-",
    re.IGNORECASE,
)
# Any other query value this long is scrubbed too: a signature under a name we do not know.
# Shorter ones (v=1, page=2) are not, or scrubbing would shred every number in a message.
_LONG_VALUE = 8
# What urllib.parse removes from a URL before parsing it (WHATWG's "unsafe bytes").
_DROPPED = str.maketrans("", "", "\t\r\n")
# An exception's text beyond this many exceptions deep is not inspected; such a chain is
# dropped rather than kept unchecked.
_MAX_CHAIN = 64


class MalformedDsnError(ValueError):
    """The DSN cannot be used. The message never quotes the DSN: if it cannot be parsed, no
    one can tell which part of it is the password."""


@dataclass(frozen=True, slots=True)
class Secrets:
    """Strings that must not appear in any message, as a location holds them."""

    values: frozenset[str] = frozenset()

    def forms(self) -> list[str]:
        """Every form of every secret, longest first (so a secret containing another is
        replaced whole)."""
        found: set[str] = set()
        for value in self.values:
            found.update(_forms(value))
        found.discard("")
        return sorted(found, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """``text`` with every occurrence of a secret replaced by ``***``."""
        for form in self.forms():
            text = text.replace(form, MASK)
        return text

    def leaks(self, text: str) -> bool:
        return any(form in text for form in self.forms())

    def safe_cause(self, exc: BaseException) -> BaseException | None:
        """``exc``, to be kept as ``__cause__``, unless the text, args or attributes of it or of
        anything in its cause/context chain hold a secret: then None."""
        for count, item in enumerate(_chain(exc)):
            if count >= _MAX_CHAIN or self.leaks(_texts(item)):
                return None
        return exc

    def describe(self, exc: BaseException) -> str:
        """``Type: message`` of ``exc``, scrubbed: what a message says of a cause it drops."""
        return self.scrub(f"{type(exc).__name__}: {exc}")


def mask_url(text: str, *, keep_user: bool = False) -> str:
    """``text`` fit to show: for a URL, the user info becomes ``***`` (``user:***`` with
    ``keep_user``, for a DSN, where the role name helps and is no secret) and every query value
    ``***``; a fragment is dropped. Anything without a scheme (a path) comes back as it is.

    The user info is everything up to the *last* ``@``: a password with an unencoded ``/``,
    ``?`` or ``#`` is masked whole, where a standard parser would end the host at it."""
    match = _SCHEME.match(text)
    if match is None:
        return text
    head, rest = text[: match.end()], text[match.end() :]
    if "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
        user = userinfo.partition(":")[0]
        shown = f"{user}:{MASK}" if keep_user and user and not _breaks(user) else MASK
        head += f"{shown}@"
    rest = rest.partition("#")[0]
    address, mark, query = rest.partition("?")
    if mark:
        query = "&".join(
            f"{item.partition('=')[0]}={MASK}" if "=" in item else (item and MASK)
            for item in query.split("&")
        )
    return head + address + mark + query


def ambiguous_userinfo(url: str, *, first_at: bool = False) -> bool:
    """Whether the user info of ``url`` reads differently to a URL parser than to a person:
    an ``@`` after the host (a password holding an unencoded ``/``, ``?`` or ``#`` moves the
    end of the host before it), or, for a parser that splits at the first ``@`` (asyncpg),
    two of them. Such a URL is refused rather than sent somewhere its password is echoed."""
    match = _SCHEME.match(url)
    if match is None or "@" not in url:
        return False
    try:
        netloc = urllib.parse.urlsplit(url).netloc
    except ValueError:  # an unbalanced "[": nothing can be trusted
        return True
    if url[match.end() :].count("@") != netloc.count("@"):
        return True
    return first_at and netloc.count("@") > 1


def url_secrets(url: str) -> Secrets:
    """The secrets of a fetch URL: its user info (whatever characters it holds), its raw query
    and the query values that are credentials (see ``_SECRET_NAME`` and ``_LONG_VALUE``)."""
    match = _SCHEME.match(url)
    if match is None:
        return Secrets()
    rest = url[match.end() :]
    found: set[str] = set()
    if "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
        user, _, password = userinfo.partition(":")
        found.update((userinfo, password))
        if not password:  # a token given as the user name
            found.add(user)
    query = rest.partition("#")[0].partition("?")[2]
    if query:
        found.add(query)
        found.update(_query_secrets(query, every_long=True))
    return Secrets(frozenset(found))


def dsn_secrets(dsn: str) -> Secrets:
    """The secrets of a PostgreSQL DSN as asyncpg reads it: the password it will send (from
    the DSN, or PGPASSWORD, or the passfile), the password as written in the user info and the
    values of ``password``/``sslpassword`` in the query, whatever their case.

    Raises:
        MalformedDsnError: asyncpg cannot parse the DSN, or its user info is ambiguous. The
            message does not quote the DSN, and has no cause: the parser's own message may.
    """
    if ambiguous_userinfo(dsn, first_at=True):
        raise MalformedDsnError(
            "the DSN has an '@' outside its user info, so where the password ends is unclear; "
            "percent-encode '@', '/', '?', '#' and ':' in the user name and password "
            "(%40 %2F %3F %23 %3A)"
        )
    refused: str | None = None
    password: str | None = None
    try:
        password = _driver_password(dsn)
    except Exception as exc:  # any refusal: ValueError, ClientConfigurationError, OSError ...
        # Only the name: the parser's text may quote the DSN. Raised below, outside this
        # block, so that the refusal is not chained as __context__ either.
        refused = type(exc).__name__
    if refused is not None:
        raise MalformedDsnError(
            f"asyncpg cannot parse the DSN ({refused}); it is not shown, as it may hold the "
            "password. Percent-encode '@', '/', '?', '#', ':', '[' and ']' in the user name and "
            "password and check the query parameters"
        )
    parts = urllib.parse.urlsplit(dsn)
    written = parts.netloc.partition("@")[0].partition(":")[2] if "@" in parts.netloc else ""
    found = {written, password or ""}
    found.update(_query_secrets(parts.query, every_long=False))
    return Secrets(frozenset(found))


def _driver_password(dsn: str) -> str | None:
    # Imported here: fetch errors mask URLs with this module, and asyncpg is not needed to
    # load definitions. The parser's keyword arguments differ between asyncpg versions: all
    # but dsn are unset.
    from asyncpg import connect_utils

    parse = connect_utils._parse_connect_dsn_and_args
    names = inspect.signature(parse).parameters
    _, params = parse(**{name: dsn if name == "dsn" else None for name in names})
    password = params.password
    return password if isinstance(password, str) else None


def _query_secrets(query: str, *, every_long: bool) -> Iterator[str]:
    for item in query.split("&"):
        name, mark, value = item.partition("=")
        if not mark:
            continue
        secret = _SECRET_NAME.search(urllib.parse.unquote_plus(name)) is not None
        if secret or (every_long and len(value) >= _LONG_VALUE):
            yield value


def _forms(value: str) -> Iterable[str]:
    """``value`` as it may appear in a message: raw, decoded, encoded, escaped by repr, and
    without the tabs and line breaks urllib silently drops from a URL."""
    dropped = value.translate(_DROPPED)
    variants = {value, dropped, value.strip(), urllib.parse.unquote(value)}
    for text in variants | {urllib.parse.unquote_plus(value), urllib.parse.unquote(dropped)}:
        yield text
        yield urllib.parse.quote(text, safe="")
        yield urllib.parse.quote(text)
        yield urllib.parse.quote_plus(text)
        yield repr(text)[1:-1]
        yield text.encode("unicode_escape").decode("ascii")


def _breaks(user: str) -> bool:
    return any(c in user for c in "/?#[]")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        yield item
        todo += [item.__cause__, item.__context__]
        todo += [e for e in getattr(item, "exceptions", ()) if isinstance(e, BaseException)]


def _texts(exc: BaseException) -> str:
    try:
        attrs = repr(vars(exc))
    except TypeError:  # an exception with __slots__ only
        attrs = ""
    return "\n".join((str(exc), repr(exc), repr(exc.args), attrs))
