"""The DSN's password never leaks: not in an exception's text, args, repr or cause/context
chain, not in log records at DEBUG, not in a Dagster run's event log or stored run config, for
an unreachable host, a refused login (unknown role) and a COPY the server rejects, with the
DSN given directly or through EnvVar("DATABASE_URL"). Nor does a DSN or fetch URL of any shape
(unencoded / # ? @ in the password, sslpassword=, PASSWORD=, a broken IPv6 host, spaces in the
query) leak its secrets through the errors it causes or Dagster's serialized form of them."""

from __future__ import annotations

import http.server
import logging
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pandas as pd
import pytest
from _support import q
from dagster import DagsterInstance, EnvVar, asset, materialize
from dagster._utils.error import serializable_error_info_from_exc_info

from bulk_assets.fetch import Fetcher, FetchError
from resources import BadValueError, BulkWriteError, PostgresBulkWriter
from resources._redact import mask_url

SENTINEL = "PW_SENTINEL_93f1"


def with_login(dsn: str, user: str | None, password: str) -> str:
    parts = urlsplit(dsn)
    userinfo, _, host = parts.netloc.rpartition("@")
    name = user or userinfo.split(":", 1)[0] or "postgres"
    return urlunsplit(parts._replace(netloc=f"{name}:{password}@{host}"))


def chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__]
        todo += [e for e in getattr(item, "exceptions", ()) if isinstance(e, BaseException)]
    return seen


def assert_no_secret(exc: BaseException) -> None:
    for item in chain(exc):
        for text in (str(item), repr(item), repr(item.args), repr(vars(item))):
            assert SENTINEL not in text, f"{type(item).__name__}: {text}"
    assert SENTINEL not in "".join(traceback.format_exception(exc))
    try:
        raise exc
    except BaseException:
        info = serializable_error_info_from_exc_info(sys.exc_info())
    assert SENTINEL not in info.to_string() and SENTINEL not in repr(info)


def bad_dsns(dsn: str) -> dict[str, str]:
    return {
        "unreachable-port-1": f"postgresql://loader:{SENTINEL}@127.0.0.1:1/x",
        "unknown-role": with_login(dsn, "no_such_role_93f1", SENTINEL),
    }


@pytest.mark.parametrize("case", ["unreachable-port-1", "unknown-role"])
def test_failed_connection_hides_the_password_everywhere(
    case: str, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    bad = bad_dsns(dsn)[case]
    caplog.set_level(logging.DEBUG)
    writer = PostgresBulkWriter(dsn=bad, connect_timeout=3, retries=1)
    assert SENTINEL not in repr(writer) and SENTINEL not in str(writer)
    with pytest.raises(BulkWriteError) as caught:
        writer.write("t", [(1,)], columns=["a"])
    assert_no_secret(caught.value)
    assert ":***@" in str(caught.value)
    assert caplog.records, "the retry of the connection is logged"
    assert all(SENTINEL not in r.getMessage() for r in caplog.records)
    assert SENTINEL not in caplog.text


def test_copy_error_with_a_password_in_the_dsn_hides_it(
    dsn: str, db: Any, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Password login is not enforced by the test servers (trust), so the sentinel password is
    accepted and the write reaches COPY, where the server refuses a value."""
    caplog.set_level(logging.DEBUG)
    db.execute(f"CREATE TABLE {q(schema)}.t (a int CHECK (a > 0))")
    writer = PostgresBulkWriter(dsn=with_login(dsn, None, SENTINEL))
    with writer, pytest.raises(BadValueError) as caught:
        writer.write("t", pd.DataFrame({"a": [1, -1]}), schema=schema)
    assert caught.value.row == 1
    assert_no_secret(caught.value)
    assert SENTINEL not in caplog.text


@pytest.mark.parametrize("case", ["unreachable-port-1", "unknown-role", "copy-error"])
def test_dagster_run_with_env_var_dsn_never_records_the_password(
    case: str, dsn: str, db: Any, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.execute(f"CREATE TABLE {q(schema)}.t (a int CHECK (a > 0))")
    url = with_login(dsn, None, SENTINEL) if case == "copy-error" else bad_dsns(dsn)[case]
    monkeypatch.setenv("DATABASE_URL", url)

    @asset
    def leaky(writer: PostgresBulkWriter) -> None:
        writer.write("t", pd.DataFrame({"a": [1, -1]}), schema=schema)

    instance = DagsterInstance.ephemeral()
    result = materialize(
        [leaky],
        resources={"writer": PostgresBulkWriter(dsn=EnvVar("DATABASE_URL"), connect_timeout=3)},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    logs = instance.all_logs(result.run_id)
    failure = [e for e in logs if e.dagster_event is not None and e.dagster_event.is_step_failure]
    assert failure, "the step failure is in the event log"
    text = "\n".join(str(e) for e in logs)
    assert ("BadValueError" if case == "copy-error" else "***") in text
    assert SENTINEL not in text
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    assert SENTINEL not in repr(run.run_config)
    assert db.fetchval(f"SELECT count(*) FROM {q(schema)}.t") == 0


# -- every DSN and URL shape, through real errors -----------------------------------------------

S = SENTINEL
CLOSED = "127.0.0.1:1"
# Shapes of DSNs whose secret is SENTINEL, each failing for real: a closed port, an unknown
# host, a DSN asyncpg cannot parse, or (LIVE) a refusal by the test server.
DSNS = {
    "plain": f"postgresql://u:{S}@{CLOSED}/x",
    "slash-in-password": f"postgresql://u:pa/{S}@{CLOSED}/x",
    "slash-first": f"postgresql://u:{S}/pa@{CLOSED}/x",
    "hash-in-password": f"postgresql://u:pa#{S}@{CLOSED}/x",
    "question-in-password": f"postgresql://u:pa?{S}@{CLOSED}/x",
    "all-three": f"postgresql://u:pa/ss#w?{S}@{CLOSED}/x",
    "digits-then-slash": f"postgresql://u:12/{S}@{CLOSED}/x",
    "at-in-password": f"postgresql://u:{S}@x@{CLOSED}/x",
    "percent-encoded": f"postgresql://u:{quote(S + '/#?@:', safe='')}@{CLOSED}/x",
    "sslpassword": f"postgresql://u@{CLOSED}/x?sslpassword={S}",
    "query-password": f"postgresql://u@{CLOSED}/x?password={S}",
    "query-PASSWORD": f"postgresql://u@{CLOSED}/x?PASSWORD={S}",
    "query-Password-bad-field": f"postgresql://u@{CLOSED}/x?Password={S}&oops",
    "ipv6-typo": f"postgresql://u:{S}@[::1/x",
    "ipv6-closed": f"postgresql://u:{S}@[::1]:1/x",
    "unknown-host": f"postgresql://u:{S}@no-such-host.invalid/x",
    "bad-port": f"postgresql://u:{S}@127.0.0.1:port/x",
    "bad-sslmode": f"postgresql://u:{S}@{CLOSED}/x?sslmode=bogus",
    "bad-scheme": f"postgres-ql://u:{S}@{CLOSED}/x",
    "keyword-form": f"host=127.0.0.1 port=1 user=u password={S}",
    "LIVE-query-PASSWORD": "?PASSWORD=" + S,
    "LIVE-unknown-role-in-query": "no_such_role_93f1?password=" + S,
}


def live(dsn: str, shape: str) -> str:
    """The test server's DSN with the login (if ``shape`` names one) and query of ``shape``."""
    user, _, query = shape.partition("?")
    parts = urlsplit(dsn)
    netloc = f"{user}@{parts.hostname}:{parts.port}" if user else parts.netloc
    return urlunsplit(parts._replace(netloc=netloc, query=query))


@pytest.mark.parametrize("case", sorted(DSNS))
def test_no_dsn_shape_leaks_its_secret(
    case: str, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    bad = live(dsn, DSNS[case]) if case.startswith("LIVE") else DSNS[case]
    caplog.set_level(logging.DEBUG)
    writer = PostgresBulkWriter(dsn=bad, connect_timeout=3, retries=0)
    with pytest.raises(BulkWriteError) as caught:
        writer.write("t", [(1,)], columns=["a"])
    assert str(caught.value).startswith("could not connect")
    assert_no_secret(caught.value)
    assert SENTINEL not in caplog.text


@pytest.mark.parametrize(
    "case", ["all-three", "ipv6-typo", "bad-port", "keyword-form", "digits-then-slash"]
)
def test_an_unparsable_dsn_is_called_so_without_being_quoted(case: str) -> None:
    writer = PostgresBulkWriter(dsn=DSNS[case], connect_timeout=3, retries=0)
    with pytest.raises(BulkWriteError) as caught:
        writer.write("t", [(1,)], columns=["a"])
    message = str(caught.value)
    assert "DSN" in message and "percent-encode" in message.lower()
    assert "u:" not in message and "127.0.0.1" not in message and "pa" not in message.split()
    assert caught.value.__cause__ is None or caught.value.__cause__.__cause__ is None


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404, "Not Found")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


# Fetch URLs whose secret is SENTINEL; HOST is the local server, which answers 404.
URLS = {
    "token-404": f"http://HOST/a.csv?token={S}",
    "token-with-space": f"http://HOST/a.csv?token=ab {S}",
    "space-before-token": f"http://HOST/a.csv?token={S} cd",
    "signature-404": f"http://HOST/a.csv?X-Amz-Credential=k&X-Amz-Signature={S}",
    "unnamed-long-value": f"http://HOST/a.csv?q1={S}",
    "userinfo-404": f"http://u:{S}@HOST/a.csv",
    "token-as-user": f"http://{S}@HOST/a.csv",
    "slash-in-password": f"http://u:pa/{S}@HOST/a.csv",
    "hash-in-password": f"http://u:pa#{S}@HOST/a.csv",
    "question-in-password": f"http://u:pa?{S}@HOST/a.csv",
    "slash-first": f"http://u:{S}/x@HOST/a.csv",
    "closed-port": f"http://u:{S}@{CLOSED}/a.csv?token={S}",
    "unknown-host": f"http://u:{S}@no-such-host.invalid/a.csv",
    "ipv6-typo": f"http://u:{S}@[::1/a.csv?sig={S}",
    "bad-port": f"http://u:{S}@127.0.0.1:port/a.csv",
    "control-character": f"http://HOST/a.csv?token={S}\n",
    "file-url-token": f"file:///no/such/dir/a.csv?token={S}",
}


@pytest.mark.parametrize("case", sorted(URLS))
def test_no_url_shape_leaks_its_secret(
    case: str, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    url = URLS[case].replace("HOST", f"127.0.0.1:{port}")
    caplog.set_level(logging.DEBUG)
    fetcher = Fetcher(timeout=3, retries=1)
    with pytest.raises(FetchError) as caught:
        list(fetcher.frames(url, format="csv"))
    assert_no_secret(caught.value)
    assert SENTINEL not in caught.value.location
    assert SENTINEL not in caplog.text


@pytest.mark.parametrize("case", sorted(URLS))
def test_a_masked_url_shows_no_secret(case: str) -> None:
    assert SENTINEL not in mask_url(URLS[case])
    assert SENTINEL not in mask_url(DSNS.get(case, ""), keep_user=True)
