"""A WebSocket connection as sessions see it, and the per-connection send buffer.

Sessions call :meth:`Connection.send` and :meth:`Connection.close`; they never
see a socket. Sends never block: a frame goes straight to the socket while it
keeps up; when the socket's buffer passes its high-water mark, frames wait in a
bounded queue (``WS_SEND_BUFFER``, default 64). A client whose queue overflows,
or whose queue stays stuck for ``WS_SEND_TIMEOUT`` (default 2 s), is
disconnected with close code 1008 and a reason, and nobody else waits for it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from typing import Protocol

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_NORMAL",
    "CLOSE_POLICY",
    "CLOSE_REPLACED",
    "CLOSE_TOO_BIG",
    "Connection",
    "SendBuffer",
    "Session",
    "SessionFactory",
    "next_conn_id",
]

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_REPLACED = 4001

_ids = itertools.count(1)


def next_conn_id() -> str:
    """A process-unique connection ID."""
    return f"c{next(_ids)}"


class Connection(Protocol):
    """What a session may do with its WebSocket."""

    @property
    def id(self) -> str:
        """Process-unique connection ID."""
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
        """Queue one text frame; never blocks."""
        ...

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Close with a WebSocket close code and reason."""
        ...


class Session(Protocol):
    """The dialect side of one connection: what the transport calls."""

    def on_text(self, data: bytes, received_ns: int) -> None:
        """A complete text message arrived."""
        ...

    def on_binary(self, data: bytes) -> None:
        """A complete binary message arrived."""
        ...

    def on_close(self) -> None:
        """The connection is gone; release everything."""
        ...


SessionFactory = Callable[[Connection], Session]


class SendBuffer:
    """Bounded queue in front of a socket that can pause (asyncio flow control).

    ``write`` is the socket write; ``kill`` disconnects with a code and reason.
    """

    __slots__ = ("_deadline", "_kill", "_limit", "_loop", "_paused", "_queue", "_timeout",
                 "_write")

    def __init__(self, write: Callable[[bytes], None], kill: Callable[[int, str], None],
                 limit: int, timeout: float) -> None:
        self._write = write
        self._kill = kill
        self._limit = limit
        self._timeout = timeout
        self._paused = False
        self._queue: deque[bytes] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    @property
    def queued(self) -> int:
        """Frames waiting for the socket."""
        return len(self._queue) if self._queue else 0

    def send(self, data: bytes) -> None:
        """Write now, or queue while the socket is paused."""
        if not self._paused:
            self._write(data)
            return
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        if len(queue) >= self._limit:
            self._fail(f"send buffer overflow: client is not reading ({self._limit} messages "
                       "queued)")
            return
        queue.append(data)
        if self._deadline is None:
            self._deadline = self._loop.call_later(self._timeout, self._expired)

    def pause(self) -> None:
        """The socket's buffer is over its high-water mark."""
        self._paused = True

    def resume(self) -> None:
        """The socket drained: flush what waited, in order."""
        self._paused = False
        queue = self._queue
        while queue and not self._paused:
            self._write(queue.popleft())
        if not queue and self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def clear(self) -> None:
        """Drop everything (the connection is gone)."""
        self._queue = None
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self._queue:
            self._fail(f"send timeout: client did not read for {self._timeout:g} s")

    def _fail(self, reason: str) -> None:
        self.clear()
        self._kill(CLOSE_POLICY, reason)
