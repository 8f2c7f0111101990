"""The one bounded send path every connection uses, whatever stack carries it.

Sends never block. A frame goes straight to the socket while it keeps up; once the
socket is over its high-water mark (``pause``), text frames wait in a queue of at most
``WS_SEND_BUFFER`` frames and control frames (ping, pong) in one slot per kind, the
latest replacing the older (RFC 6455 lets a pong answer only the most recent ping). A
client whose queue overflows, or stays stuck for ``WS_SEND_TIMEOUT``, is disconnected
with 1008 and a reason, and nobody else waits for it. So a client that sends pings and
never reads is dropped like any other that does not read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from rtchub.base.clock import Clock, Timer
from rtchub.base.connection import CloseCode

__all__ = ["OPCODE_PING", "OPCODE_PONG", "SendBuffer"]

OPCODE_PING = 0x9
OPCODE_PONG = 0xA


class SendBuffer:
    """Bounded queue in front of a socket that can pause (asyncio flow control).

    ``write`` sends a text frame, ``control`` a control frame (opcode, payload), ``kill``
    disconnects with a code and a reason. ``clock`` times the stuck queue.
    """

    __slots__ = ("_clock", "_control", "_controls", "_deadline", "_kill", "_limit", "_paused",
                 "_queue", "_timeout", "_write", "direct")

    def __init__(self, write: Callable[[bytes], None],
                 control: Callable[[int, bytes], None], kill: Callable[[int, str], None],
                 limit: int, timeout: float, clock: Clock) -> None:
        self._write = write
        self._control = control
        self._kill = kill
        self._limit = limit
        self._timeout = timeout
        self._clock = clock
        self._paused = False
        # ``write`` while the socket keeps up, None while paused: the connection's send
        # calls it straight away (the relay hot path, one Python call less per frame)
        self.direct: Callable[[bytes], None] | None = write
        self._queue: deque[bytes] | None = None
        self._controls: dict[int, bytes] | None = None
        self._deadline: Timer | None = None

    @property
    def queued(self) -> int:
        """Frames waiting for the socket."""
        return (len(self._queue) if self._queue else 0) + (
            len(self._controls) if self._controls else 0)

    @property
    def paused(self) -> bool:
        """True while the socket is over its high-water mark."""
        return self._paused

    def send(self, data: bytes) -> None:
        """Write a text frame now, or queue it while the socket is paused."""
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
        self._arm()

    def send_control(self, opcode: int, payload: bytes = b"") -> None:
        """Write a control frame now, or keep the latest of its kind while paused."""
        if not self._paused:
            self._control(opcode, payload)
            return
        if self._controls is None:
            self._controls = {}
        self._controls[opcode] = payload
        self._arm()

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self._clock.call_later(self._timeout, self._expired)

    def pause(self) -> None:
        """The socket's buffer is over its high-water mark."""
        self._paused = True
        self.direct = None

    def resume(self) -> None:
        """The socket drained: flush what waited, control frames first, in order."""
        self._paused = False
        controls = self._controls
        if controls:
            self._controls = None
            for opcode, payload in controls.items():
                self._control(opcode, payload)
        queue = self._queue
        while queue and not self._paused:
            self._write(queue.popleft())
        if not self._paused:
            self.direct = self._write
        if not queue and not self._controls and self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def flush(self) -> None:
        """Write everything queued whatever the socket's state (a graceful close): the
        transport buffers it; the close that follows bounds how long it may take."""
        controls, queue = self._controls, self._queue
        self.clear()
        for opcode, payload in (controls or {}).items():
            self._control(opcode, payload)
        for data in queue or ():
            self._write(data)

    def clear(self) -> None:
        """Drop everything (the connection is gone)."""
        self._queue = None
        self._controls = None
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def release(self) -> None:
        """Drop everything and let go of the connection's callables: the buffer and its
        connection refer to each other, and without this a closed connection waits for
        the cyclic collector (whose full pass stalls every connection) to be freed."""
        self.clear()
        self._write = _closed
        self._control = _closed
        self._kill = _closed
        self.direct = None

    def _expired(self) -> None:
        self._deadline = None
        if self._queue or self._controls:
            self._fail(f"send timeout: client did not read for {self._timeout:g} s")

    def _fail(self, reason: str) -> None:
        self.clear()
        self._kill(CloseCode.POLICY, reason)


def _closed(*_: object) -> None:
    """What a released buffer calls instead of its connection: nothing."""
