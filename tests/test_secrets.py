"""The DSN's password never leaks: not in an exception's text, args, repr or cause/context
chain, not in log records at DEBUG, not in a Dagster run's event log or stored run config, for
an unreachable host, a refused login (unknown role) and a COPY the server rejects, with the
DSN given directly or through EnvVar("DATABASE_URL")."""

from __future__ import annotations

import logging
import traceback
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import pytest
from _support import q
from dagster import DagsterInstance, EnvVar, asset, materialize

from resources import BadValueError, BulkWriteError, PostgresBulkWriter

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
    failure = [e for e in logs if e.is_dagster_event and e.dagster_event.is_step_failure]
    assert failure, "the step failure is in the event log"
    text = "\n".join(str(e) for e in logs)
    assert ("BadValueError" if case == "copy-error" else "***") in text
    assert SENTINEL not in text
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    assert SENTINEL not in repr(run.run_config)
    assert db.fetchval(f"SELECT count(*) FROM {q(schema)}.t") == 0
