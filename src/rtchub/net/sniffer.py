"""One port, two HTTP stacks: route each new socket by its first request head.

A socket whose first request is ``GET`` with ``Upgrade: websocket`` for a WebSocket
path goes to picows (:mod:`rtchub.net.fastws`); every other socket goes to aiohttp,
which serves HTTP, Socket.IO and the same WebSocket endpoints (for clients that upgrade a
kept-alive connection). The head is read once, then replayed into the chosen protocol.

The sniffer answers two things itself: a head that does not end within ``MAX_HEAD``
bytes gets ``431 Request Header Fields Too Large``, and a head that does not arrive within
``HTTP_HEAD_TIMEOUT`` is cut. A head with bare LF line ends goes to aiohttp, which
answers it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Final, cast

import orjson

from rtchub.base.clock import Clock, Timer

__all__ = ["MAX_HEAD", "HeadSniffer", "RouteDecision", "parse_head"]

MAX_HEAD: Final = 16 * 1024
_UPGRADE = re.compile(rb"\nupgrade:[ \t]*websocket[ \t]*\r?\n", re.IGNORECASE)
_TOO_LARGE_BODY: Final = orjson.dumps({"code": "message_too_large",
                                       "error": f"request head is over {MAX_HEAD} bytes"})
_TOO_LARGE: Final = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                     % len(_TOO_LARGE_BODY)) + _TOO_LARGE_BODY

# (method, request target, websocket upgrade?, transport) -> a protocol, or None for aiohttp
RouteDecision = Callable[[bytes, bytes, bool, asyncio.Transport], asyncio.BaseProtocol | None]


def parse_head(head: bytes) -> tuple[bytes, bytes, bool]:
    """(method, request target, has ``Upgrade: websocket``) of an HTTP/1.1 request head;
    empty method and target when the request line is not three fields."""
    line_end = head.find(b"\n")
    first = head[: line_end if line_end >= 0 else len(head)].rstrip(b"\r")
    parts = first.split(b" ")
    if len(parts) != 3:
        return b"", b"", False
    return parts[0], parts[1], _UPGRADE.search(head + b"\r\n") is not None


def _head_end(buf: bytearray) -> tuple[int, bool]:
    """Where the head ends (-1: not yet) and whether it used CRLF line ends only."""
    crlf = buf.find(b"\r\n\r\n")
    lf = buf.find(b"\n\n")
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return lf + 2, False
    return (crlf + 4, True) if crlf >= 0 else (-1, True)


class HeadSniffer(asyncio.Protocol):
    """Reads a request head, picks a protocol, hands the transport over.

    uvloop's transport keeps the first protocol's ``data_received`` after a hand-over to
    a buffered protocol (picows), so the sniffer lives as long as the connection: it has
    slots and lets go of its buffer and transport when it hands over.
    """

    __slots__ = ("_buf", "_clock", "_decide", "_fallback", "_head_timeout", "_timer",
                 "_transport")

    def __init__(self, decide: RouteDecision, fallback: Callable[[], asyncio.BaseProtocol],
                 clock: Clock, head_timeout: float) -> None:
        self._decide = decide
        self._fallback = fallback
        self._clock = clock
        self._head_timeout = head_timeout
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._timer: Timer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._timer = self._clock.call_later(self._head_timeout, self._timeout)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        end, crlf = _head_end(self._buf)
        if end >= 0:
            self._hand_over(bytes(self._buf[:end]), crlf)
        elif len(self._buf) > MAX_HEAD:
            self._refuse_too_large()

    def eof_received(self) -> bool | None:
        if self._buf:
            self._hand_over(bytes(self._buf), crlf=False)
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

    def _refuse_too_large(self) -> None:
        transport = self._transport
        self._cancel_timer()
        self._buf = bytearray()
        if transport is not None:
            transport.write(_TOO_LARGE)
            transport.close()

    def _hand_over(self, head: bytes, crlf: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        self._cancel_timer()
        proto: asyncio.BaseProtocol | None = None
        if crlf:
            method, target, upgrade = parse_head(head)
            proto = self._decide(method, target, upgrade, transport)
        if proto is None:
            proto = self._fallback()
        data = bytes(self._buf)
        self._buf = bytearray()
        self._transport = None
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
