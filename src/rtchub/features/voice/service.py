"""The voice broadcast service: live streams (core) joined to their media (aiortc peers).

One per hub. It owns every sender's uplink, each stream's receivers and MP3
output, and tells the audience (every voice-speaking connection) when streams
go live or end. Connection handlers (:mod:`rtchub.features.voice.handler`) call it; it
never sees a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from rtchub.base.metrics import Stats
from rtchub.base.tasks import TaskOwner
from rtchub.config import Config
from rtchub.errors import CapacityError, ServerError, StreamEnded, StreamNotFound
from rtchub.features.voice import wire
from rtchub.features.voice.rules import StreamInfo, Streams
from rtchub.media.fanout import Downtrack, ForwardingStats, Uplink
from rtchub.media.mp3 import Mp3Broadcast, Mp3Listener
from rtchub.media.peers import PeerFactory, ReceiverPeer, SenderPeer

__all__ = ["Audience", "VoiceService"]

log = logging.getLogger("rtchub.voice")

MP3_BITRATE = 128_000


class Audience(Protocol):
    """A voice-speaking connection as the service sees it."""

    @property
    def conn_id(self) -> str:
        """The connection's ID."""
        ...

    def send(self, kind: str, data: bytes) -> None:
        """Send one frame of type ``kind``."""
        ...

    def stream_gone(self, stream_id: str) -> None:
        """The stream this connection receives has ended."""
        ...


class _Live:
    """The media of one live stream."""

    __slots__ = ("info", "mp3", "peer", "receivers")

    def __init__(self, info: StreamInfo, peer: SenderPeer, mp3: Mp3Broadcast) -> None:
        self.info = info
        self.peer = peer
        self.mp3 = mp3
        self.receivers: set[Audience] = set()


class VoiceService:
    """Streams, their peers and MP3 outputs, and the audience told about them."""

    def __init__(self, config: Config, stats: Stats, tasks: TaskOwner,
                 clock: Callable[[], float] = time.monotonic,
                 changed: Callable[[], None] = lambda: None) -> None:
        self._limits = config.limits
        self._stats = stats
        self._tasks = tasks
        self._clock = clock
        self.streams = Streams(config.limits.voice_max_streams)
        self.media = ForwardingStats(changed)
        self.peers = PeerFactory(config.node_ips, config.udp_ports, self.media)
        self._live: dict[str, _Live] = {}
        self._audience: dict[str, Audience] = {}
        self._closing: set[asyncio.Future[None]] = set()
        self.answer_timeout = config.limits.voice_answer_timeout
        self.webrtc_available = True
        self.closed = False

    # -- audience ------------------------------------------------------------------------

    def join(self, member: Audience) -> None:
        """A voice-speaking connection opened: greet it with the live streams."""
        self._audience[member.conn_id] = member
        self.streams.join_audience(member.conn_id)
        member.send("available_streams", wire.available_streams(self.streams.ids()))

    def leave(self, member: Audience) -> None:
        """The connection is gone."""
        self._audience.pop(member.conn_id, None)
        self.streams.leave_audience(member.conn_id)

    def _broadcast(self, kind: str, data: bytes) -> None:
        for conn_id in self.streams.audience():
            member = self._audience.get(conn_id)
            if member is not None:
                member.send(kind, data)

    @property
    def connected(self) -> int:
        """Voice-speaking connections now."""
        return len(self._audience)

    # -- senders -------------------------------------------------------------------------

    async def accept_sender(self, offer_sdp: str) -> tuple[SenderPeer, str]:
        """Answer a sender's offer (refused early when the stream limit is reached)."""
        self._require_webrtc()
        if len(self.streams) >= self._limits.voice_max_streams:
            raise CapacityError(f"too many live streams (limit "
                                f"{self._limits.voice_max_streams})")
        return await self.peers.accept_sender(offer_sdp)

    def _require_webrtc(self) -> None:
        if not self.webrtc_available:
            raise ServerError("Server error: WebRTC media is unavailable (the installed "
                              "aiortc failed rtchub's adapter check; see the server log)")

    def go_live(self, owner: str, peer: SenderPeer) -> StreamInfo:
        """``owner``'s answered peer is a live stream: tell everyone."""
        info = self.streams.go_live(owner, self._clock())
        mp3 = Mp3Broadcast(peer.uplink, MP3_BITRATE, self._limits.mp3_listener_buffer)
        self._live[info.stream_id] = _Live(info, peer, mp3)
        self._broadcast("stream_available", wire.stream_available(info.stream_id))
        return info

    def end(self, stream_id: str) -> None:
        """End a stream: receivers and MP3 listeners are cut, everyone is told."""
        info = self.streams.end(stream_id)
        live = self._live.pop(stream_id, None)
        if live is None:
            return
        live.peer.uplink.close()
        live.mp3.end()
        for member in list(live.receivers):
            member.stream_gone(stream_id)
        live.receivers.clear()
        self.close_peer(live.peer)
        if info is not None:
            self._broadcast("stream_ended", wire.stream_ended(stream_id))

    # -- receivers -----------------------------------------------------------------------

    async def offer_receiver(self, stream_id: str | None) -> tuple[ReceiverPeer, StreamInfo,
                                                                   str]:
        """Resolve the stream a receiver asked for and make the server's offer."""
        info = self.streams.resolve(stream_id)
        self._require_webrtc()
        live = self._live[info.stream_id]
        if len(live.receivers) >= self._limits.voice_max_receivers:
            raise CapacityError(f"stream {info.stream_id} has "
                                f"{self._limits.voice_max_receivers} receivers (the limit)")
        peer, offer = await self.peers.offer_receiver()
        return peer, info, offer

    def attach(self, member: Audience, stream_id: str, downtrack: Downtrack) -> None:
        """Start forwarding ``stream_id`` to ``member``'s downtrack."""
        live = self._live.get(stream_id)
        if live is None:
            raise StreamEnded("Stream ended")
        live.receivers.add(member)
        live.peer.uplink.attach(downtrack)
        self.media.changed()
        with contextlib.suppress(RuntimeError):
            self._tasks.spawn(live.peer.uplink.request_keyframe(), name="voice-keyframe")

    def uplink(self, stream_id: str) -> Uplink | None:
        """The uplink of a live stream."""
        live = self._live.get(stream_id)
        return live.peer.uplink if live is not None else None

    def detach(self, member: Audience, stream_id: str) -> None:
        """``member`` no longer receives ``stream_id``."""
        live = self._live.get(stream_id)
        if live is not None:
            live.receivers.discard(member)
            self.media.changed()

    # -- MP3 -----------------------------------------------------------------------------

    def mp3(self, stream_id: str | None) -> tuple[str, Mp3Broadcast]:
        """The MP3 output of ``stream_id`` (the latest when None); raises when none is live."""
        if stream_id is None:
            info = self.streams.latest()
            if info is None:
                raise StreamNotFound("No audio stream available")
        else:
            info = self.streams.get(stream_id)
            if info is None:
                raise StreamNotFound("Stream not found")
        return info.stream_id, self._live[info.stream_id].mp3

    def listen(self, stream_id: str | None) -> tuple[str, Mp3Listener]:
        """A new MP3 listener (bounded by MP3_MAX_LISTENERS)."""
        sid, mp3 = self.mp3(stream_id)
        if mp3.listeners >= self._limits.mp3_max_listeners:
            raise CapacityError(f"stream {sid} has {self._limits.mp3_max_listeners} MP3 "
                                "listeners (the limit)")
        return sid, mp3.subscribe()

    def unlisten(self, stream_id: str, listener: Mp3Listener) -> None:
        """A listener's response ended."""
        live = self._live.get(stream_id)
        if live is not None:
            live.mp3.unsubscribe(listener)
        else:
            listener.end()
        self.media.changed()

    def mp3_listeners(self) -> int:
        """MP3 listeners across streams."""
        return sum(live.mp3.listeners for live in self._live.values())

    def end_listeners(self) -> None:
        """Shutdown: end every MP3 response so the HTTP server can close."""
        for live in self._live.values():
            live.mp3.end()

    # -- peers ---------------------------------------------------------------------------

    def close_peer(self, peer: SenderPeer | ReceiverPeer) -> None:
        """Close a peer connection in the background (owned, awaited on close)."""
        future = asyncio.ensure_future(self._close_quietly(peer))
        self._closing.add(future)
        future.add_done_callback(self._peer_closed)

    def _peer_closed(self, future: asyncio.Future[None]) -> None:
        self._closing.discard(future)
        self.media.changed()

    @staticmethod
    async def _close_quietly(peer: SenderPeer | ReceiverPeer) -> None:
        try:
            await peer.close()
        except Exception:
            log.exception("closing a peer connection failed")

    async def close(self) -> None:
        """End every stream and wait for every peer connection to close."""
        self.closed = True
        for stream_id in list(self._live):
            self.end(stream_id)
        while self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)

    # -- views ---------------------------------------------------------------------------

    @property
    def peer_connections(self) -> int:
        """Peer connections still closing (for leak checks)."""
        return len(self._closing)

    def receivers(self) -> int:
        """WebRTC receivers across streams."""
        return sum(len(live.receivers) for live in self._live.values())
