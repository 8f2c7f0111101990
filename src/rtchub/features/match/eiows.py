"""Engine.IO's WebSocket transport for matchmaking: no deflate, one task per connection.

python-engineio's aiohttp driver builds its ``WebSocketResponse`` with aiohttp's default
``compress=True``, which accepts the deflate that the stock ``socket.io-client`` (Node's
``ws``) and browsers offer. On seed 001's small frames deflate cost a fifth of the
server's CPU per match and doubled the client's (docs/benchmarks.md), for bytes that do
not matter next to the media the signaling sets up; the Node ``socket.io`` server
declines it by default too. :class:`PlainWebSocket` declines it.

It also serves the connection itself (:func:`serve`), with the protocol of
python-engineio 4.15's ``AsyncSocket._websocket_handler`` (the polling -> WebSocket
upgrade probe, a writer draining the session's queue, a reader feeding the session,
the same endings) but without its per-frame costs: that loop wrapped every received
frame in a new task under ``asyncio.wait_for``, and every batch sent in another
``wait_for``; here the reader awaits aiohttp's ``receive`` under its own timeout, the
writer awaits the queue, and a ``MESSAGE`` goes straight to the Socket.IO server's
``message`` handler (engine.io's other packets still go through ``AsyncSocket.receive``).
When the handler it is given is not that method (another python-engineio), it runs the
library's own loop instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp
from engineio.async_socket import AsyncSocket

__all__ = ["PlainWebSocket", "serve"]

_DATA = (WSMsgType.TEXT, WSMsgType.BINARY)
_MESSAGE = eio_packet.MESSAGE
OnMessage = Callable[[str, Any], Awaitable[Any]]


class PlainWebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]  # untyped library
    """python-engineio's aiohttp WebSocket transport without permessage-deflate, serving
    the Engine.IO session with :func:`serve`."""

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request = environ["aiohttp.request"]
        ws = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size,
                                   compress=False)
        await ws.prepare(request)
        self._sock = ws
        self.environ = environ
        sock = getattr(self.handler, "__self__", None)
        if (isinstance(sock, AsyncSocket)
                and getattr(self.handler, "__func__", None) is AsyncSocket._websocket_handler):
            await serve(sock, ws)
        else:
            await self.handler(self)
        return ws

    async def send(self, message: str | bytes) -> None:
        """Send one frame (the driver's version asks ``inspect`` which call to await)."""
        if isinstance(message, str):
            await self._sock.send_str(message)
        else:
            await self._sock.send_bytes(message)


async def _receive(ws: web.WebSocketResponse, timeout: float) -> str | bytes | None:
    """The next data frame; None once the socket closed, failed or stayed silent."""
    try:
        msg = await ws.receive(timeout)
    except Exception:   # (a timeout, a reset)
        return None
    if msg.type not in _DATA:
        return None
    data: str | bytes = msg.data
    return data


async def serve(sock: AsyncSocket, ws: web.WebSocketResponse) -> None:
    """Carry Engine.IO session ``sock`` over ``ws`` until either side ends it."""
    server = sock.server
    timeout = server.ping_interval + server.ping_timeout
    if sock.connected:      # an upgrade from polling: the probe, then the upgrade packet
        sock.upgrading = True
        data = await _receive(ws, timeout)
        if data is None:
            return
        probe = eio_packet.Packet(encoded_packet=data)
        if probe.packet_type != eio_packet.PING or probe.data != "probe":
            server.logger.info("%s: Failed websocket upgrade, no PING packet", sock.sid)
            sock.upgrading = False
            return
        await ws.send_str(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
        await sock.queue.put(eio_packet.Packet(eio_packet.NOOP))   # ends the pending poll
        data = await _receive(ws, timeout)
        upgrade = eio_packet.Packet(encoded_packet=data) if data is not None else None
        if upgrade is None or upgrade.packet_type != eio_packet.UPGRADE:
            sock.upgraded = False
            server.logger.info("%s: Failed websocket upgrade, expected UPGRADE packet", sock.sid)
            sock.upgrading = False
            return
        sock.upgraded = True
        sock.upgrading = False
    else:
        sock.connected = True
        sock.upgraded = True
    writer = asyncio.ensure_future(_write(sock, ws))
    try:
        await _read(sock, ws, timeout)
    finally:
        await sock.queue.put(None)      # the writer's end
        await writer
        await sock.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)


async def _read(sock: AsyncSocket, ws: web.WebSocketResponse, timeout: float) -> None:
    server = sock.server
    limit = server.max_http_buffer_size
    on_message: OnMessage | None = server.handlers.get("message")
    sid = sock.sid
    while True:
        data = await _receive(ws, timeout)
        if data is None or len(data) > limit:
            return
        try:
            pkt = eio_packet.Packet(encoded_packet=data)
        except ValueError:      # not an Engine.IO packet: the client's fault, logged as such
            server.logger.exception("%s: undecodable Engine.IO packet", sid)
            return
        try:
            if pkt.packet_type == _MESSAGE and on_message is not None:
                await on_message(sid, pkt.data)
            else:
                await sock.receive(pkt)
        except eio_exceptions.UnknownPacketError:
            pass
        except eio_exceptions.SocketIsClosedError:
            server.logger.info("Receive error -- socket is closed")
            return
        except Exception:
            server.logger.exception("Unknown receive error")


async def _write(sock: AsyncSocket, ws: web.WebSocketResponse) -> None:
    queue = sock.queue
    try:
        while True:
            pkt = await queue.get()
            queue.task_done()
            if pkt is None:
                break
            batch = [pkt]
            last = False
            while not queue.empty():
                more = queue.get_nowait()
                queue.task_done()
                if more is None:
                    last = True
                    break
                batch.append(more)
            for p in batch:
                frame = p.encode()
                if isinstance(frame, str):
                    await ws.send_str(frame)
                else:
                    await ws.send_bytes(frame)
            if last:
                break
    except Exception:   # the socket failed under a send: the reader sees it end
        pass
    await ws.close()
