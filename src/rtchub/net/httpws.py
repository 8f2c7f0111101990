"""WebSocket endpoints on the aiohttp stack: the same sessions and limits as the fast path.

Used when a client upgrades a kept-alive HTTP connection (the head sniffer already gave
that socket to aiohttp), for absolute-form targets the sniffer leaves alone, and on Unix
socket listeners. The semantics match :mod:`rtchub.net.fastws`: the same bounded send path
(:class:`~rtchub.net.connection.NetConnection`), pings answered through it (aiohttp's
autoping is off), the same heartbeat sweep, the same message size limit (a message of
exactly ``WS_MAX_MSG`` bytes is accepted on both stacks).

aiohttp writes a frame with an awaitable call, so one writer task per connection takes
frames from a short ready list; while aiohttp's transport is over its high-water mark the
connection counts as paused and later frames wait in the bounded send buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Final

from aiohttp import WSMsgType, web

from rtchub.base.clock import Clock
from rtchub.base.metrics import Stats
from rtchub.net.connection import ConnLimits, NetConnection
from rtchub.net.session import Session

__all__ = ["HttpConnection", "run_session", "websocket_response"]

_CLOSE: Final = -1


class HttpConnection(NetConnection):
    """An aiohttp WebSocketResponse; one writer task sends what the send path releases."""

    __slots__ = ("_closing", "_ready", "_request", "_wake", "_writer", "_ws")

    def __init__(self, conn_id: str, ws: web.WebSocketResponse, request: web.Request,
                 remote: str, limits: ConnLimits, clock: Clock, stats: Stats) -> None:
        super().__init__(conn_id, remote, self._push_text, limits, clock, stats)
        self._ws = ws
        self._request = request
        self._ready: deque[tuple[int, bytes]] = deque()
        self._closing = False
        self._wake = asyncio.Event()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def _push_text(self, data: bytes) -> None:
        self._ready.append((WSMsgType.TEXT, data))
        self._wake.set()

    def _control(self, opcode: int, payload: bytes) -> None:
        self._ready.append((opcode, payload))
        self._wake.set()

    def _finish(self, code: int, reason: bytes) -> None:
        self._closing = True
        self._ready.append((_CLOSE, code.to_bytes(2, "big") + reason))
        self._wake.set()

    def _abort(self) -> None:
        self._abort_timer = None
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    async def _write_loop(self) -> None:
        ws = self._ws
        protocol = self._request.protocol
        ready = self._ready
        try:
            while True:
                while ready:
                    opcode, payload = ready.popleft()
                    if opcode == _CLOSE:
                        await ws.close(code=int.from_bytes(payload[:2], "big"),
                                       message=payload[2:])
                        return
                    if protocol.writing_paused:
                        self.pause()
                    await ws.send_frame(payload, WSMsgType(opcode))
                    if self._buffer.paused and not protocol.writing_paused:
                        self.resume()
                self._wake.clear()
                await self._wake.wait()
        except (ConnectionError, RuntimeError):
            return

    async def stop_writer(self) -> None:
        """The reader is done: let a close handshake the server started finish (within the
        close grace), then stop the writer task."""
        writer = self._writer
        if self._closing and not writer.done():
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(writer), self._limits.close_grace)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer


def websocket_response(limits: ConnLimits) -> web.WebSocketResponse:
    """An aiohttp WebSocket response with rtchub's semantics: no autoping, no heartbeat of
    its own, no compression, a message of exactly ``max_message`` bytes accepted."""
    return web.WebSocketResponse(autoping=False, heartbeat=None, compress=False,
                                 max_msg_size=limits.max_message + 1)


async def run_session(ws: web.WebSocketResponse, conn: HttpConnection, session: Session
                      ) -> None:
    """Read frames until the socket closes, then release the connection."""
    try:
        async for msg in ws:
            conn.seen = True
            if conn.probes is not None:
                conn.heard()
            kind = msg.type
            if kind is WSMsgType.TEXT:
                session.on_text(msg.data.encode(), time.perf_counter_ns())
            elif kind is WSMsgType.BINARY:
                session.on_binary(msg.data)
            elif kind is WSMsgType.PING:
                conn.pong(msg.data)
            elif kind is WSMsgType.ERROR:
                break
    finally:
        conn.gone()
        session.on_close()
        await conn.stop_writer()


