"""Seed 003's ``PeerConnection`` in Python naming, for a participant joined from Python.

In an SFU room a participant's peer connection is the one the server holds with its
client (:class:`ServerPeer`): the application carries descriptions between it and the
client however it likes, the way forge's signaling handler does::

    await peer.set_remote_description(SessionDescription("offer", client_sdp))
    answer = await peer.create_answer()
    await peer.set_local_description(answer)       # then send answer.sdp to the client

and when what the participant receives changes the server offers
(:meth:`ServerPeer.create_offer` returns that offer). In a mesh room the server holds no
media; :class:`LocalPeer` is then this process's own aiortc peer connection for the
participant, to connect with another participant directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from rtchub.base.clock import Clock, LoopClock
from rtchub.errors import (
    InvalidSDP,
    NotInRoom,
    RtcHubError,
    SignalingFailed,
    SignalingTimeout,
    TrackNotFound,
)
from rtchub.features.calls.events import ServerOffer, TracksChanged
from rtchub.features.calls.rules import TrackInfo
from rtchub.features.calls.service import CallService
from rtchub.media.sfu import DataChannel, SfuPeer

__all__ = ["IceCandidate", "PeerConnection", "ServerPeer", "SessionDescription", "Track",
           "TrackReceiver"]

log = logging.getLogger("rtchub.calls")


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """An SDP offer or answer."""

    type: str
    sdp: str

    def __post_init__(self) -> None:
        if self.type not in ("offer", "answer"):
            raise InvalidSDP(f"a session description is an offer or an answer, got "
                             f"{self.type[:20]!r}")
        if not isinstance(self.sdp, str) or not self.sdp.startswith("v="):
            raise InvalidSDP("a session description starts with 'v='")


@dataclass(frozen=True, slots=True)
class IceCandidate:
    """A trickled ICE candidate (``candidate`` empty: the end of candidates)."""

    candidate: str
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None
    username_fragment: str | None = None


@dataclass(frozen=True, slots=True)
class Track:
    """A media track of a peer connection: ``direction`` is ``recv`` for what the peer's
    client sends (it publishes), ``send`` for what the server sends it (a subscription)."""

    id: str
    kind: str
    publisher: str
    source: str
    muted: bool
    direction: str

    @classmethod
    def of(cls, info: TrackInfo, direction: str) -> Track:
        """From the call service's track."""
        return cls(info.track_id, info.kind, info.publisher, info.source, info.muted,
                   direction)


@dataclass(frozen=True, slots=True)
class TrackReceiver:
    """Who receives a track: seed 003's ``TrackReceiver``."""

    track_id: str
    peer_id: str
    kind: str


class PeerConnection(Protocol):
    """What :meth:`~.room.CallRoom.join_call` returns, in either topology."""

    @property
    def id(self) -> str:
        """The peer connection's id (the participant's, in its room)."""
        ...

    @property
    def user_id(self) -> str:
        """The participant."""
        ...

    @property
    def state(self) -> str:
        """``new``, ``connecting``, ``connected``, ``disconnected``, ``failed``, ``closed``."""
        ...

    async def create_offer(self) -> SessionDescription:
        """An offer."""
        ...

    async def create_answer(self) -> SessionDescription:
        """The answer to the remote offer."""
        ...

    async def set_local_description(self, description: SessionDescription) -> None:
        """Apply a description this peer created."""
        ...

    async def set_remote_description(self, description: SessionDescription) -> None:
        """Apply the other side's description."""
        ...

    async def add_ice_candidate(self, candidate: IceCandidate | None) -> None:
        """The other side's candidate (None: no more)."""
        ...

    def get_tracks(self) -> list[Track]:
        """Every track of this peer connection."""
        ...

    async def get_stats(self) -> dict[str, Any]:
        """Connection statistics."""
        ...

    async def close(self) -> None:
        """Close it."""
        ...


Handler = Callable[..., object]


def _call(handler: Handler | None, *args: object) -> None:
    if handler is None:
        return
    try:
        handler(*args)
    except Exception:
        log.exception("a peer connection handler failed")


class ServerPeer:
    """A participant's peer connection with the server in an SFU room (see the module doc).

    ``add_track`` gives the participant another participant's published track (a
    subscription; the server offers), ``remove_track`` stops one. ``on_track`` is called
    with ``(Track, TrackReceiver)`` for each track the participant's client publishes;
    ``on_ice_candidate`` with None once per description the server makes (the server
    gathers every candidate before it answers: they are in the description).
    """

    def __init__(self, calls: CallService, peer: SfuPeer, room: str, user: str,
                 signaling_timeout: float, clock: Clock | None = None) -> None:
        self._calls = calls
        self._peer = peer
        self._room = room
        self._user = user
        self._timeout = signaling_timeout
        self._clock: Clock = clock if clock is not None else LoopClock()
        self._offers: asyncio.Queue[str] = asyncio.Queue(maxsize=8)
        self._made: SessionDescription | None = None  # created, not yet set as local
        self._published: set[str] = set()
        self._on_ice: Handler | None = None
        self._on_track: Handler | None = None
        self._closed = False

    # -- events of the call service (the join's sink) -------------------------------------

    def event(self, event: object) -> None:
        """What the call service tells this participant."""
        if isinstance(event, ServerOffer):
            if self._offers.full():
                self._offers.get_nowait()  # only the newest offer matters
            self._offers.put_nowait(event.sdp)
        elif isinstance(event, TracksChanged):
            for info in event.tracks:
                if info.publisher == self._user and info.track_id not in self._published:
                    self._published.add(info.track_id)
                    _call(self._on_track, Track.of(info, "recv"),
                          TrackReceiver(info.track_id, self._user, info.kind))

    # -- seed 003's PeerConnection -----------------------------------------------------------

    @property
    def id(self) -> str:
        """The participant's id (one server peer per participant and room)."""
        return self._user

    @property
    def user_id(self) -> str:
        """The participant."""
        return self._user

    @property
    def state(self) -> str:
        """The connection state of the server's peer."""
        return "closed" if self._closed else self._peer.connection_state

    @property
    def room_id(self) -> str:
        """The room this peer is in."""
        return self._room

    @property
    def server_peer(self) -> SfuPeer:
        """The media plane's peer underneath (what the quality monitor measures)."""
        return self._peer

    async def create_offer(self) -> SessionDescription:
        """The server's next offer (it offers when the participant's subscriptions
        change); :class:`SignalingTimeout` if none comes within the signaling timeout."""
        getter = asyncio.get_running_loop().create_task(self._offers.get())
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            getter.cancel()

        timer = self._clock.call_later(self._timeout, expire)
        try:
            sdp = await getter   # cancelling this call cancels the getter too
        except asyncio.CancelledError:
            if not expired:
                raise
            raise SignalingTimeout(f"the server had nothing to offer {self._user!r} within "
                                   f"{self._timeout:g}s") from None
        finally:
            timer.cancel()
        self._made = SessionDescription("offer", sdp)
        return self._made

    async def create_answer(self) -> SessionDescription:
        """The server's answer to the offer given to :meth:`set_remote_description`."""
        if self._made is None or self._made.type != "answer":
            raise SignalingFailed("no remote offer to answer: set_remote_description first")
        return self._made

    async def set_local_description(self, description: SessionDescription) -> None:
        """Confirm the description :meth:`create_offer` / :meth:`create_answer` returned
        (the server applied it already); anything else is :class:`InvalidSDP`."""
        if self._made is None or description != self._made:
            raise InvalidSDP("set_local_description takes the description this peer "
                             "created")
        self._made = None
        _call(self._on_ice, None)

    async def set_remote_description(self, description: SessionDescription) -> None:
        """The client's offer (answered at once: :meth:`create_answer` returns it) or its
        answer to the server's offer. A client offer while the server's own waits is
        :class:`SignalingFailed` (the client answers first, then offers again)."""
        if description.type == "answer":
            await self._calls.accept_answer(self._room, self._user, description.sdp)
            return
        answer = await self._calls.accept_offer(self._room, self._user, description.sdp)
        if answer is None:
            raise SignalingFailed("the server's offer is waiting for the client's answer "
                                  "(glare): answer it, then offer again")
        self._made = SessionDescription("answer", answer)

    async def add_ice_candidate(self, candidate: IceCandidate | None) -> None:
        """A candidate of the client."""
        if candidate is None or not candidate.candidate:
            await self._calls.add_ice_candidate(self._room, self._user, None)
            return
        await self._calls.add_ice_candidate(self._room, self._user, candidate.candidate,
                                            candidate.sdp_mid, candidate.sdp_mline_index)

    async def add_track(self, track: Track | str) -> None:
        """Send the client another participant's published track (a subscription)."""
        track_id = track if isinstance(track, str) else track.id
        self._calls.subscribe_to_track(self._room, self._user, track_id)

    async def remove_track(self, track_id: str) -> None:
        """Stop sending ``track_id`` to the client; :class:`TrackNotFound` if it is not
        sent."""
        if track_id not in self._calls.subscriptions(self._room, self._user):
            raise TrackNotFound(f"{self._user!r} receives no track {track_id[:80]!r}")
        self._calls.unsubscribe_from_track(self._room, self._user, track_id)

    def get_tracks(self) -> list[Track]:
        """What the client publishes (``recv``) and what it receives (``send``)."""
        try:
            available = self._calls.get_available_tracks(self._room)
            wanted = self._calls.subscriptions(self._room, self._user)
        except (NotInRoom, RtcHubError):
            return []
        return [Track.of(t, "recv") for t in available if t.publisher == self._user] + [
            Track.of(t, "send") for t in available if t.track_id in wanted]

    async def get_stats(self) -> dict[str, Any]:
        """Counters of the server's peer: state, RTP packets in and out, tracks."""
        peer = self._peer
        return {"peer_id": self._user, "connection_state": self.state,
                "signaling_state": peer.signaling_state,
                "packets_received": peer.rtp_received, "packets_sent": peer.rtp_sent,
                "packets_unroutable": peer.rtp_unroutable,
                "tracks_published": len(peer.published),
                "tracks_subscribed": len(peer.subscriptions)}

    async def close(self) -> None:
        """Leave the room: the server's peer closes."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(NotInRoom):
            await self._calls.leave(self._room, self._user)

    def on_ice_candidate(self, handler: Handler) -> None:
        """``handler(None)`` once per description the server made."""
        self._on_ice = handler

    def on_track(self, handler: Handler) -> None:
        """``handler(track, receiver)`` for each track the client publishes."""
        self._on_track = handler

    def on_connection_state_change(self, handler: Handler) -> None:
        """``handler(state)`` whenever the server peer's connection state changes."""
        self._peer.on_connection_state_change = lambda state: _call(handler, state)

    def on_data_channel(self, handler: Handler) -> None:
        """``handler(channel)`` for each data channel the client opens (a
        :class:`~rtchub.media.sfu.DataChannel`; the room's "chat" relay keeps working)."""
        before = self._peer.on_data_channel

        def opened(channel: DataChannel) -> None:
            if before is not None:
                before(channel)
            _call(handler, channel)

        self._peer.on_data_channel = opened
