"""The fetch's retry loop, one for DataFrames and record batches: an attempt that fails
transiently before handing out anything is made again after a pause; the error that ends
the fetch has the source's secrets scrubbed."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from ._fetch_errors import FetchError, scrubbed

if TYPE_CHECKING:
    from resources._redact import Secrets

__all__ = ["with_retries"]

T = TypeVar("T")

# Retry pauses: full jitter (the writer's policy) up to 1 s, 2 s, 4 s ..., capped at 8 s: a
# server that dropped many readers at once is not hit by them all again at once.
_BACKOFF_FIRST = 0.5
_BACKOFF_MAX = 8.0


def with_retries(
    attempt: Callable[[], Iterator[T]],
    *,
    retries: int,
    secrets: Secrets,
    log: Any,
) -> Generator[T, None, None]:
    """What ``attempt()`` yields; a transient FetchError before the first item starts it over
    (at most ``retries`` times). Closing this generator closes the attempt in flight."""
    made = 0
    while True:
        yielded = False
        try:
            with contextlib.closing(attempt()) as items:  # type: ignore[type-var]
                for item in items:
                    yielded = True
                    yield item
            return
        except FetchError as exc:
            failure = scrubbed(exc, secrets)
            retry = not yielded and exc.transient and made < retries
        if not retry:
            # Raised here, outside the except block: a scrubbed copy must not carry the
            # original, whose text holds a secret, as its __context__.
            raise failure
        made += 1
        time.sleep(_pause(log, failure, made, retries))


def _pause(log: Any, failure: FetchError, attempt: int, retries: int) -> float:
    from resources._retry import backoff

    pause = backoff(attempt, base=_BACKOFF_FIRST, cap=_BACKOFF_MAX)
    log.warning(
        "%s; retrying in %.1f s (attempt %d of %d)", failure, pause, attempt + 1, retries + 1
    )
    return pause
