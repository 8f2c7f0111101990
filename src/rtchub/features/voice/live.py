"""The media of live voice streams: each sender's uplink, its receivers' downtracks and its
MP3 output, on the media plane (:mod:`rtchub.media`).

One per server. Packets are forwarded, never decoded per receiver; MP3 is encoded once
per stream and only while someone listens. The directory of which streams are live is
:class:`~rtchub.features.voice.service.VoiceService`'s; this module holds only media.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final

from rtchub.config import Config
from rtchub.errors import CapacityError, ServerError, StreamEnded
from rtchub.media.fanout import Downtrack, ForwardingStats, Uplink
from rtchub.media.mp3 import Mp3Broadcast, Mp3Listener
from rtchub.media.peers import PeerFactory, ReceiverPeer, SenderPeer

__all__ = ["Broadcasts"]

log = logging.getLogger("rtchub.voice")

MP3_BITRATE: Final = 128_000


class _Live:
    """The media of one live stream."""

    __slots__ = ("mp3", "peer", "pending")

    def __init__(self, peer: SenderPeer, mp3: Mp3Broadcast) -> None:
        self.peer = peer
        self.mp3 = mp3
        self.pending = 0  # receivers offered and not yet answered


class Broadcasts:
    """Every live stream's media, and the peer connections of senders and receivers."""

    def __init__(self, config: Config, changed: Callable[[], None] = lambda: None) -> None:
        self._limits = config.limits
        self.media = ForwardingStats(changed)
        self.peers = PeerFactory(config.node_ips, config.udp_ports, self.media)
        self._live: dict[str, _Live] = {}
        self._closing: set[asyncio.Future[None]] = set()
        self.webrtc_available = True
        self.closed = False

    def _require_webrtc(self) -> None:
        if not self.webrtc_available:
            raise ServerError("Server error: WebRTC media is unavailable (the installed "
                              "aiortc failed rtchub's adapter check; see the server log)")

    # -- senders -------------------------------------------------------------------------

    async def accept_sender(self, offer_sdp: str) -> tuple[SenderPeer, str]:
        """Answer a sender's offer: its peer and the answer SDP."""
        self._require_webrtc()
        return await self.peers.accept_sender(offer_sdp)

    def start(self, stream_id: str, peer: SenderPeer) -> None:
        """``peer`` feeds the live stream ``stream_id``."""
        mp3 = Mp3Broadcast(peer.uplink, MP3_BITRATE, self._limits.mp3_listener_buffer)
        self._live[stream_id] = _Live(peer, mp3)

    def stop(self, stream_id: str) -> None:
        """The stream ended: cut its receivers and MP3 listeners, close its sender's peer."""
        live = self._live.pop(stream_id, None)
        if live is None:
            return
        live.peer.uplink.close()
        live.mp3.end()
        self.close_peer(live.peer)

    # -- receivers -----------------------------------------------------------------------

    async def offer_receiver(self, stream_id: str) -> tuple[ReceiverPeer, str]:
        """A receiver's peer for ``stream_id`` and the server's offer; counted against
        ``VOICE_MAX_RECEIVERS`` from now on, answered or not."""
        self._require_webrtc()
        live = self._live.get(stream_id)
        if live is None:
            raise StreamEnded("Stream ended")
        limit = self._limits.voice_max_receivers
        if len(live.peer.uplink.downtracks) + live.pending >= limit:
            raise CapacityError(f"stream {stream_id} has {limit} receivers (the limit)")
        live.pending += 1
        try:
            return await self.peers.offer_receiver()
        except BaseException:
            live.pending -= 1
            raise

    def abandon(self, stream_id: str) -> None:
        """An offered receiver will not answer (timeout, stop, disconnect)."""
        live = self._live.get(stream_id)
        if live is not None and live.pending > 0:
            live.pending -= 1

    def attach(self, stream_id: str, downtrack: Downtrack) -> None:
        """Start forwarding ``stream_id`` to an answered receiver's downtrack."""
        live = self._live.get(stream_id)
        if live is None:
            raise StreamEnded("Stream ended")
        live.pending = max(0, live.pending - 1)
        live.peer.uplink.attach(downtrack)
        self.media.changed()

    def uplink(self, stream_id: str) -> Uplink | None:
        """The uplink of a live stream."""
        live = self._live.get(stream_id)
        return live.peer.uplink if live is not None else None

    def receivers(self, stream_id: str | None = None) -> int:
        """WebRTC receivers of one stream, or of all."""
        lives = self._live.values() if stream_id is None else filter(
            None, [self._live.get(stream_id)])
        return sum(len(live.peer.uplink.downtracks) for live in lives)

    # -- MP3 -----------------------------------------------------------------------------

    def listen(self, stream_id: str) -> Mp3Listener:
        """A new MP3 listener of a live stream (bounded by MP3_MAX_LISTENERS)."""
        live = self._live.get(stream_id)
        if live is None:
            raise StreamEnded("Stream ended")
        limit = self._limits.mp3_max_listeners
        if live.mp3.listeners >= limit:
            raise CapacityError(f"stream {stream_id} has {limit} MP3 listeners (the limit)")
        return live.mp3.subscribe()

    def unlisten(self, stream_id: str, listener: Mp3Listener) -> None:
        """A listener's response ended."""
        live = self._live.get(stream_id)
        if live is not None:
            live.mp3.unsubscribe(listener)
        else:
            listener.end()
        self.media.changed()

    def mp3_listeners(self, stream_id: str | None = None) -> int:
        """MP3 listeners of one stream, or of all."""
        if stream_id is not None:
            live = self._live.get(stream_id)
            return live.mp3.listeners if live is not None else 0
        return sum(live.mp3.listeners for live in self._live.values())

    def mp3(self, stream_id: str) -> Mp3Broadcast | None:
        """The MP3 output of a live stream."""
        live = self._live.get(stream_id)
        return live.mp3 if live is not None else None

    def end_listeners(self) -> None:
        """Shutdown: end every MP3 response so the HTTP server can close."""
        for live in self._live.values():
            live.mp3.end()

    # -- peers ---------------------------------------------------------------------------

    def close_peer(self, peer: SenderPeer | ReceiverPeer) -> None:
        """Close a peer connection in the background (awaited by :meth:`close`)."""
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

    @property
    def peer_connections(self) -> int:
        """Peer connections still closing (for leak checks)."""
        return len(self._closing)

    async def close(self) -> None:
        """Stop every stream and wait for every peer connection to close."""
        self.closed = True
        for stream_id in list(self._live):
            self.stop(stream_id)
        while self._closing:
            with contextlib.suppress(Exception):
                await asyncio.gather(*list(self._closing), return_exceptions=True)
