"""What a fetch refuses: a redirect off http(s), a CSV header naming a column twice, and a
field or line past the Fetcher's ceiling, each with an error naming location and place; and
chunks bounded by bytes as well as rows."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

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
