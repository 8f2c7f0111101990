"""One port, two HTTP stacks: route each new socket by its first request head.

A socket whose first request is ``GET <fast path>`` with ``Upgrade: websocket``
goes to picows (:mod:`rtchub.net.fastws`); every other socket goes to
aiohttp, which serves HTTP, Socket.IO and the same WebSocket endpoints (for
clients that upgrade a kept-alive HTTP connection). The head is read once,
then replayed into the chosen protocol; nothing is copied after that.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import cast

__all__ = ["FrontProtocol", "RouteDecision", "parse_head"]

MAX_HEAD = 16 * 1024
HEAD_TIMEOUT = 10.0
_UPGRADE = re.compile(rb"\r\nupgrade:[ \t]*websocket[ \t]*\r\n", re.IGNORECASE)

# (method, target, is_websocket_upgrade) -> a protocol for this socket, or None for aiohttp
RouteDecision = Callable[[bytes, bytes, bool, asyncio.Transport], asyncio.BaseProtocol | None]


def parse_head(head: bytes) -> tuple[bytes, bytes, bool]:
    """(method, request target, has ``Upgrade: websocket``) of an HTTP/1.1 request head."""
    line_end = head.find(b"\r\n")
    first = head[: line_end if line_end >= 0 else len(head)]
    parts = first.split(b" ")
    if len(parts) != 3:
        return b"", b"", False
    return parts[0], parts[1], _UPGRADE.search(head + b"\r\n") is not None


class FrontProtocol(asyncio.Protocol):
    """Reads a request head, picks a protocol, hands the transport over."""

    def __init__(self, decide: RouteDecision, fallback: Callable[[], asyncio.BaseProtocol]
                 ) -> None:
        self._decide = decide
        self._fallback = fallback
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._timer = asyncio.get_running_loop().call_later(HEAD_TIMEOUT, self._timeout)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0 and len(self._buf) < MAX_HEAD:
            return
        self._hand_over(bytes(self._buf[: end if end >= 0 else MAX_HEAD]))

    def eof_received(self) -> bool | None:
        if self._buf:
            self._hand_over(bytes(self._buf))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._transport = None

    def _timeout(self) -> None:
        self._timer = None
        if self._transport is not None:
            self._transport.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _hand_over(self, head: bytes) -> None:
        transport = self._transport
        if transport is None:
            return
        self._cancel_timer()
        method, target, upgrade = parse_head(head)
        proto = self._decide(method, target, upgrade, transport)
        if proto is None:
            proto = self._fallback()
        data = bytes(self._buf)
        self._buf = bytearray()
        transport.set_protocol(proto)
        proto.connection_made(transport)
        _feed(proto, data)


def _feed(proto: asyncio.BaseProtocol, data: bytes) -> None:
    if isinstance(proto, asyncio.BufferedProtocol) or hasattr(proto, "get_buffer"):
        buffered = cast(asyncio.BufferedProtocol, proto)
        view = memoryview(data)
        while view:
            buf = memoryview(buffered.get_buffer(len(view)))
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            buffered.buffer_updated(n)
            view = view[n:]
    else:
        cast(asyncio.Protocol, proto).data_received(data)
