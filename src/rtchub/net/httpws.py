"""WebSocket endpoints on aiohttp: the same sessions as the fast path, one writer task each.

Used for the WebSocket paths when a client upgrades a kept-alive HTTP
connection (the front protocol already gave that socket to aiohttp), and by
dialects whose traffic is small (pairing). Semantics match the fast path: the
same send buffer limit, send timeout, heartbeat and message size limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from aiohttp import WSMsgType, web

from rtchub.base.metrics import Stats
from rtchub.net.connection import (
    CLOSE_POLICY,
    SessionFactory,
    next_conn_id,
)

__all__ = ["AioConnection", "serve_websocket"]

log = logging.getLogger("rtchub.ws")


class AioConnection:
    """An aiohttp WebSocketResponse seen through the :class:`Connection` protocol."""

    def __init__(self, ws: web.WebSocketResponse, remote: str, send_buffer: int,
                 send_timeout: float, stats: Stats) -> None:
        self.id = next_conn_id()
        self.remote = remote
        self._ws = ws
        self._limit = send_buffer
        self._timeout = send_timeout
        self._stats = stats
        self._queue: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._closed = False
        self._close_with: tuple[int, str] | None = None
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    @property
    def closed(self) -> bool:
        """True once close was requested or the socket is gone."""
        return self._closed

    def send(self, data: bytes) -> None:
        """Queue a text frame for the writer task."""
        if self._closed:
            return
        if len(self._queue) >= self._limit:
            self._fail(f"send buffer overflow: client is not reading ({self._limit} messages "
                       "queued)")
            return
        self._queue.append(data)
        self._wake.set()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close after the frames already queued."""
        if self._closed:
            return
        self._closed = True
        self._close_with = (code, reason)
        self._stats.closes[{1000: "normal", 1001: "going_away", 4001: "replaced"}.get(
            code, str(code))] += 1
        self._wake.set()

    def _fail(self, reason: str) -> None:
        log.info("disconnecting slow client conn=%s remote=%s: %s", self.id, self.remote, reason)
        self._stats.closes["policy"] += 1
        self._closed = True
        self._queue.clear()
        self._close_with = (CLOSE_POLICY, reason)
        self._writer.cancel()
        transport = self._ws._req.transport if self._ws._req is not None else None
        if transport is not None:
            transport.abort()

    async def _write_loop(self) -> None:
        ws = self._ws
        try:
            while True:
                while self._queue:
                    data = self._queue.popleft()
                    try:
                        await asyncio.wait_for(ws.send_str(data.decode()), self._timeout)
                    except TimeoutError:
                        self._fail(f"send timeout: client did not read for {self._timeout:g} s")
                        return
                if self._close_with is not None:
                    code, reason = self._close_with
                    await ws.close(code=code, message=reason.encode()[:120])
                    return
                self._wake.clear()
                await self._wake.wait()
        except (ConnectionError, RuntimeError):
            return

    async def finish(self) -> None:
        """Stop the writer (the socket is gone)."""
        self._closed = True
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer


async def serve_websocket(request: web.Request, factory: SessionFactory, remote: str,
                          stats: Stats, *, heartbeat: float, max_message: int, send_buffer: int,
                          send_timeout: float) -> web.WebSocketResponse:
    """Upgrade ``request`` and run one session until the socket closes."""
    ws = web.WebSocketResponse(heartbeat=heartbeat, max_msg_size=max_message, compress=False)
    await ws.prepare(request)
    conn = AioConnection(ws, remote, send_buffer, send_timeout, stats)
    stats.connections_total += 1
    stats.connections_open += 1
    session = factory(conn)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                session.on_text(msg.data.encode(), time.perf_counter_ns())
            elif msg.type == WSMsgType.BINARY:
                session.on_binary(msg.data)
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        stats.connections_open -= 1
        session.on_close()
        await conn.finish()
    return ws
