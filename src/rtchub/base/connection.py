"""What a feature may know about one client connection, whatever carries it.

A feature's handler sends bytes and closes with a code; it never sees a socket, a
WebSocket library or an HTTP stack. The network layer (:mod:`rtchub.net`) implements
:class:`Connection` for the picows fast path and the aiohttp path alike.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from rtchub.errors import RtcHubError

__all__ = ["Address", "CloseCode", "Connection", "ErrorReply"]

# Sends an error to this connection's client, in its dialect, and counts it.
ErrorReply = Callable[[RtcHubError], None]


@dataclass(frozen=True, slots=True)
class Address:
    """Where a connection lives: the node that holds its socket and its connection ID."""

    node: str
    conn: str


class CloseCode(enum.IntEnum):
    """WebSocket close codes the server sends (RFC 6455 section 7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    POLICY = 1008
    TOO_BIG = 1009
    SERVER_ERROR = 1011


class Connection(Protocol):
    """One client connection as a feature sees it."""

    @property
    def id(self) -> str:
        """Process-unique connection ID."""
        ...

    @property
    def address(self) -> Address:
        """Where other parts of the system (and other nodes) reach this connection."""
        ...

    @property
    def remote(self) -> str:
        """Client IP address (after trusted-proxy resolution)."""
        ...

    @property
    def closed(self) -> bool:
        """True once close was requested or the socket is gone."""
        ...

    def send(self, data: bytes) -> None:
        """Queue one text frame; never blocks, never raises."""
        ...

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close with a WebSocket close code and a reason (at most 120 bytes are sent)."""
        ...

    def probe(self, timeout: float, done: Callable[[bool], None]) -> None:
        """Ping the client now; ``done(True)`` when anything arrives from it within
        ``timeout`` seconds, ``done(False)`` otherwise (or at once if it is closed)."""
        ...
