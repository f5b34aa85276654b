"""The fetch resource against a real HTTP server on 127.0.0.1 and, end to end, a real
PostgreSQL: the same rows in every format, chunking, failures named precisely, credentials
never shown, and an all-or-nothing load when the download breaks mid-stream."""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import http.server
import io
import json
import math
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bulk_assets._fetch_errors import redact
from bulk_assets._fetch_formats import FILE_FORMATS, FileFormat, infer_format
from bulk_assets.fetch import Fetcher, FetchError, Format
from bulk_assets.specs import FetchSource
from resources import PostgresBulkWriter

N = 25
DTYPES = {
    "id": "int64",
    "name": "string",
    "score": "float64",
    "active": "bool",
    "day": "date",
    "at": "datetime64[us, UTC]",
}
CITIES = Path(__file__).resolve().parents[1] / "bulk_assets/defs/examples/cities/cities.csv"
CITIES_DTYPES = {
    "city_id": "int64",
    "name": "string",
    "country_code": "string",
    "population": "int64",
    "founded": "date",
    "lat": "float64",
    "lon": "float64",
}


def expected_frame(n: int = N) -> pd.DataFrame:
    names = [f"name {i}" for i in range(n)]
    names[3], names[4], names[5] = "comma, inside", 'quote "q"', "Ålesund"
    return pd.DataFrame(
        {
            "id": pd.Series(range(1, n + 1), dtype="int64"),
            "name": pd.Series(names, dtype="string"),
            "score": pd.Series(
                [math.nan if i % 6 == 0 else i * 0.25 for i in range(n)], dtype="float64"
            ),
            "active": pd.Series([i % 3 == 0 for i in range(n)], dtype="bool"),
            "day": pd.Series(
                [
                    None if i % 5 == 0 else dt.date(1890 + i, 1 + i % 12, 1 + i % 28)
                    for i in range(n)
                ],
                dtype=object,
            ),
            "at": pd.Series(
                [
                    dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=7 * i, seconds=i)
                    for i in range(n)
                ]
            ).astype("datetime64[us, UTC]"),
        }
    )


def as_csv(frame: pd.DataFrame) -> bytes:
    text: str = frame.to_csv(index=False)
    return text.encode()


def as_parquet(frame: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    # Row groups of 10 rows: chunks must still come out chunk_rows long.
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), out, row_group_size=10)
    return out.getvalue()


def as_jsonl(frame: pd.DataFrame) -> bytes:
    lines = []
    for rec in frame.to_dict("records"):
        rec = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in rec.items()}
        rec["day"] = rec["day"].isoformat() if rec["day"] is not None else None
        rec["at"] = rec["at"].isoformat()
        lines.append(json.dumps(rec, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode()


# -- a local HTTP server ---------------------------------------------------------------------

Route = Callable[[http.server.BaseHTTPRequestHandler], None]


class Server:
    """``routes`` maps a path to a function writing the response; ``seen`` keeps
    (path, headers) of every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.seen.append((self.path, dict(self.headers)))
                route = owner.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_error(404, "Not Found")
                    return
                # The client may have given up already (the timeout tests).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    route(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str, *, host: str = "127.0.0.1", userinfo: str = "") -> str:
        return f"http://{userinfo}{host}:{self.port}{path}"

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.seen if p.split("?")[0] == path)


def body(
    data: bytes,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    length: int | None = None,
    send: int | None = None,
    delay_headers: float = 0.0,
    stall_after: int | None = None,
) -> Route:
    """A response: ``length`` overrides Content-Length, ``send`` cuts the body short (then the
    connection closes), ``stall_after`` bytes in, the server goes silent for a while."""

    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        time.sleep(delay_headers)
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data) if length is None else length))
        handler.end_headers()
        payload = data if send is None else data[:send]
        if stall_after is not None:
            handler.wfile.write(payload[:stall_after])
            handler.wfile.flush()
            time.sleep(2.0)
            payload = payload[stall_after:]
        handler.wfile.write(payload)

    return route


def sequence(*routes: Route) -> Route:
    """Each request gets the next route; the last one repeats."""
    calls = iter(range(10**6))

    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        routes[min(next(calls), len(routes) - 1)](handler)

    return route


def redirect(to: str) -> Route:
    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", to)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def fetcher() -> Fetcher:
    # No retry pauses unless a test asks for them.
    return Fetcher(timeout=5.0, retries=0)


def every_text(exc: BaseException) -> str:
    """str, repr and the whole traceback with its chained causes."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


def read_all(chunks: Iterator[pd.DataFrame]) -> tuple[pd.DataFrame, list[int]]:
    frames = list(chunks)
    return pd.concat(frames), [len(f) for f in frames]


# -- the same rows in every format ----------------------------------------------------------


SOURCES: dict[str, Callable[[pd.DataFrame], bytes]] = {
    "x.csv": lambda f: as_csv(f),
    "x.csv.gz": lambda f: gzip.compress(as_csv(f)),
    "x.parquet": lambda f: as_parquet(f),
    "x.jsonl": lambda f: as_jsonl(f),
    "x.ndjson.gz": lambda f: gzip.compress(as_jsonl(f)),
}


def test_the_format_literals_are_the_registry() -> None:
    assert get_args(Format) == tuple(FILE_FORMATS)
    literal, none = get_args(FetchSource.model_fields["format"].annotation)
    assert none is type(None)
    assert get_args(literal) == tuple(FILE_FORMATS)


@pytest.mark.parametrize("file_format", list(FILE_FORMATS.values()), ids=lambda f: f.name)
def test_each_format_claims_its_extensions_and_is_read_here(file_format: FileFormat) -> None:
    for extension in file_format.extensions:
        assert infer_format(f"/data/x{extension.upper()}") == (file_format, False)
        assert infer_format(f"/data/x{extension}.gz") == (file_format, True)
    assert any(infer_format(name)[0] == file_format for name in SOURCES)


def test_a_format_has_one_reader() -> None:
    with pytest.raises(ValueError, match="exactly one of read_stream and read_file"):
        FileFormat("tsv", "TSV", (".tsv",))
    with pytest.raises(ValueError, match="exactly one of read_stream and read_file"):
        FileFormat(
            "tsv",
            "TSV",
            (".tsv",),
            read_stream=FILE_FORMATS["csv"].read_stream,
            read_file=FILE_FORMATS["parquet"].read_file,
        )


@pytest.mark.parametrize("name", list(SOURCES))
@pytest.mark.parametrize("chunk_rows", [1, 7, 10, N, 1000])
def test_every_format_gives_the_same_frames(
    server: Server, fetcher: Fetcher, name: str, chunk_rows: int
) -> None:
    expected = expected_frame()
    server.routes[f"/same/{name}"] = body(SOURCES[name](expected))
    got, sizes = read_all(
        fetcher.frames(server.url(f"/same/{name}"), dtypes=DTYPES, chunk_rows=chunk_rows)
    )
    assert len(sizes) == math.ceil(N / chunk_rows)
    assert sizes[:-1] == [chunk_rows] * (len(sizes) - 1)
    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize("name", list(SOURCES))
def test_rename_and_columns_pick_and_order(
    server: Server, fetcher: Fetcher, name: str, tmp_path: Path
) -> None:
    expected = expected_frame()
    server.routes[f"/cols/{name}"] = body(SOURCES[name](expected))
    chunks = list(
        fetcher.frames(
            server.url(f"/cols/{name}"),
            rename={"id": "city_id", "day": "founded"},
            columns=["founded", "city_id"],
            dtypes={"city_id": "Int64", "founded": "date"},
            chunk_rows=10,
        )
    )
    assert [list(c.columns) for c in chunks] == [["founded", "city_id"]] * 3
    got = pd.concat(chunks)
    assert got["city_id"].tolist() == expected["id"].tolist()
    assert got["founded"].tolist() == expected["day"].tolist()


def test_local_path_file_url_and_relative_path(
    fetcher: Fetcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = expected_frame()
    for name, make in SOURCES.items():
        (tmp_path / name).write_bytes(make(expected))
    monkeypatch.chdir(tmp_path)
    for location in [str(tmp_path / "x.parquet"), (tmp_path / "x.csv.gz").as_uri(), "x.jsonl"]:
        got, _ = read_all(fetcher.frames(location, dtypes=DTYPES, chunk_rows=10))
        pd.testing.assert_frame_equal(got, expected)


def test_content_encoding_gzip_is_decoded(server: Server, fetcher: Fetcher) -> None:
    expected = expected_frame()
    server.routes["/enc.csv"] = body(
        gzip.compress(as_csv(expected)), headers={"Content-Encoding": "gzip"}
    )
    got, _ = read_all(fetcher.frames(server.url("/enc.csv"), dtypes=DTYPES))
    pd.testing.assert_frame_equal(got, expected)
    assert "gzip" in server.seen[-1][1].get("Accept-Encoding", "")


def test_format_argument_overrides_the_name(server: Server, fetcher: Fetcher) -> None:
    server.routes["/export"] = body(as_jsonl(expected_frame()))
    with pytest.raises(ValueError, match="pass format="):
        fetcher.frames(server.url("/export"))
    got, _ = read_all(fetcher.frames(server.url("/export"), format="jsonl", dtypes=DTYPES))
    pd.testing.assert_frame_equal(got, expected_frame())


def test_header_only_csv_gives_one_empty_typed_frame(server: Server, fetcher: Fetcher) -> None:
    server.routes["/empty.csv"] = body(b"id,name\n")
    chunks = list(fetcher.frames(server.url("/empty.csv"), dtypes={"id": "int64"}))
    assert len(chunks) == 1 and chunks[0].empty
    assert list(chunks[0].columns) == ["id", "name"] and chunks[0]["id"].dtype == "int64"


def test_csv_reads_only_empty_fields_as_missing(server: Server, fetcher: Fetcher) -> None:
    # pandas' default would read Namibia's code, "NA", as a missing value.
    server.routes["/na.csv"] = body(b"code,n\nNA,1\n,2\nnull,3\n")
    (got,) = fetcher.frames(server.url("/na.csv"), dtypes={"code": "string"})
    assert got["code"].tolist() == ["NA", pd.NA, "null"]


# -- laziness and replay -------------------------------------------------------------------


def test_nothing_connects_before_the_first_chunk(server: Server, fetcher: Fetcher) -> None:
    server.routes["/lazy.csv"] = body(as_csv(expected_frame()))
    chunks = fetcher.frames(server.url("/lazy.csv"))
    assert server.hits("/lazy.csv") == 0
    next(chunks)
    assert server.hits("/lazy.csv") == 1
    chunks.close()
    # Each call is a fresh read from the start: what lets a writer replay it.
    first, second = (read_all(fetcher.frames(server.url("/lazy.csv")))[0] for _ in range(2))
    pd.testing.assert_frame_equal(first, second)
    assert server.hits("/lazy.csv") == 3


def test_retries_a_5xx_before_any_chunk(server: Server) -> None:
    server.routes["/flaky.csv"] = sequence(
        body(b"busy", status=503), body(as_csv(expected_frame()))
    )
    got, _ = read_all(Fetcher(retries=1).frames(server.url("/flaky.csv"), dtypes=DTYPES))
    pd.testing.assert_frame_equal(got, expected_frame())
    assert server.hits("/flaky.csv") == 2


# -- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "reason"), [(404, "Not Found"), (500, "Internal Server Error")])
def test_http_error_names_status_and_location(
    server: Server, fetcher: Fetcher, status: int, reason: str
) -> None:
    server.routes[f"/status{status}.csv"] = body(b"nope", status=status)
    url = server.url(f"/status{status}.csv")
    with pytest.raises(FetchError) as caught:
        next(fetcher.frames(url))
    assert str(caught.value) == f"GET {url} failed: HTTP {status} {reason} (csv)"
    assert caught.value.status == status
    assert caught.value.transient is (status >= 500)


def test_truncated_csv_is_reported_not_read_short(server: Server, fetcher: Fetcher) -> None:
    data = as_csv(expected_frame())
    server.routes["/short.csv"] = body(data, length=len(data) + 500, send=len(data) // 2)
    with pytest.raises(FetchError, match="truncated") as caught:
        list(fetcher.frames(server.url("/short.csv")))
    assert f"{len(data) // 2:,} bytes of the {len(data) + 500:,} announced" in str(caught.value)
    assert caught.value.transient


def test_truncation_before_any_chunk_is_retried(server: Server) -> None:
    data = as_csv(expected_frame())
    server.routes["/short-once.csv"] = sequence(
        body(data, length=len(data) + 10, send=20), body(data)
    )
    got, _ = read_all(Fetcher(retries=1).frames(server.url("/short-once.csv"), dtypes=DTYPES))
    pd.testing.assert_frame_equal(got, expected_frame())
    assert server.hits("/short-once.csv") == 2


def test_truncated_gzip_is_reported(server: Server, fetcher: Fetcher) -> None:
    data = gzip.compress(as_csv(expected_frame()) * 20)
    server.routes["/cut.csv.gz"] = body(data[: len(data) - 30])  # Content-Length matches
    with pytest.raises(FetchError, match="truncated: the gzip stream ends"):
        list(fetcher.frames(server.url("/cut.csv.gz")))


def test_truncated_parquet_is_reported_and_its_download_deleted(
    server: Server, fetcher: Fetcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    data = as_parquet(expected_frame())
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(data[:-100])
    with pytest.raises(FetchError, match="truncated"):
        list(fetcher.frames(str(cut)))
    server.routes["/cut.parquet"] = body(data[:-100])
    with pytest.raises(FetchError, match="truncated: the file"):
        list(fetcher.frames(server.url("/cut.parquet")))
    server.routes["/short.parquet"] = body(data, length=len(data) + 1, send=len(data) - 100)
    with pytest.raises(FetchError, match="truncated: the connection closed"):
        list(fetcher.frames(server.url("/short.parquet")))
    assert not list(tmp_path.glob("bulk-assets-fetch-*"))


def test_parquet_download_is_deleted_when_done_or_abandoned(
    server: Server, fetcher: Fetcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    server.routes["/ok.parquet"] = body(as_parquet(expected_frame()))
    chunks = fetcher.frames(server.url("/ok.parquet"), chunk_rows=5)
    next(chunks)
    assert len(list(tmp_path.glob("bulk-assets-fetch-*.parquet"))) == 1
    chunks.close()
    assert not list(tmp_path.glob("bulk-assets-fetch-*"))
    assert sum(map(len, fetcher.frames(server.url("/ok.parquet"), chunk_rows=5))) == N
    assert not list(tmp_path.glob("bulk-assets-fetch-*"))


def test_malformed_csv_row_names_its_line(server: Server, fetcher: Fetcher) -> None:
    lines = as_csv(expected_frame()).decode().splitlines()
    lines[17] += ",surplus"  # line 18 of the file, the header being line 1
    server.routes["/bad.csv"] = body("\n".join(lines).encode())
    chunks = fetcher.frames(server.url("/bad.csv"), chunk_rows=5)
    with pytest.raises(FetchError, match=r"line 18 has 7 fields, expected 6") as caught:
        for _ in chunks:
            pass
    assert caught.value.line == 18
    assert server.url("/bad.csv") in str(caught.value) and "csv" in str(caught.value)


def test_malformed_jsonl_line_is_named(server: Server, fetcher: Fetcher) -> None:
    lines = as_jsonl(expected_frame()).decode().splitlines()
    lines.insert(3, "")  # blank lines count as lines, not as rows
    lines[12] = lines[12][:-5]
    server.routes["/bad.jsonl"] = body("\n".join(lines).encode())
    with pytest.raises(FetchError, match=r"line 13 is not valid JSON") as caught:
        list(fetcher.frames(server.url("/bad.jsonl"), chunk_rows=4))
    assert (caught.value.line, caught.value.row) == (13, 11)


def test_bad_value_names_column_and_global_row(server: Server, fetcher: Fetcher) -> None:
    frame = expected_frame().astype({"score": object})
    frame.loc[17, "score"] = "n/a"
    server.routes["/badval.csv"] = body(as_csv(frame))
    with pytest.raises(FetchError, match=r"column 'score', row 17: expected float64, got 'n/a'"):
        list(fetcher.frames(server.url("/badval.csv"), dtypes=DTYPES, chunk_rows=5))
    server.routes["/nulls.csv"] = body(b"id,n\n1,a\n2,b\n3,c\n,d\n")
    with pytest.raises(FetchError, match=r"column 'id', row 3: .*missing value .*'Int64'"):
        list(fetcher.frames(server.url("/nulls.csv"), dtypes={"id": "int64"}))


def test_slow_headers_time_out(server: Server) -> None:
    server.routes["/slow.csv"] = body(b"a\n1\n", delay_headers=1.0)
    started = time.perf_counter()
    with pytest.raises(FetchError, match=r"no response within the timeout of 0.3 s") as caught:
        next(Fetcher(timeout=0.3, retries=0).frames(server.url("/slow.csv")))
    assert time.perf_counter() - started < 0.9
    assert caught.value.transient


def test_stalled_body_hits_the_read_timeout(server: Server) -> None:
    data = as_csv(expected_frame())
    server.routes["/stall.csv"] = body(data, stall_after=100)
    with pytest.raises(FetchError, match=r"no data for 0.3 s after 100 bytes .*read timeout"):
        list(Fetcher(timeout=0.3, retries=0).frames(server.url("/stall.csv")))


def test_credentials_never_appear_in_errors(server: Server, fetcher: Fetcher) -> None:
    data = as_csv(expected_frame())
    server.routes["/private.csv"] = body(data, length=len(data) + 9, send=40)
    texts = []
    for url in [
        server.url("/private.csv?token=t0ken", userinfo="user:s3cret@"),
        server.url("/missing.csv?token=t0ken", userinfo="user:s3cret@"),
        "http://user:s3cret@127.0.0.1:9/x.csv?token=t0ken",  # port 9: connection refused
    ]:
        with pytest.raises(FetchError) as caught:
            list(fetcher.frames(url))
        assert "127.0.0.1" in caught.value.location
        texts.append(every_text(caught.value))
    joined = "\n".join(texts)
    assert "s3cret" not in joined and "t0ken" not in joined and "user:" not in joined
    assert "http://***@127.0.0.1" in joined and "token=***" in joined
    # The credentials were used, as Basic auth, not dropped.
    sent = dict(server.seen)["/private.csv?token=t0ken"]
    assert sent["Authorization"] == "Basic dXNlcjpzM2NyZXQ="


def test_secret_headers_follow_redirects_on_the_same_origin_only(server: Server) -> None:
    server.routes["/data.csv"] = body(b"a\n1\n")
    server.routes["/same"] = redirect(server.url("/data.csv"))
    server.routes["/other"] = redirect(server.url("/data.csv", host="localhost"))
    fetcher = Fetcher(retries=0, headers={"Authorization": "Bearer abc"})
    for start in ["/same", "/other"]:
        (chunk,) = fetcher.frames(server.url(start), format="csv")
        assert chunk["a"].tolist() == [1]
    auth = [h.get("Authorization") for p, h in server.seen if p in ("/same", "/other", "/data.csv")]
    assert auth[-4:] == ["Bearer abc", "Bearer abc", "Bearer abc", None]


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("https://u:p@h.example/a.csv", "https://***@h.example/a.csv"),
        (
            "https://tok@h.example:8443/a.csv?sig=x&v=1#f",
            "https://***@h.example:8443/a.csv?sig=***&v=***",
        ),
        ("/data/a.csv", "/data/a.csv"),
        ("C:\\data\\a.csv", "C:\\data\\a.csv"),
    ],
)
def test_redact(location: str, shown: str) -> None:
    assert redact(location) == shown


def test_bad_arguments_fail_at_once(fetcher: Fetcher) -> None:
    with pytest.raises(ValueError, match="chunk_rows"):
        fetcher.frames("x.csv", chunk_rows=0)
    with pytest.raises(ValueError, match="chunksize"):
        fetcher.frames("x.csv", read_options={"chunksize": 5})
    with pytest.raises(TypeError):
        fetcher.frames("x.csv", dtypes={"a": "no-such-dtype"})
    with pytest.raises(FetchError, match="cannot fetch ftp://"):
        fetcher.frames("ftp://h/x.csv")


# -- the shipped sample ----------------------------------------------------------------------


def test_shipped_cities_reads_with_its_dtypes(fetcher: Fetcher) -> None:
    chunks = list(fetcher.frames(str(CITIES), dtypes=CITIES_DTYPES, chunk_rows=64))
    assert [len(c) for c in chunks] == [64, 64, 64, 8]
    cities = pd.concat(chunks)
    assert list(cities.columns) == list(CITIES_DTYPES)
    assert {c: str(t) for c, t in cities.dtypes.items()} == {
        **CITIES_DTYPES,
        "name": "string",
        "country_code": "string",
        "founded": "object",
    }
    assert cities["city_id"].is_unique and cities["name"].is_unique
    assert cities["country_code"].str.fullmatch("[A-Z]{2}").all()
    assert (cities["country_code"] == "NA").any()  # Namibia, not a missing value
    founded = cities["founded"]
    assert founded.isna().any() and founded.dropna().map(type).eq(dt.date).all()
    assert (cities["population"] > 0).all()
    assert cities["lat"].between(-90, 90).all() and cities["lon"].between(-180, 180).all()


# -- end to end into PostgreSQL ---------------------------------------------------------------


def big_csv(rows: int) -> bytes:
    lines = ["id,name,score"] + [f"{i},name {i},{i / 8}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


class Counted:
    """A replayable source that counts the chunks handed to the writer."""

    def __init__(self, make: Callable[[], Iterator[pd.DataFrame]]) -> None:
        self.make = make
        self.chunks = 0

    def __call__(self) -> Iterator[pd.DataFrame]:
        for chunk in self.make():
            self.chunks += 1
            yield chunk


def test_writer_loads_every_fetched_row(
    server: Server, fetcher: Fetcher, db: Any, dsn: str, schema: str
) -> None:
    server.routes["/load.csv.gz"] = body(gzip.compress(big_csv(5000)))
    url = server.url("/load.csv.gz")
    dtypes = {"id": "int64", "name": "string", "score": "float64"}
    result = PostgresBulkWriter(dsn=dsn).write(
        "t", lambda: fetcher.frames(url, dtypes=dtypes, chunk_rows=1000), create=True, schema=schema
    )
    assert result.rows == 5000
    count, ids, scores = db.fetch(f'SELECT count(*), sum(id), sum(score) FROM "{schema}".t')[0]
    assert (count, ids, scores) == (5000, sum(range(5000)), sum(i / 8 for i in range(5000)))


@pytest.mark.parametrize("fault", ["truncated", "malformed"])
def test_writer_keeps_nothing_when_the_fetch_fails_mid_stream(
    server: Server, fetcher: Fetcher, db: Any, dsn: str, schema: str, fault: str
) -> None:
    # 20,000 rows (~450 KB): past pandas' 256 KiB read block, so chunks go out before the
    # fault is reached.
    data = big_csv(20_000)
    if fault == "truncated":
        route = body(data, length=len(data) + 100, send=len(data) - 2000)
    else:
        lines = data.decode().splitlines()
        lines[15_000] += ",9"
        route = body("\n".join(lines).encode())
    server.routes[f"/{fault}-big.csv"] = route
    source = Counted(lambda: fetcher.frames(server.url(f"/{fault}-big.csv"), chunk_rows=1000))
    with pytest.raises(FetchError, match=fault if fault == "truncated" else "line 15001"):
        PostgresBulkWriter(dsn=dsn).write("t", source, create=True, schema=schema)
    assert source.chunks >= 2  # the failure came after rows had been sent
    assert db.fetchval("SELECT to_regclass($1)", f'"{schema}".t') is None


def test_runs_as_a_dagster_resource_with_headers_from_the_environment(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import EnvVar, asset, materialize

    monkeypatch.setenv("FETCH_TEST_TOKEN", "Bearer from-env")
    server.routes["/dagster.csv"] = body(as_csv(expected_frame()))
    url = server.url("/dagster.csv")

    @asset
    def fetched(fetcher: Fetcher) -> int:
        return sum(len(c) for c in fetcher.frames(url, chunk_rows=10))

    result = materialize(
        [fetched],
        resources={"fetcher": Fetcher(headers={"Authorization": EnvVar("FETCH_TEST_TOKEN")})},
    )
    assert result.output_for_node("fetched") == N
    assert dict(server.seen)["/dagster.csv"]["Authorization"] == "Bearer from-env"
