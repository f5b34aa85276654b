"""Running one case in a process of its own, so that its peak RSS is its own.

A fork server imports pandas, asyncpg and the writer once; every case is a fork of it. The
case's peak is then the fork server's few hundred MB of imports plus what the case itself
allocates, never the peak of an earlier case or of the parent holding every DataFrame.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import psutil

_MB = 1024 * 1024
# Imported once by the fork server: a fork then starts a case in milliseconds, not seconds.
_PRELOAD = ["numpy", "pandas", "asyncpg", "resources", "benchmarks._cases"]


class CaseFailed(RuntimeError):
    """A case raised in its process; the message carries that process's traceback."""


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / _MB


def peak_rss_mb() -> float:
    """The highest RSS this process has had, from the kernel's own high-water mark."""
    if os.name == "posix":
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports KiB, macOS bytes.
        return peak / _MB if sys.platform == "darwin" else peak / 1024
    info = psutil.Process().memory_info()
    return float(getattr(info, "peak_wset", info.rss)) / _MB


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


class Isolated:
    """Runs ``target(spec)`` in a fresh process per call and returns its result."""

    def __init__(self) -> None:
        methods = multiprocessing.get_all_start_methods()
        self._context: Any = multiprocessing.get_context(
            "forkserver" if "forkserver" in methods else "spawn"
        )
        if "forkserver" in methods:
            self._context.set_forkserver_preload(_PRELOAD)

    @property
    def start_method(self) -> str:
        return str(self._context.get_start_method())

    def run(self, target: Callable[[Any], dict[str, Any]], spec: Any) -> dict[str, Any]:
        receive, send = self._context.Pipe(duplex=False)
        process = self._context.Process(target=_child, args=(target, spec, send), daemon=True)
        process.start()
        send.close()
        try:
            status, payload = receive.recv()
        except EOFError:
            process.join()
            raise CaseFailed(
                f"the case's process died without a result (exit code {process.exitcode})"
            ) from None
        finally:
            receive.close()
        process.join()
        if status != "ok":
            raise CaseFailed(payload)
        return dict(payload)


def _child(target: Callable[[Any], dict[str, Any]], spec: Any, send: Connection) -> None:
    try:
        result = target(spec)
    except BaseException:
        send.send(("error", traceback.format_exc()))
    else:
        send.send(("ok", result))
    finally:
        send.close()
