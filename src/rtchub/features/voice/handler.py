"""The voice dialect on one connection: a sender's or a receiver's peer connection.

Every connection speaking voice is greeted with ``available_streams`` and hears
``stream_available``/``stream_ended`` (it subscribes to the audience topic). SDP work
returns an awaitable, so the connection's serial executor runs later messages after it:
a client may send ``start_sending`` and its ``webrtc_offer`` back to back.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import uuid
from collections.abc import Awaitable
from typing import Any, assert_never

from aiortc.sdp import candidate_from_sdp

from rtchub.base.clock import Clock, Timer
from rtchub.base.connection import Connection, ErrorReply
from rtchub.base.metrics import Stats
from rtchub.base.ratelimit import Window
from rtchub.base.tasks import TaskOwner
from rtchub.errors import Conflict, InvalidField, RateLimited, RtcHubError, StreamEnded
from rtchub.features.voice import wire
from rtchub.features.voice.events import (
    EVENTS,
    StreamAvailable,
    StreamListeners,
    VoiceEvent,
)
from rtchub.features.voice.events import (
    StreamEnded as StreamEndedEvent,
)
from rtchub.features.voice.live import Broadcasts
from rtchub.features.voice.rules import stream_id_for
from rtchub.features.voice.service import VoiceService
from rtchub.media.peers import ReceiverPeer, SenderPeer
from rtchub.wire.webrtc import SdpLimits

__all__ = ["Role", "VoiceDialect", "VoiceHandler"]

log = logging.getLogger("rtchub.voice")


class Role(enum.Enum):
    """Where a voice connection is; transitions are checked by each handler."""

    IDLE = "idle"
    SENDER_READY = "sender_ready"  # start_sending done, waiting for webrtc_offer
    SENDING = "sending"
    OFFERED = "offered"  # the server offered, waiting for webrtc_answer
    RECEIVING = "receiving"


class VoiceDialect:
    """Seed 002's messages, spoken on ``/ws`` and ``/ws/voice``."""

    types: frozenset[str] = wire.TYPES
    events: tuple[type, ...] = EVENTS

    def __init__(self, service: VoiceService, broadcasts: Broadcasts, tasks: TaskOwner,
                 stats: Stats, clock: Clock, sdp: SdpLimits, answer_timeout: float, *,
                 offer_rate: tuple[int, float] = (0, 60.0),
                 candidate_rate: tuple[int, float] = (0, 60.0)) -> None:
        self.service = service
        self.broadcasts = broadcasts
        self.tasks = tasks
        self.stats = stats
        self.clock = clock
        self.sdp = sdp
        self.answer_timeout = answer_timeout
        self.offer_rate = offer_rate          # VOICE_OFFER_RATE: each builds a peer connection
        self.candidate_rate = candidate_rate  # VOICE_CANDIDATE_RATE

    def open(self, conn: Connection, params: object, reply_error: ErrorReply) -> VoiceHandler:
        """State for one connection."""
        return VoiceHandler(self, conn, reply_error)


class VoiceHandler:
    """One connection's role (sender or receiver) and its peer connection.

    Every ``/ws`` connection has one, though most never speak voice: what only a voice
    client needs (its ``connection_id``, its rate windows) is made on first use."""

    __slots__ = ("_answer_timer", "_candidates", "_closed", "_conn", "_connection_id", "_d",
                 "_ended_offer", "_error", "_live", "_name", "_offers", "_peer", "_service",
                 "_stream_id", "role")

    def __init__(self, dialect: VoiceDialect, conn: Connection, reply_error: ErrorReply
                 ) -> None:
        self._d = dialect
        self._service = dialect.service
        self._live = dialect.broadcasts
        self._conn = conn
        self._error = reply_error
        self._connection_id: str | None = None
        self.role = Role.IDLE
        self._name: str | None = None
        self._peer: SenderPeer | ReceiverPeer | None = None
        self._stream_id: str | None = None
        self._answer_timer: Timer | None = None
        self._ended_offer = False  # the stream offered to us ended before our answer
        self._closed = False
        self._offers: Window | None = None
        self._candidates: Window | None = None

    @property
    def connection_id(self) -> str:
        """Seed 002's ``connection_id`` of this connection (a UUID, made when first asked
        for)."""
        if self._connection_id is None:
            self._connection_id = str(uuid.uuid4())
        return self._connection_id

    def _send(self, kind: str, data: bytes) -> None:
        if not self._closed:
            self._d.stats.frames_out[kind] += 1
            self._conn.send(data)

    def start(self) -> None:
        """Join the audience and greet with the live streams."""
        self._service.join_audience(self._conn.id)
        self._greet()

    def _greet(self) -> None:
        live = self._live
        self._send("available_streams", wire.available_streams(
            self._service.streams.all(),
            lambda sid: live.receivers(sid) + live.mp3_listeners(sid)))

    # -- inbound -------------------------------------------------------------------------

    def handle(self, obj: dict[str, Any], received_ns: int) -> Awaitable[None] | None:
        """Apply one message; SDP work returns the awaitable that finishes it."""
        msg = wire.decode(obj, self._d.sdp)
        match msg:
            case wire.StartSending(name=name):
                self._spawn_end(self._release())
                self._name = name
                self.role = Role.SENDER_READY
                self._send("sender_ready", wire.sender_ready(self.connection_id))
                return None
            case wire.WebrtcOffer(sdp=sdp):
                self._limit_offers()
                return self._offer(sdp)
            case wire.StartReceiving(stream_id=stream_id):
                self._limit_offers()
                return self._start_receiving(stream_id)
            case wire.WebrtcAnswer(sdp=sdp):
                return self._answer(sdp)
            case wire.GetAvailableStreams():
                self._greet()
                return None
            case wire.StopStream():
                self._spawn_end(self._release())
                return None
            case wire.IceCandidate():
                if self._candidates is None:
                    self._candidates = Window(*self._d.candidate_rate)
                self._limit(self._candidates, "VOICE_CANDIDATE_RATE")
                self._candidate(msg)
                return None
            case wire.LocalIp():
                return None
            case _:
                assert_never(msg)

    def _limit_offers(self) -> None:
        if self._offers is None:
            self._offers = Window(*self._d.offer_rate)
        self._limit(self._offers, "VOICE_OFFER_RATE")

    def _limit(self, window: Window, setting: str) -> None:
        retry = window.hit(self._d.clock())
        if retry is not None:
            raise RateLimited(f"at most {window.limit} per {window.window:g}s ({setting}); "
                              f"retry in {retry:.1f}s", retry)

    # -- sender --------------------------------------------------------------------------

    async def _offer(self, sdp: str) -> None:
        if self.role is not Role.SENDER_READY:
            raise Conflict(f"webrtc_offer needs start_sending first (expected "
                           f"{Role.SENDER_READY.value}, got {self.role.value})")
        self._service.streams.check_room()
        peer, answer = await self._live.accept_sender(sdp)
        if self._closed or self.role is not Role.SENDER_READY:
            self._live.close_peer(peer)
            return
        self._peer = peer
        self.role = Role.SENDING
        self._send("webrtc_answer", wire.webrtc_answer(answer))
        # the media is ready before the stream is listed: a node may ask for it at once
        self._stream_id = stream_id = stream_id_for(self.connection_id)
        self._live.start(stream_id, peer)
        peer.pc.on("connectionstatechange", lambda: self._peer_state(peer))
        try:
            await self._service.go_live(self._conn.address, self.connection_id, self._name)
        except RtcHubError:
            self._spawn_end(self._release())
            raise
        if self._stream_id != stream_id:   # released while it was being listed
            await self._service.end(stream_id)

    def _peer_state(self, peer: SenderPeer | ReceiverPeer) -> None:
        if peer is self._peer and peer.pc.connectionState in ("failed", "closed"):
            self._spawn_end(self._release())

    # -- receiver ------------------------------------------------------------------------

    async def _start_receiving(self, stream_id: str | None) -> None:
        info = self._service.streams.resolve(stream_id)
        self._live.ensure(info)   # a stream of another node is relayed here
        peer, offer = await self._live.offer_receiver(info.stream_id)
        if self._closed:
            self._live.abandon(info.stream_id)
            self._live.close_peer(peer)
            return
        self._spawn_end(self._release())
        self._peer = peer
        self._stream_id = info.stream_id
        self.role = Role.OFFERED
        self._send("webrtc_offer", wire.webrtc_offer(offer, info.stream_id))
        self._answer_timer = self._d.clock.call_later(self._d.answer_timeout,
                                                       lambda: self._answer_expired(peer))
        peer.pc.on("connectionstatechange", lambda: self._peer_state(peer))
        self._count(info.stream_id)

    def _answer_expired(self, peer: ReceiverPeer) -> None:
        self._answer_timer = None
        if peer is self._peer and self.role is Role.OFFERED:
            self._spawn_end(self._release())
            self._error(Conflict("no webrtc_answer within VOICE_ANSWER_TIMEOUT; "
                                 "send start_receiving again"))

    async def _answer(self, sdp: str) -> None:
        peer = self._peer
        if self._ended_offer and self.role is Role.IDLE:
            self._ended_offer = False
            raise StreamEnded("Stream ended")
        if self.role is not Role.OFFERED or not isinstance(peer, ReceiverPeer):
            raise Conflict(f"webrtc_answer needs the server's offer first (expected "
                           f"{Role.OFFERED.value}, got {self.role.value}); "
                           "send start_receiving")
        stream_id = self._stream_id
        assert stream_id is not None
        try:
            downtrack = await peer.answer(sdp)
        except RtcHubError:
            self._spawn_end(self._release())
            raise
        if peer is not self._peer:
            return
        self._cancel_timer()
        try:
            self._live.attach(stream_id, downtrack)
        except RtcHubError:
            self._spawn_end(self._release())
            raise
        self.role = Role.RECEIVING
        self._count(stream_id)
        uplink = self._live.uplink(stream_id)
        if uplink is not None:
            with contextlib.suppress(RuntimeError):
                self._d.tasks.spawn(uplink.request_keyframe(), name="voice-keyframe")

    def _count(self, stream_id: str) -> None:
        live = self._live
        self._service.listeners_changed(stream_id, live.receivers(stream_id),
                                        live.mp3_listeners(stream_id))

    # -- both ----------------------------------------------------------------------------

    def _candidate(self, msg: wire.IceCandidate) -> None:
        peer = self._peer
        if peer is None or msg.candidate is None:
            return
        text = msg.candidate.removeprefix("a=").removeprefix("candidate:")
        try:
            candidate = candidate_from_sdp(text)
        except (ValueError, IndexError, AssertionError):
            raise InvalidField("'candidate.candidate' is not an ICE candidate line") from None
        candidate.sdpMid = msg.sdp_mid
        candidate.sdpMLineIndex = msg.sdp_mline_index if msg.sdp_mline_index is not None else 0
        with contextlib.suppress(RuntimeError):
            self._d.tasks.spawn(_add_candidate(peer, candidate), name="voice-candidate")

    def _cancel_timer(self) -> None:
        if self._answer_timer is not None:
            self._answer_timer.cancel()
            self._answer_timer = None

    def _release(self) -> Awaitable[None] | None:
        """Close this connection's peer connection; a sender's stream ends (the returned
        awaitable takes it out of the directory: await it, or :meth:`_spawn_end`)."""
        self._ended_offer = False
        self._cancel_timer()
        peer, self._peer = self._peer, None
        stream_id, self._stream_id = self._stream_id, None
        role, self.role = self.role, Role.IDLE
        if role is Role.SENDING and stream_id is not None:
            self._live.stop(stream_id)  # closes the sender's peer
            return self._end(stream_id)
        if role is Role.OFFERED and stream_id is not None:
            self._live.abandon(stream_id)
        if peer is not None:
            self._live.close_peer(peer)
        if stream_id is not None and role in (Role.OFFERED, Role.RECEIVING):
            self._count(stream_id)
        return None

    async def _end(self, stream_id: str) -> None:
        await self._service.end(stream_id)

    def _spawn_end(self, work: Awaitable[None] | None) -> None:
        if work is None:
            return

        async def run() -> None:
            await work

        # shutting down (RuntimeError): the node's sweep removes the stream
        with contextlib.suppress(RuntimeError):
            self._d.tasks.spawn(run(), name="voice-end")

    def close(self) -> Awaitable[None] | None:
        """The connection is gone: free everything (a sender's stream leaves the
        directory before the connection is forgotten)."""
        self._closed = True
        self._service.leave_audience(self._conn.id)
        return self._release()

    # -- outbound ------------------------------------------------------------------------

    def deliver(self, event: VoiceEvent) -> None:
        """Render a voice event; a receiver of a stream that ended frees its peer."""
        match event:
            case StreamAvailable(stream_id=sid, name=name, started_at=at):
                self._send("stream_available", wire.stream_available(sid, name, at))
            case StreamEndedEvent(stream_id=sid):
                if self._stream_id == sid and self.role in (Role.OFFERED, Role.RECEIVING):
                    offered = self.role is Role.OFFERED
                    self._spawn_end(self._release())
                    self._ended_offer = offered
                self._send("stream_ended", wire.stream_ended(sid))
            case StreamListeners(stream_id=sid, webrtc=webrtc, mp3=mp3):
                self._send("stream_listeners", wire.stream_listeners(sid, webrtc, mp3))
            case _:
                assert_never(event)


async def _add_candidate(peer: SenderPeer | ReceiverPeer, candidate: Any) -> None:
    try:
        await peer.pc.addIceCandidate(candidate)
    except Exception as exc:
        log.info("ignoring a candidate aiortc refused: %s", exc)
