"""A fetch location (http(s) URL, file URL, path or object-store URL) opened as one stream of
bytes.

Every failure while opening or reading comes out as a :class:`FetchError`, raised from inside
the stream's ``read``, so that the parser reading it (pandas, pyarrow) passes it through
untouched. A body shorter than its ``Content-Length`` and a gzip stream without its end
marker are reported as truncated, never read as a shorter file.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.client
import io
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from resources._redact import Secrets, ambiguous_userinfo, mask_url, url_secrets

from ._fetch_errors import FetchError, Where
from ._fetch_stores import STORES, ObjectStore

__all__ = ["Bytes", "Source", "download", "open_bytes", "open_raw"]

#: A readable, peekable byte stream.
Bytes: TypeAlias = "io.BufferedReader[Any]"

# Copy downloads 1 MiB at a time: few system calls, little memory.
_COPY_BLOCK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
# The only schemes a redirect may lead to: urllib alone would also follow one to ftp://, which
# frames() refuses as a location.
_REDIRECT_SCHEMES = frozenset({"http", "https"})
# 408 and 429 ask the client to come back later; 5xx is the server's own failure.
_RETRY_STATUS = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class Source:
    """A location resolved, with no I/O done: ``url`` for http(s), ``store`` and
    ``store_path`` (bucket/key) for an object store, else ``path``; ``secrets`` are what no
    message about it may show."""

    where: Where
    url: str | None
    path: Path | None
    gzip_name: bool
    secrets: Secrets
    store: ObjectStore | None = None
    store_path: str | None = None

    @classmethod
    def parse(cls, location: str, where: Where, *, gzip_name: bool) -> Source:
        if ambiguous_userinfo(location):
            # urllib would take part of the password for the host and port, and quote it back
            # in its error ("nonnumeric port").
            raise where.error(
                "an '@' follows the host, so where the user info ends is unclear; "
                "percent-encode '/', '?', '#' and '@' in the user name and password, and '@' "
                "elsewhere (%2F %3F %23 %40)"
            )
        secrets = url_secrets(location)
        try:
            parts = urllib.parse.urlsplit(location)
        except ValueError as exc:  # an unbalanced "[" in the host
            failure = where.error(f"not a valid URL: {secrets.describe(exc)}")
        else:
            return cls._parsed(location, parts, where, gzip_name, secrets)
        raise failure  # outside the except block: urllib's message quotes the URL

    @classmethod
    def _parsed(
        cls,
        location: str,
        parts: urllib.parse.SplitResult,
        where: Where,
        gzip_name: bool,
        secrets: Secrets,
    ) -> Source:
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            return cls(where, location, None, gzip_name, secrets)
        if scheme in STORES:
            if not parts.netloc:
                raise where.error(f"{scheme}:// URLs name a bucket first: {scheme}://BUCKET/KEY")
            # The key as written: "?" and "#" are glob characters or part of it, not a query.
            key = location.split("://", 1)[1]
            return cls(where, None, None, gzip_name, secrets, STORES[scheme], key)
        if scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise where.error(f"file URLs name no host, got {parts.netloc!r}")
            path = Path(urllib.request.url2pathname(parts.path))
        elif len(scheme) >= 2:
            stores = ", ".join(f"{name}://" for name in STORES)
            raise where.error(
                f"cannot fetch {scheme}:// URLs; expected http(s)://, file://, {stores} or a path"
            )
        else:
            path = Path(location).expanduser()
        return cls(where, None, path.absolute(), gzip_name, secrets)


def open_bytes(
    source: Source,
    stack: contextlib.ExitStack,
    *,
    timeout: float,
    headers: Mapping[str, str],
    user_agent: str,
) -> Bytes:
    """The decoded bytes of ``source``; ``stack`` closes the file or connection."""
    where = source.where
    if source.path is not None:
        try:
            raw: Any = stack.enter_context(open(source.path, "rb"))  # noqa: SIM115
        except OSError as exc:
            raise where.error(f"cannot open it: {exc.strerror or exc}") from exc
        stream: Bytes = io.BufferedReader(_Guarded(raw, where, expected=None, timeout=timeout))
        content_gzip = False
    else:
        assert source.url is not None, "a source is a path or a URL"
        response = _get(source.url, where, timeout=timeout, headers=headers, user_agent=user_agent)
        stack.callback(response.close)
        encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip"):
            raise where.error(f"the server sent Content-Encoding {encoding!r}; expected gzip")
        content_gzip = encoding != "identity"
        expected = _content_length(response)
        stream = io.BufferedReader(_Guarded(response, where, expected=expected, timeout=timeout))
    if content_gzip:
        stream = _gunzip(stream, where)
    # A .gz file sent with Content-Encoding: gzip arrives as the server stored it or unpacked
    # once, depending on the server: only the magic bytes tell.
    if source.gzip_name and not (content_gzip and stream.peek(2)[:2] != _GZIP_MAGIC):
        stream = _gunzip(stream, where)
    stack.callback(stream.close)
    return stream


def open_raw(
    raw: Any, where: Where, stack: contextlib.ExitStack, *, gzip_name: bool, timeout: float
) -> Bytes:
    """An already open file-like object (an object-store stream) as the bytes ``open_bytes``
    gives: its read errors are FetchErrors, and a ``.gz`` name is decompressed."""
    stack.callback(raw.close)
    stream: Bytes = io.BufferedReader(_Guarded(raw, where, expected=None, timeout=timeout))
    if gzip_name:
        stream = _gunzip(stream, where)
    stack.callback(stream.close)
    return stream


def download(stream: Bytes, where: Where, *, suffix: str) -> Path:
    """Stream ``stream`` into a new temporary file (the caller deletes it): a reader that
    seeks (Parquet's) needs random access, which a response body cannot give."""
    fd, name = tempfile.mkstemp(prefix="bulk-assets-fetch-", suffix=suffix)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            while block := stream.read(_COPY_BLOCK):
                try:
                    out.write(block)
                except OSError as exc:
                    raise where.error(f"writing the download to {path} failed: {exc}") from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _get(
    url: str, where: Where, *, timeout: float, headers: Mapping[str, str], user_agent: str
) -> http.client.HTTPResponse:
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    # urllib takes no credentials from the URL; they go in a header that follows redirects only
    # to the same origin, like the configured headers (auth, API keys).
    secret = dict(headers)
    if "@" in parts.netloc and not any(k.lower() == "authorization" for k in secret):
        userinfo = f"{urllib.parse.unquote(parts.username or '')}:"
        userinfo += urllib.parse.unquote(parts.password or "")
        secret["Authorization"] = "Basic " + base64.b64encode(userinfo.encode()).decode()
    clean = urllib.parse.urlunsplit(parts._replace(netloc=host, fragment=""))
    request = urllib.request.Request(
        clean, headers={"User-Agent": user_agent, "Accept-Encoding": "gzip"}
    )
    for name, value in secret.items():
        request.add_unredirected_header(name, value)
    opener = urllib.request.build_opener(_SameOriginRedirects(clean, secret, where))
    method = f"GET {where.location}"
    try:
        response: http.client.HTTPResponse = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise FetchError(
            f"{method} failed: HTTP {exc.code} {exc.reason} ({where.format})",
            location=where.location,
            format=where.format,
            status=exc.code,
            transient=exc.code >= 500 or exc.code in _RETRY_STATUS,
        ) from exc
    except urllib.error.URLError as exc:
        # urllib wraps what fails while connecting and sending the request.
        if isinstance(exc.reason, TimeoutError):
            detail = f"could not connect within the timeout of {timeout} s"
        else:
            detail = f"could not connect: {exc.reason}"
        raise _transient(where, f"{method}: {detail}") from exc
    except TimeoutError as exc:
        raise _transient(
            where, f"{method}: no response within the timeout of {timeout} s (waiting for headers)"
        ) from exc
    except (http.client.HTTPException, OSError) as exc:
        raise _transient(
            where, f"{method}: connection failed: {type(exc).__name__}: {exc}"
        ) from exc
    return response


def _transient(where: Where, message: str) -> FetchError:
    return FetchError(
        f"{message} ({where.format})", location=where.location, format=where.format, transient=True
    )


def _content_length(response: http.client.HTTPResponse) -> int | None:
    if response.chunked:
        return None  # http.client itself reports a chunked body that breaks off
    try:
        return int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.rpartition("@")[2].lower()


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) only, re-sending the secret headers only to the origin they
    were meant for: a redirect to another host (a CDN, a presigned bucket URL) must not receive
    them."""

    def __init__(self, url: str, secret: Mapping[str, str], where: Where) -> None:
        self._origin = _origin(url)
        self._secret = dict(secret)
        self._where = where

    def http_error_302(self, req: Any, fp: Any, code: Any, msg: Any, headers: Any) -> Any:
        # Checked before urllib's own handling, which follows ftp:// and, for other schemes,
        # raises an HTTPError quoting the whole location, query and all.
        target = headers.get("location") or headers.get("uri")
        if target is not None:
            try:
                newurl = urllib.parse.urljoin(req.full_url, target.strip())
            except ValueError:  # an unbalanced "[": not a URL to follow either
                newurl = target
            scheme = newurl.partition(":")[0].lower() if ":" in newurl else ""
            if scheme not in _REDIRECT_SCHEMES:
                fp.close()
                raise self._where.error(
                    f"HTTP {code} redirects to {mask_url(newurl)}, which is not http(s); "
                    "only http(s) redirects are followed",
                    status=code,
                )
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def redirect_request(
        self, req: Any, fp: Any, code: Any, msg: Any, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(new.full_url) == self._origin:
            for name, value in self._secret.items():
                new.add_unredirected_header(name, value)
        return new


class _Guarded(io.RawIOBase):
    """A file or response body whose read errors are FetchErrors, and whose early end (fewer
    bytes than ``expected``) is one too."""

    def __init__(self, inner: Any, where: Where, *, expected: int | None, timeout: float) -> None:
        self._inner = inner
        self._where = where
        self._expected = expected
        self._timeout = timeout
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        where = self._where
        try:
            # read1: one receive at a time, so the byte count in a message is what arrived.
            data = self._inner.read1(len(buffer))
        except TimeoutError as exc:
            raise where.error(
                f"no data for {self._timeout} s after {self._count:,} bytes of the body "
                "(the read timeout)",
                transient=True,
            ) from exc
        except http.client.IncompleteRead as exc:
            raise self._truncated() from exc
        except (http.client.HTTPException, OSError) as exc:
            raise where.error(
                f"reading failed after {self._count:,} bytes: {type(exc).__name__}: {exc}",
                transient=self._expected is not None or isinstance(exc, ConnectionError),
            ) from exc
        n = len(data)
        if not n and self._expected is not None and self._count < self._expected:
            raise self._truncated()
        buffer[:n] = data
        self._count += n
        return n

    def _truncated(self) -> FetchError:
        of = f" of the {self._expected:,} announced" if self._expected is not None else ""
        return self._where.error(
            f"truncated: the connection closed after {self._count:,} bytes{of}", transient=True
        )

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._inner.close()
        super().close()


class _Gunzipped(io.RawIOBase):
    """gzip-decoded bytes; a stream that stops before the gzip end marker is truncated."""

    def __init__(self, compressed: Bytes, where: Where) -> None:
        self._gzip = gzip.GzipFile(fileobj=compressed, mode="rb")
        self._compressed = compressed
        self._where = where

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            return self._gzip.readinto(buffer)
        except EOFError as exc:
            raise self._where.error(
                "truncated: the gzip stream ends before its end marker", transient=True
            ) from exc
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise self._where.error(f"not valid gzip: {exc}") from exc

    def close(self) -> None:
        self._gzip.close()
        self._compressed.close()
        super().close()


def _gunzip(stream: io.BufferedReader, where: Where) -> Bytes:
    return io.BufferedReader(_Gunzipped(stream, where), buffer_size=_COPY_BLOCK // 4)
