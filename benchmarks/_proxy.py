"""A TCP proxy on 127.0.0.1 that adds network latency and counts round trips.

Every byte is held back half the round-trip time in each direction, as a link of that latency
would, without limiting throughput: reading goes on while earlier bytes wait, so a client that
pipelines (sends again before the answer) pays the latency once. A new connection waits one
extra round trip before its first bytes reach the server, which is what its TCP handshake
costs on such a link.

Two counts, for every connection through the proxy, taken as bytes arrive (before the delay):

- ``round_trips``: each time the server answers after the client sent (bytes the client sends
  again before that answer ride the same trip; a Terminate that nothing answers is free),
  plus one per new connection for its TCP handshake. This is what latency costs.
- ``ready``: the server's ReadyForQuery messages ('Z'), one per completed query cycle of the
  protocol, the count that leaves out the handshake and the SSL negotiation.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

# Bytes read per call: a 256 KiB COPY chunk takes a few reads, a protocol message one.
_READ = 1 << 16


@dataclass(slots=True)
class Counts:
    round_trips: int = 0
    ready: int = 0
    connections: int = 0
    client_bytes: int = 0
    server_bytes: int = 0


@dataclass(slots=True)
class _Link:
    """One client connection's state: whether the server spoke since the client last did."""

    #: The client sent since the server last spoke: the server's next bytes end a trip.
    waiting: bool = False
    #: Server bytes not yet parsed into whole messages; before the startup reply, a lone
    #: 'N' or 'S' answers an SSLRequest.
    pending: bytearray = field(default_factory=bytearray)
    ssl_request: bool = False


class DelayProxy:
    """``with DelayProxy("127.0.0.1", 5432, rtt_ms=10) as proxy:`` then connect to
    ``proxy.port``; ``proxy.take()`` returns the counts since the last call and starts anew.

    It runs in a process of its own, so that the code measured (its threads converting
    chunks, its event loop) never competes with the forwarding for the interpreter."""

    def __init__(self, host: str, port: int, *, rtt_ms: float) -> None:
        self._args = (host, port, rtt_ms)
        self.port = 0

    def __enter__(self) -> DelayProxy:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_forward, args=(*self._args, child), daemon=True)
        self._process.start()
        if not self._pipe.poll(30):
            self._process.terminate()
            raise RuntimeError("the delaying proxy did not start within 30 s")
        self.port = int(self._pipe.recv())
        return self

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(OSError):
            self._pipe.send("stop")
        self._process.join(15)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)

    def take(self) -> Counts:
        self._pipe.send("take")
        counts: Counts = self._pipe.recv()
        return counts


def _forward(host: str, port: int, rtt_ms: float, pipe: Connection) -> None:
    """The proxy's process: forward until told to stop, answering for the counts."""
    with _Forwarder(host, port, rtt_ms=rtt_ms) as forwarder:
        pipe.send(forwarder.port)
        while pipe.recv() == "take":
            pipe.send(forwarder.take())


class _Forwarder:
    """The forwarding itself, on an event loop in a thread of the proxy's process."""

    def __init__(self, host: str, port: int, *, rtt_ms: float) -> None:
        self.host, self.target_port = host, port
        self.delay = rtt_ms / 2000.0
        self.port = 0
        self._counts = Counts()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> _Forwarder:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self.port = future.result(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def take(self) -> Counts:
        with self._lock:
            counts, self._counts = self._counts, Counts()
        return counts

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        link = _Link()
        with self._lock:
            self._counts.connections += 1
            self._counts.round_trips += 1  # the TCP handshake
        try:
            server_r, server_w = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            client_w.close()
            self._tasks.discard(task)
            return
        # The handshake's round trip, before the client's first bytes travel.
        handshake_done = time.monotonic() + 2 * self.delay
        # Stopped with connections open: a cancelled handler would be reported by asyncio's
        # stream machinery as an error; ending it quietly is all that stopping needs.
        with contextlib.suppress(asyncio.CancelledError):
            await self._relay(client_r, client_w, server_r, server_w, link, handshake_done)
        self._tasks.discard(task)

    async def _relay(
        self,
        client_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        server_r: asyncio.StreamReader,
        server_w: asyncio.StreamWriter,
        link: _Link,
        handshake_done: float,
    ) -> None:
        try:
            await asyncio.gather(
                self._pipe(client_r, server_w, link, upstream=True, not_before=handshake_done),
                self._pipe(server_r, client_w, link, upstream=False, not_before=0.0),
            )
        finally:
            for writer in (client_w, server_w):
                with contextlib.suppress(Exception):
                    writer.close()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: _Link,
        *,
        upstream: bool,
        not_before: float,
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    with contextlib.suppress(Exception):
                        writer.write_eof()
                    return
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        delivering = asyncio.create_task(deliver())
        try:
            while True:
                data = await reader.read(_READ)
                self._count(link, data, upstream=upstream)
                due = max(time.monotonic() + self.delay, not_before)
                queue.put_nowait((due, data))
                if not data:
                    break
            await delivering
        finally:
            delivering.cancel()

    def _count(self, link: _Link, data: bytes, *, upstream: bool) -> None:
        if not data:
            return
        with self._lock:
            if upstream:
                self._counts.client_bytes += len(data)
                # SSLRequest: length 8, code 80877103; its answer is one byte, no header.
                if data[:8] == b"\x00\x00\x00\x08\x04\xd2\x16\x2f":
                    link.ssl_request = True
                link.waiting = True
                return
            self._counts.server_bytes += len(data)
            if link.waiting:
                self._counts.round_trips += 1
                link.waiting = False
            buffer = link.pending
            buffer += data
            if link.ssl_request and bytes(buffer[:1]) in (b"N", b"S"):
                del buffer[:1]
                link.ssl_request = False
            # Messages: a type byte, then a 4-byte length that counts itself.
            while len(buffer) >= 5:
                size = int.from_bytes(buffer[1:5], "big") + 1
                if len(buffer) < size:
                    break
                if buffer[0] == ord("Z"):
                    self._counts.ready += 1
                del buffer[:size]
