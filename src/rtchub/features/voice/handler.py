"""The voice dialect on a connection: decode, drive :class:`VoiceService`, render.

Every connection speaking voice is greeted with ``available_streams`` and hears
``stream_available``/``stream_ended``. SDP work is asynchronous, so a
connection's messages run in order on one owned task while it is busy: a client
may send ``start_sending`` and its ``webrtc_offer`` back to back.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections import deque
from typing import Any, Final

from aiortc.sdp import candidate_from_sdp

from rtchub.base.metrics import Stats
from rtchub.base.tasks import TaskOwner
from rtchub.errors import (
    Conflict,
    InvalidField,
    QueueFull,
    RtcHubError,
    ServerError,
    StreamEnded,
)
from rtchub.features.voice import wire
from rtchub.features.voice.service import VoiceService
from rtchub.media.peers import ReceiverPeer, SenderPeer
from rtchub.net.connection import Connection
from rtchub.net.session import ErrorReply

__all__ = ["Role", "VoiceDialect", "VoiceHandler"]

log = logging.getLogger("rtchub.voice")

MAX_BACKLOG: Final = 64


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

    def __init__(self, service: VoiceService, tasks: TaskOwner, stats: Stats) -> None:
        self._service = service
        self._tasks = tasks
        self._stats = stats

    def open(self, conn: Connection, reply_error: ErrorReply) -> VoiceHandler:
        """State for one connection; greets it with the live streams."""
        handler = VoiceHandler(self._service, self._tasks, self._stats, conn, reply_error)
        self._service.join(handler)
        return handler


class VoiceHandler:
    """One connection's role (sender or receiver) and its peer connection."""

    def __init__(self, service: VoiceService, tasks: TaskOwner, stats: Stats,
                 conn: Connection, reply_error: ErrorReply) -> None:
        self._service = service
        self._tasks = tasks
        self._stats = stats
        self._conn = conn
        self._error = reply_error
        self.connection_id = str(uuid.uuid4())
        self.role = Role.IDLE
        self._peer: SenderPeer | ReceiverPeer | None = None
        self._stream_id: str | None = None
        self._backlog: deque[wire.VoiceMessage] | None = None
        self._answer_timer: asyncio.TimerHandle | None = None
        self._ended_offer = False  # the stream offered to us ended before our answer
        self._closed = False

    @property
    def conn_id(self) -> str:
        """The WebSocket connection's ID."""
        return self._conn.id

    def send(self, kind: str, data: bytes) -> None:
        """Send a frame of type ``kind`` to this client."""
        if not self._closed:
            self._stats.frames_out[kind] += 1
            self._conn.send(data)

    # -- inbound -------------------------------------------------------------------------

    def handle(self, obj: dict[str, Any], received_ns: int) -> None:
        """Decode now; run now or in order behind the SDP work in flight."""
        msg = wire.decode(obj)
        if self._backlog is not None:
            if len(self._backlog) >= MAX_BACKLOG:
                raise QueueFull(f"more than {MAX_BACKLOG} messages sent during SDP work")
            self._backlog.append(msg)
            return
        if type(msg) in (wire.WebrtcOffer, wire.WebrtcAnswer, wire.StartReceiving):
            self._backlog = deque()
            self._tasks.spawn(self._drain(msg), name=f"voice-{self._conn.id}")
        else:
            self._now(msg)

    async def _drain(self, first: wire.VoiceMessage) -> None:
        try:
            await self._run(first)
            while self._backlog and not self._closed:
                await self._run(self._backlog.popleft())
        finally:
            self._backlog = None

    async def _run(self, msg: wire.VoiceMessage) -> None:
        try:
            if type(msg) is wire.WebrtcOffer:
                await self._offer(msg.sdp)
            elif type(msg) is wire.WebrtcAnswer:
                await self._answer(msg.sdp)
            elif type(msg) is wire.StartReceiving:
                await self._start_receiving(msg.stream_id)
            else:
                self._now(msg)
        except RtcHubError as err:
            self._error(err)
        except Exception as exc:
            log.exception("voice operation failed on conn=%s", self._conn.id)
            self._error(ServerError(f"Server error: {type(exc).__name__}: {str(exc)[:120]}"))

    def _now(self, msg: wire.VoiceMessage) -> None:
        match msg:
            case wire.StartSending():
                self._release()
                self.role = Role.SENDER_READY
                self.send("sender_ready", wire.sender_ready(self.connection_id))
            case wire.GetAvailableStreams():
                self.send("available_streams", wire.available_streams(self._service.streams.ids()))
            case wire.StopStream():
                self._release()
            case wire.IceCandidate():
                self._candidate(msg)
            case wire.LocalIp():
                pass
            case _:
                raise RuntimeError(f"unexpected message {msg!r}")

    # -- sender --------------------------------------------------------------------------

    async def _offer(self, sdp: str) -> None:
        if self.role is not Role.SENDER_READY:
            raise Conflict(f"webrtc_offer needs start_sending first (expected "
                           f"{Role.SENDER_READY.value}, got {self.role.value})")
        peer, answer = await self._service.accept_sender(sdp)
        if self._closed or self.role is not Role.SENDER_READY:
            self._service.close_peer(peer)
            return
        self._peer = peer
        self.role = Role.SENDING
        self.send("webrtc_answer", wire.webrtc_answer(answer))
        info = self._service.go_live(self.connection_id, peer)
        self._stream_id = info.stream_id
        peer.pc.on("connectionstatechange", lambda: self._peer_state(peer))

    def _peer_state(self, peer: SenderPeer | ReceiverPeer) -> None:
        if peer is self._peer and peer.pc.connectionState in ("failed", "closed"):
            self._release()

    # -- receiver ------------------------------------------------------------------------

    async def _start_receiving(self, stream_id: str | None) -> None:
        peer, info, offer = await self._service.offer_receiver(stream_id)
        if self._closed:
            self._service.close_peer(peer)
            return
        self._release()
        self._peer = peer
        self._stream_id = info.stream_id
        self.role = Role.OFFERED
        self.send("webrtc_offer", wire.webrtc_offer(offer, info.stream_id))
        timeout = self._service.answer_timeout
        self._answer_timer = asyncio.get_running_loop().call_later(
            timeout, self._answer_expired, peer)
        peer.pc.on("connectionstatechange", lambda: self._peer_state(peer))

    def _answer_expired(self, peer: ReceiverPeer) -> None:
        self._answer_timer = None
        if peer is self._peer and self.role is Role.OFFERED:
            self._release()
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
            self._release()
            raise
        if peer is not self._peer:
            return
        if self._answer_timer is not None:
            self._answer_timer.cancel()
            self._answer_timer = None
        try:
            self._service.attach(self, stream_id, downtrack)
        except RtcHubError:
            self._release()
            raise
        self.role = Role.RECEIVING

    def stream_gone(self, stream_id: str) -> None:
        """The stream this connection receives ended: free the peer connection."""
        if self._stream_id == stream_id and self.role in (Role.OFFERED, Role.RECEIVING):
            offered = self.role is Role.OFFERED
            self._release()
            self._ended_offer = offered

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
        self._tasks.spawn(_add_candidate(peer, candidate), name="voice-candidate")

    def _release(self) -> None:
        """Close this connection's peer connection (ending its stream if it sends one)."""
        self._ended_offer = False
        if self._answer_timer is not None:
            self._answer_timer.cancel()
            self._answer_timer = None
        peer, self._peer = self._peer, None
        stream_id, self._stream_id = self._stream_id, None
        role, self.role = self.role, Role.IDLE
        if role is Role.SENDING and stream_id is not None:
            self._service.end(stream_id)  # closes the sender's peer
            return
        if stream_id is not None:
            self._service.detach(self, stream_id)
        if peer is not None:
            self._service.close_peer(peer)

    def close(self) -> None:
        """The connection is gone: free everything."""
        self._closed = True
        self._backlog = None
        self._service.leave(self)
        self._release()


async def _add_candidate(peer: SenderPeer | ReceiverPeer, candidate: Any) -> None:
    try:
        await peer.pc.addIceCandidate(candidate)
    except Exception as exc:
        log.info("ignoring a candidate aiortc refused: %s", exc)

