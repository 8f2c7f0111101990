"""One Socket.IO user's matchmaking: decode events, drive the Matchmaker, render.

The Socket.IO glue (:mod:`~rtchub.features.match.routes`) applies each client event
through the connection's serial executor, so one user's events never overtake each
other; relays (ICE candidates above all) finish at once, requests that touch the queue
return an awaitable (over the in-memory store the fast path runs it eagerly, with no
task: :mod:`rtchub.base.eager`). Events from the matchmaker arrive through
:meth:`MatchSession.deliver` and leave through ``emit``, the glue's bounded, ordered
sender.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, assert_never

from rtchub.base.connection import Address
from rtchub.base.eager import eager
from rtchub.base.metrics import Stats
from rtchub.errors import RtcHubError
from rtchub.features.match import wire
from rtchub.features.match.events import (
    MatchAnswer,
    MatchCandidate,
    MatchChat,
    Matched,
    MatchEvent,
    MatchOffer,
    Unmatched,
)
from rtchub.features.match.service import Matchmaker

__all__ = ["Emit", "MatchSession"]

# Sends one Socket.IO event to this user; never blocks (the glue queues and bounds it).
Emit = Callable[[str, Any], None]


class MatchSession:
    """A matchmaking user: their socket ID, address, name and current pairing."""

    def __init__(self, user: str, address: Address, matchmaker: Matchmaker, emit: Emit,
                 stats: Stats) -> None:
        self.user = user
        self.address = address
        self._mm = matchmaker
        self._emit = emit
        self._stats = stats
        self.name = ""
        self.view: Matched | None = None

    # -- inbound -------------------------------------------------------------------------

    def handle(self, event: str, data: Any) -> Awaitable[None] | None:
        """Apply one client event; queue work returns the awaitable that finishes it."""
        mm = self._mm
        msg = wire.decode(event, data, mm.limits)
        # rate limits count valid events only: a typo does not cost the user a turn
        match msg:
            case wire.IceCandidate(to=to, candidate=candidate):   # the hot path
                mm.check_candidate_rate(self.user)
                mm.candidate(self.view, self.user, to, candidate)
                return None
            case wire.RequestRoom():
                self.name = msg.name
                self.view = None
                return self._request(msg)
            case wire.Offer(offer=offer, room_id=room, remote_socket_id=to):
                mm.check_offer_rate(self.user)
                mm.offer(self.view, self.user, self.name, to, room, offer)
                return None
            case wire.Answer(ans=ans, room_id=room, remote_socket_id=to):
                mm.check_offer_rate(self.user)
                mm.answer(self.view, self.user, self.name, to, room, ans)
                return None
            case wire.NewMessage(message=message, room_id=room, remote_socket=to):
                mm.check_message_rate(self.user)
                mm.chat(self.view, self.user, to, room, message)
                self._send(wire.MESSAGE_RECEIVED, {"from": self.user, "message": message})
                return None
            case wire.StopCall():
                self.view = None
                return self._stop()
            case _:
                assert_never(msg)

    async def _request(self, msg: wire.RequestRoom) -> None:
        await self._mm.check_request_rate(self.user)
        await self._mm.request(self.user, self.address, msg.name, msg.user_image, msg.room_id)

    async def _stop(self) -> None:
        await self._mm.stop(self.user)

    def reply_error(self, err: RtcHubError, event: str | None = None) -> None:
        """Send ``err`` as seed 001's ``error`` event."""
        self._stats.errors[err.code] += 1
        self._send(wire.ERROR, wire.error_payload(err, event))

    def close(self) -> Awaitable[None] | None:
        """The socket is gone: leave the queue and end the pairing (partner told)."""
        self.view = None
        work = self._mm.leave(self.user)
        return eager(work) if self._mm.immediate else work

    # -- outbound ------------------------------------------------------------------------

    def deliver(self, event: MatchEvent) -> None:
        """Render a matchmaking event in seed 001's shape."""
        view = self.view
        match event:
            case Matched():
                self.view = event
                self._send(wire.MATCH_DONE, wire.match_done_payload(
                    event.room, event.partner, event.partner_name, event.partner_image))
            case Unmatched(room=room):
                if view is not None and view.room == room:
                    self.view = None
                    self._send(wire.STOPPED, None)
            case MatchCandidate(room=room, candidate=candidate):
                if view is not None and view.room == room:
                    self._send(wire.NEW_ICE, {"candidate": candidate})
            case MatchOffer(room=room, sender=sender, name=name, offer=offer):
                if view is not None and view.room == room:
                    self._send(wire.OFFER, wire.offer_payload(room, sender, name, offer))
            case MatchAnswer(room=room, sender=sender, name=name, ans=ans):
                if view is not None and view.room == room:
                    self._send(wire.ANSWER, wire.answer_payload(room, sender, name, ans))
            case MatchChat(room=room, sender=sender, message=message):
                if view is not None and view.room == room:
                    self._send(wire.MESSAGE_RECEIVED, {"from": sender, "message": message})
            case _:
                assert_never(event)

    def _send(self, event: str, data: Any) -> None:
        self._stats.frames_out[event] += 1
        self._emit(event, data)
