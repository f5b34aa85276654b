"""What a fetch refuses: a redirect off http(s), a CSV header naming a column twice, and a
field or line past the Fetcher's ceiling, each with an error naming location and place; and
chunks bounded by bytes as well as rows."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bulk_assets.fetch import Fetcher, FetchError

SECRET = "TOKEN_SENTINEL_5d2e"


# Path -> where it redirects to (a path alone: on this server).
REDIRECTS = {
    "/to-ftp": f"ftp://u:{SECRET}@files.example/a.csv?token={SECRET}",
    "/to-file": "file:///etc/passwd",
    "/to-gopher": f"gopher://h.example/a.csv?sig={SECRET}",
    "/to-ok": "/ok.csv",
}


class _Redirects(http.server.BaseHTTPRequestHandler):
    """Answers the paths of REDIRECTS with a 302; ``/ok.csv`` is a small CSV."""

    def do_GET(self) -> None:
        if self.path == "/endless.csv":
            # A header, then one line that goes on, 64 KiB at a time, until the client quits.
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"a,b\n")
            with contextlib.suppress(OSError):
                for _ in range(1024):
                    self.wfile.write(b"x" * 65536)
            return
        if self.path == "/ok.csv":
            body = b"a\n1\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(302)
        self.send_header("Location", REDIRECTS[self.path])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirects)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def fetcher() -> Fetcher:
    return Fetcher(timeout=5.0, retries=0)


# -- redirects ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/to-ftp", "ftp://***@files.example/a.csv?token=***"),
        ("/to-file", "file:///etc/passwd"),
        ("/to-gopher", "gopher://h.example/a.csv?sig=***"),
    ],
)
def test_a_redirect_off_http_is_refused_naming_the_masked_location(
    base: str, fetcher: Fetcher, path: str, shown: str
) -> None:
    with pytest.raises(FetchError) as caught:
        list(fetcher.frames(base + path, format="csv"))
    message = str(caught.value)
    assert shown in message and "only http(s) redirects are followed" in message
    assert caught.value.status == 302 and not caught.value.transient
    assert SECRET not in message and SECRET not in repr(caught.value.__cause__)


def test_an_http_redirect_is_still_followed(base: str, fetcher: Fetcher) -> None:
    (chunk,) = fetcher.frames(f"{base}/to-ok", format="csv")
    assert chunk["a"].tolist() == [1]


# -- CSV headers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "options", "column"),
    [
        ("id,id\n1,2\n", {}, "id"),
        ("a;b;a\n1;2;3\n", {"sep": ";"}, "a"),
        ('"x y",z,"x y"\n1,2,3\n', {}, "x y"),
    ],
)
def test_a_header_naming_a_column_twice_is_refused(
    tmp_path: Path, fetcher: Fetcher, text: str, options: dict[str, Any], column: str
) -> None:
    path = tmp_path / "dup.csv"
    path.write_text(text)
    with pytest.raises(FetchError) as caught:
        list(fetcher.frames(str(path), read_options=options or None))
    assert str(path) in str(caught.value) and repr(column) in str(caught.value)
    assert caught.value.column == column and caught.value.line == 1


def test_a_header_with_a_dotted_name_is_no_duplicate(tmp_path: Path, fetcher: Fetcher) -> None:
    path = tmp_path / "dotted.csv"
    path.write_text("id,id.1\n1,2\n")
    (chunk,) = fetcher.frames(str(path))
    assert list(chunk.columns) == ["id", "id.1"]


# -- bytes: the ceiling for one record, chunks bounded by bytes -----------------------------------

KIB = 1024


def write_csv(path: Path, rows: list[str]) -> str:
    path.write_bytes(("id,text\n" + "".join(f"{r}\n" for r in rows)).encode())
    return str(path)


@pytest.mark.parametrize(
    ("shape", "line"),
    [
        ("long-field", 3),  # one unquoted field past the ceiling on line 3
        ("quoted-field-over-lines", 3),  # a quoted field of short lines, long in all
        ("no-line-breaks", 1),  # a file that is one endless line
    ],
)
def test_a_record_past_max_line_bytes_is_refused_naming_its_line(
    tmp_path: Path, shape: str, line: int
) -> None:
    path = tmp_path / "big.csv"
    if shape == "long-field":
        write_csv(path, ["1,a", "2," + "x" * 40 * KIB, "3,c"])
    elif shape == "quoted-field-over-lines":
        write_csv(path, ["1,a", '2,"' + "xxxxxxx\n" * 5 * KIB + '"', "3,c"])
    else:
        path.write_bytes(b"id,text" + b",x" * 40 * KIB)
    fetcher = Fetcher(retries=0, max_line_bytes=16 * KIB)
    with pytest.raises(FetchError, match="max_line_bytes=16,384") as caught:
        list(fetcher.frames(str(path), chunk_rows=1))
    assert caught.value.line == line and f"line {line}" in str(caught.value)
    assert str(path) in str(caught.value)


def test_the_line_ceiling_holds_when_pandas_splits_the_records(tmp_path: Path) -> None:
    path = tmp_path / "escaped.csv"
    write_csv(path, ["1,a", "2," + "x" * 40 * KIB])
    fetcher = Fetcher(retries=0, max_line_bytes=16 * KIB)
    with pytest.raises(FetchError, match="line 3: longer than max_line_bytes"):
        list(fetcher.frames(str(path), read_options={"escapechar": "\\"}))


def test_a_record_just_under_the_ceiling_reads(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    text = "x" * (16 * KIB - 3)
    write_csv(path, ["1,a", f"2,{text}", "3,c"])
    fetcher = Fetcher(retries=0, max_line_bytes=16 * KIB)
    frames = list(fetcher.frames(str(path), dtypes={"text": "string"}))
    assert pd.concat(frames)["text"].tolist() == ["a", text, "c"]


@pytest.mark.parametrize("format", ["csv", "jsonl"])
def test_chunks_are_bounded_by_bytes_as_well_as_rows(tmp_path: Path, format: str) -> None:
    rows = [(i, f"{i:04d}" + "y" * 996) for i in range(200)]  # about 1 KiB a row
    path = tmp_path / f"wide.{format}"
    if format == "csv":
        write_csv(path, [f"{i},{t}" for i, t in rows])
    else:
        path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in rows))
    fetcher = Fetcher(retries=0, chunk_bytes=10 * KIB)
    chunks = list(fetcher.frames(str(path), chunk_rows=1000))
    assert max(map(len, chunks)) <= 11 and len(chunks) >= 18
    whole = pd.concat(chunks)
    assert whole["id"].tolist() == list(range(200)) and whole.index.tolist() == list(range(200))


def test_a_jsonl_line_past_the_ceiling_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text('{"a": 1}\n{"a": "' + "z" * 40 * KIB + '"}\n')
    fetcher = Fetcher(retries=0, max_line_bytes=16 * KIB)
    with pytest.raises(FetchError, match="line 2: longer than max_line_bytes") as caught:
        list(fetcher.frames(str(path)))
    assert caught.value.line == 2


def test_an_endless_line_over_http_stops_at_the_ceiling(base: str) -> None:
    fetcher = Fetcher(retries=0, max_line_bytes=64 * KIB)
    with pytest.raises(FetchError, match="line 2") as caught:
        list(fetcher.frames(f"{base}/endless.csv"))
    assert caught.value.line == 2 and "/endless.csv" in str(caught.value)
