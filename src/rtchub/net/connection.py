"""What both WebSocket stacks share about one connection: sending, closing, heartbeat.

:class:`NetConnection` implements :class:`~rtchub.base.connection.Connection` for
features and holds everything a connection may make the server keep: the bounded send
path (:class:`~rtchub.net.sendbuffer.SendBuffer`), the heartbeat state and the close
sequence. The picows fast path (:mod:`rtchub.net.fastws`) and the aiohttp path
(:mod:`rtchub.net.httpws`) subclass it with the three writes only they know how to do.

Closing is one sequence whatever asked for it: a graceful close writes what is queued,
then the close frame; a kill (send buffer overflow or timeout, heartbeat) drops what is
queued and writes the close frame. Either way the socket gets ``close_grace`` seconds to
take the close frame before it is cut, so a client that stopped reading still sees why
when it reads again, and one that never reads holds nothing for long.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from rtchub.base.clock import Clock, Timer
from rtchub.base.connection import Address, CloseCode
from rtchub.base.metrics import Stats
from rtchub.net.sendbuffer import OPCODE_PING, OPCODE_PONG, SendBuffer

__all__ = ["ConnLimits", "NetConnection", "close_label"]

log = logging.getLogger("rtchub.ws")

_NO_ADDRESS: Final = Address("", "")
_LABELS: Final = {1000: "normal", 1001: "going_away", 1002: "protocol_error", 1008: "policy",
                  1009: "too_big", 1011: "server_error", 4001: "replaced"}


def close_label(code: int) -> str:
    """The ``reason`` label of a close code in ``rtchub_ws_closes_total``."""
    return _LABELS.get(code, str(code))


class ConnLimits:
    """The per-connection limits both stacks enforce (from :class:`rtchub.config.Limits`)."""

    __slots__ = ("close_grace", "max_message", "send_buffer", "send_timeout")

    def __init__(self, *, max_message: int, send_buffer: int, send_timeout: float,
                 close_grace: float | None = None) -> None:
        self.max_message = max_message
        self.send_buffer = send_buffer
        self.send_timeout = send_timeout
        self.close_grace = send_timeout if close_grace is None else close_grace


class NetConnection:
    """A WebSocket connection: the bounded send path, the heartbeat and the close sequence.

    Subclasses pass ``write`` (send a text frame: the hot path, ideally a C-level
    callable), implement :meth:`_control` (a ping or pong), :meth:`_finish` (write the
    close frame and close the socket gracefully) and :meth:`_abort` (cut it), and call
    :meth:`gone` when the socket is closed.
    """

    __slots__ = ("_abort_timer", "_buffer", "_clock", "_closed", "_limits", "_probe_timer",
                 "_stats", "address", "id", "pinged", "probes", "remote", "seen", "text_ping")

    def __init__(self, conn_id: str, remote: str, write: Callable[[bytes], None],
                 limits: ConnLimits, clock: Clock, stats: Stats) -> None:
        self.id = conn_id
        self.remote = remote
        self.address = _NO_ADDRESS  # set by the session that registers the connection
        self._limits = limits
        self._clock = clock
        self._stats = stats
        self._closed = False
        self._abort_timer: Timer | None = None
        self._buffer = SendBuffer(write, self._control, self._kill, limits.send_buffer,
                                  limits.send_timeout, clock)
        self.seen = True      # a frame arrived since the last heartbeat sweep
        self.pinged = False   # the last sweep pinged this connection
        self.probes: list[Callable[[bool], None]] | None = None  # waiting for any frame
        self._probe_timer: Timer | None = None
        # the endpoint's own ping (Engine.IO's "2"), sent as text on every sweep
        self.text_ping: bytes | None = None

    # -- what features see ---------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once close was requested or the socket is gone."""
        return self._closed

    @property
    def queued(self) -> int:
        """Frames waiting in the send buffer for the socket to drain."""
        return self._buffer.queued

    def send(self, data: bytes) -> None:
        """Send a text frame now, or queue it (bounded) while the socket is paused."""
        if not self._closed:
            write = self._buffer.direct
            if write is not None:
                write(data)
            else:
                self._buffer.send(data)

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close after the frames already queued."""
        if self._closed:
            return
        self._closed = True
        self._stats.closes[close_label(code)] += 1
        self._buffer.flush()
        self._end(code, reason)

    def probe(self, timeout: float, done: Callable[[bool], None]) -> None:
        """Ping now; ``done(True)`` at the next frame from the client, ``done(False)`` if
        none arrives within ``timeout`` (or at once when closed)."""
        if self._closed:
            done(False)
            return
        if self.probes is not None:
            self.probes.append(done)
            return
        self.probes = [done]
        self._buffer.send_control(OPCODE_PING, b"probe")
        self._probe_timer = self._clock.call_later(timeout, lambda: self._answer(False))

    def heard(self) -> None:
        """A frame arrived while probes wait (the stacks call it when ``probes`` is set)."""
        self._answer(True)

    def _answer(self, alive: bool) -> None:
        probes, self.probes = self.probes, None
        if self._probe_timer is not None:
            self._probe_timer.cancel()
            self._probe_timer = None
        for done in probes or ():
            done(alive)

    # -- what the stacks and the heartbeat call ------------------------------------------

    def pong(self, payload: bytes) -> None:
        """Answer a ping through the bounded send path."""
        if not self._closed:
            self._buffer.send_control(OPCODE_PONG, payload)

    def beat(self) -> None:
        """One heartbeat sweep: ping a connection that was silent for a whole period, drop
        one that stayed silent for another period after its ping. A connection with a
        ``text_ping`` is pinged on every sweep (an Engine.IO client closes when the
        server's pings stop, however much it sends itself) and dropped when nothing came
        back since the previous one."""
        if self.text_ping is not None:
            if self._closed:
                return
            if self.pinged and not self.seen:
                self._kill(CloseCode.GOING_AWAY, "heartbeat timeout: no answer to ping",
                           "heartbeat")
                return
            self.seen = False
            self.pinged = True
            self._buffer.send(self.text_ping)
            return
        if self.seen:
            self.seen = False
            self.pinged = False
            return
        if self._closed:
            return
        if not self.pinged:
            self.pinged = True
            self._buffer.send_control(OPCODE_PING)
            return
        self._kill(CloseCode.GOING_AWAY, "heartbeat timeout: no answer to ping", "heartbeat")

    def pause(self) -> None:
        """The socket's write buffer is over its high-water mark."""
        self._buffer.pause()

    def resume(self) -> None:
        """The socket drained."""
        self._buffer.resume()

    def gone(self) -> None:
        """The socket is closed: release what it held."""
        self._closed = True
        self._buffer.release()
        if self.probes is not None:
            self._answer(False)
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None

    def _kill(self, code: int, reason: str, label: str | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        self._stats.closes[label or close_label(code)] += 1
        log.info("disconnecting client conn=%s remote=%s: %s", self.id, self.remote, reason)
        self._buffer.clear()
        self._end(code, reason)

    def _end(self, code: int, reason: str) -> None:
        self._finish(code, reason.encode()[:120])
        if self._abort_timer is None:
            self._abort_timer = self._clock.call_later(self._limits.close_grace, self._abort)

    # -- what each stack implements ------------------------------------------------------

    def _control(self, opcode: int, payload: bytes) -> None:
        raise NotImplementedError

    def _finish(self, code: int, reason: bytes) -> None:
        raise NotImplementedError

    def _abort(self) -> None:
        raise NotImplementedError


