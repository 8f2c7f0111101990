"""One Socket.IO connection's matchmaking: decode events, drive the Matchmaker, render.

The transport calls :meth:`MatchSession.handle` for each client event, in
order (python-socketio runs with ``async_handlers=False``, so one client's
events never overtake each other). Core events arrive through
:meth:`MatchSession.deliver` (synchronous, never blocks) and leave through an
ordered outbox drained by one owned writer task at a time.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from rtchub.base.metrics import Stats
from rtchub.base.tasks import TaskOwner
from rtchub.cluster.events import Address, Event, Matched, Relayed, Unmatched
from rtchub.errors import NotInRoom, RtcHubError, ServerError
from rtchub.features.match import wire
from rtchub.features.match.service import Matchmaker

__all__ = ["Emit", "MatchSession"]

log = logging.getLogger("rtchub.match")

Emit = Callable[[str, Any], Coroutine[Any, Any, None]]

# Events queued for one client before it counts as not reading. Generous: a polling
# client's batched POST may carry dozens of ICE candidates handled back to back.
MAX_OUTBOX = 1024


class MatchSession:
    """A matchmaking user: their socket ID, address, profile and current pairing."""

    def __init__(self, user: str, address: Address, matchmaker: Matchmaker, emit: Emit,
                 drop: Callable[[], Coroutine[Any, Any, None]], tasks: TaskOwner, stats: Stats,
                 send_buffer: int = MAX_OUTBOX) -> None:
        self.user = user
        self.address = address
        self._mm = matchmaker
        self._emit = emit
        self._drop = drop
        self._tasks = tasks
        self._stats = stats
        self._send_buffer = send_buffer
        self._outbox: deque[tuple[str, Any]] = deque()
        self._writing = False
        self._closed = False
        self.name = ""
        self.view: Matched | None = None

    # -- inbound -------------------------------------------------------------------------

    async def handle(self, event: str, data: Any) -> None:
        """Handle one client event; every refusal becomes an ``error`` event."""
        self._stats.frames_in[event if event in wire.CLIENT_EVENTS else "unknown"] += 1
        try:
            await self._apply(event, data)
        except RtcHubError as err:
            self._stats.errors[err.code] += 1
            self._send(wire.ERROR, wire.error_payload(err, event))
        except Exception as exc:
            log.exception("match event %r failed for %s", event[:40], self.user)
            self._send(wire.ERROR, wire.error_payload(
                ServerError(f"Server error: {type(exc).__name__}"), event))

    async def _apply(self, event: str, data: Any) -> None:
        mm = self._mm
        if event == wire.ICE:   # the hot path first; ICE is never rate limited
            msg = wire.decode(event, data, mm.limits)
            assert type(msg) is wire.IceCandidate
            mm.relay(self.view, self.user, "candidate", msg.to, None,
                     {"candidate": msg.candidate})
            return
        msg = wire.decode(event, data, mm.limits)
        # rate limits count valid events only: a typo does not cost the user a turn
        if type(msg) is wire.RequestRoom:
            mm.check_request_rate(self.user)
        elif type(msg) is wire.NewMessage:
            mm.check_message_rate(self.user)
        if type(msg) is wire.RequestRoom:
            self.name = msg.name
            self.view = None
            await mm.request(self.user, self.address, msg.name, msg.user_image, msg.room_id)
        elif type(msg) is wire.Offer:
            mm.relay(self.view, self.user, "offer", msg.remote_socket_id, msg.room_id,
                     {"offer": msg.offer, "name": self.name})
        elif type(msg) is wire.Answer:
            mm.relay(self.view, self.user, "answer", msg.remote_socket_id, msg.room_id,
                     {"ans": msg.ans, "name": self.name})
        elif type(msg) is wire.NewMessage:
            view = self.view
            mm.relay(view, self.user, "message", msg.remote_socket, msg.room_id,
                     {"message": msg.message})
            self._send(wire.MESSAGE_RECEIVED, {"from": self.user, "message": msg.message})
        elif type(msg) is wire.StopCall:
            self.view = None
            await mm.stop(self.user)
        else:  # pragma: no cover - decode returns only the types above
            raise NotInRoom(f"unhandled event {event!r}")

    async def close(self) -> None:
        """The socket is gone: leave the queue and end the pairing (partner told)."""
        self._closed = True
        self.view = None
        self._outbox.clear()
        await self._mm.leave(self.user)

    # -- outbound ------------------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        """Render a core event in seed 001's shape and queue it for the client."""
        if type(event) is Relayed:
            view = self.view
            if view is None or event.room != view.room:
                return      # a relay from a pairing that has ended on this side
            self._render_relay(event, view)
        elif type(event) is Matched:
            self.view = event
            self._send(wire.MATCH_DONE, wire.match_done_payload(
                event.room, event.partner, event.partner_name, event.partner_image))
        elif (type(event) is Unmatched and self.view is not None
              and self.view.room == event.room):
            self.view = None
            self._send(wire.STOPPED, None)

    def _render_relay(self, event: Relayed, view: Matched) -> None:
        body = event.body
        if event.kind == "candidate":
            self._send(wire.NEW_ICE, {"candidate": body.get("candidate")})
        elif event.kind == "offer":
            self._send(wire.OFFER, wire.offer_payload(view.room, event.sender,
                                                      str(body.get("name", "")),
                                                      body.get("offer")))
        elif event.kind == "answer":
            self._send(wire.ANSWER, wire.answer_payload(view.room, event.sender,
                                                        str(body.get("name", "")),
                                                        body.get("ans")))
        elif event.kind == "message":
            self._send(wire.MESSAGE_RECEIVED, {"from": event.sender,
                                               "message": body.get("message")})

    def _send(self, event: str, data: Any) -> None:
        if self._closed:
            return
        if len(self._outbox) >= self._send_buffer:
            log.warning("match: %s is not reading (%d events queued); disconnecting",
                        self.user, len(self._outbox))
            self._closed = True
            self._outbox.clear()
            with contextlib.suppress(RuntimeError):
                self._tasks.spawn(self._drop(), name=f"match-drop-{self.user}")
            return
        self._stats.frames_out[event] += 1
        self._outbox.append((event, data))
        if not self._writing:
            self._writing = True
            try:
                self._tasks.spawn(self._write(), name=f"match-write-{self.user}")
            except RuntimeError:   # shutting down: nothing more goes out
                self._writing = False
                self._outbox.clear()

    async def _write(self) -> None:
        try:
            while self._outbox and not self._closed:
                event, data = self._outbox.popleft()
                await self._emit(event, data)
        finally:
            self._writing = False
