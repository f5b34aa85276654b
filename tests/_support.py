"""Helpers shared by the fault, concurrency, privilege and property suites."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable
from typing import Any, get_args

import asyncpg
import pytest

from resources import WRITE_MODES as _REGISTRY
from resources import Mode

_TYPED: dict[str, Mode] = {name: name for name in get_args(Mode)}


def _as_mode(name: str) -> Mode:
    """A registry name as the writer's ``mode`` type: a mode missing from ``Mode`` fails here."""
    try:
        return _TYPED[name]
    except KeyError:
        raise AssertionError(
            f"write mode {name!r} is in WRITE_MODES, not in resources.Mode"
        ) from None


# Every write mode, from the registry: a new mode is tested by every suite that uses these.
MODES: list[Mode] = [_as_mode(name) for name in _REGISTRY]
KEYED: tuple[Mode, ...] = tuple(_as_mode(name) for name, m in _REGISTRY.items() if m.needs_keys)


def q(name: str) -> str:
    """Quote an identifier for the test's own SQL."""
    return '"' + name.replace('"', '""') + '"'


def require_slow(request: pytest.FixtureRequest) -> None:
    """Long variants run only when asked for with ``-m slow``: a plain run (CI) reports them as
    skipped with this reason instead of spending minutes on them."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long variant: run it with -m slow")


async def sessions_of(dsn: str, app: str) -> list[str]:
    """States of the server sessions whose application_name is ``app``."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT coalesce(state, '') AS state FROM pg_stat_activity WHERE application_name = $1",
            app,
        )
        return [r["state"] for r in rows]
    finally:
        await conn.close()


def wait_until_gone(dsn: str, app: str, *, within: float = 10.0) -> list[str]:
    """Poll until no session named ``app`` is left (a terminated backend needs a moment to
    leave pg_stat_activity); return what is left at the deadline."""
    deadline = time.monotonic() + within
    while (left := asyncio.run(sessions_of(dsn, app))) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def content_hash(rows: Iterable[Iterable[Any]]) -> str:
    """md5 of the rows rendered one per line, in the given order: equal content, equal hash."""
    digest = hashlib.md5()
    for row in rows:
        digest.update(("\t".join(map(str, row)) + "\n").encode())
    return digest.hexdigest()
