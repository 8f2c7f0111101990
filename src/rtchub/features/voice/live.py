"""The media of live voice streams: each sender's uplink, its receivers' downtracks and its
MP3 output, on the media plane (:mod:`rtchub.media`), and the relay of streams between nodes.

One per server. Packets are forwarded, never decoded per receiver; MP3 is encoded once
per stream and node, and only while someone listens. The directory of which streams are
live is :class:`~rtchub.features.voice.service.VoiceService`'s; this module holds only media.

Across nodes the RTP packets travel, not the MP3: a receiver or an MP3 listener on node B
of a stream sent to node A makes B ask A for it (``MediaDemand`` to A's ``MEDIA``
address); A then hands each packet of that stream, after its own fan-out, to the courier
for B (``MediaPacket``, batched with everything else A sends B), and B feeds its copy of the
stream (an :class:`~rtchub.media.fanout.Uplink` without a peer) to its own receivers and
MP3 encoder. So each node that listens costs the stream's node one more message per
packet (50 a second for Opus), and encodes its own MP3 once: docs/scaling.md has the
figures. B says when it has nobody left (``wanted=False``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Final

from aiortc.rtp import RtpPacket

from rtchub.base.connection import Address
from rtchub.base.tasks import TaskOwner
from rtchub.cluster.courier import Delivery
from rtchub.config import Config
from rtchub.errors import CapacityError, ServerError, StreamEnded
from rtchub.features.voice.events import MEDIA, ListenerReport, MediaDemand, MediaPacket
from rtchub.features.voice.rules import StreamInfo
from rtchub.features.voice.service import VoiceService
from rtchub.media.fanout import Downtrack, ForwardingStats, Uplink
from rtchub.media.mp3 import Mp3Broadcast, Mp3Listener
from rtchub.media.peers import PeerFactory, ReceiverPeer, SenderPeer

__all__ = ["Broadcasts", "NodeRelay"]

log = logging.getLogger("rtchub.voice")

MP3_BITRATE: Final = 128_000


class _Live:
    """The media of one live stream: sent to this node (``peer``) or relayed from the
    node ``origin``."""

    __slots__ = ("mp3", "nodes", "origin", "peer", "pending", "uplink")

    def __init__(self, uplink: Uplink, mp3: Mp3Broadcast, peer: SenderPeer | None = None,
                 origin: str | None = None) -> None:
        self.peer = peer
        self.uplink = uplink
        self.mp3 = mp3
        self.origin = origin
        self.pending = 0  # receivers offered and not yet answered
        self.nodes: set[str] = set()  # the nodes this stream is relayed to

    @property
    def idle(self) -> bool:
        """Nobody here listens."""
        return not self.uplink.downtracks and not self.pending and not self.mp3.listeners


class Broadcasts:
    """Every live stream's media, and the peer connections of senders and receivers."""

    def __init__(self, config: Config, changed: Callable[[], None] = lambda: None,
                 courier: Delivery | None = None, node: str = "") -> None:
        self._limits = config.limits
        self.media = ForwardingStats(changed)
        self.peers = PeerFactory(config.node_ips, config.udp_ports, self.media,
                                 config.consent_timeout)
        self._live: dict[str, _Live] = {}
        self._closing: set[asyncio.Future[None]] = set()
        self._courier = courier
        self._node = node
        self._tasks = TaskOwner("voice-relay")
        self.webrtc_available = True
        self.closed = False
        self.relayed_in = 0     # packets received from other nodes
        self.relayed_out = 0    # packets handed to the courier for other nodes

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
        self._live[stream_id] = _Live(peer.uplink, mp3, peer)

    def stop(self, stream_id: str) -> None:
        """The stream ended: cut its receivers and MP3 listeners, close its sender's peer
        (or tell the node it came from that nobody here listens any more)."""
        live = self._live.pop(stream_id, None)
        if live is None:
            return
        live.uplink.close()
        live.mp3.end()
        if live.peer is not None:
            self.close_peer(live.peer)
        elif live.origin is not None:
            self._tell(live.origin, MediaDemand(stream_id, self._node, False))

    # -- streams of other nodes ----------------------------------------------------------

    def ensure(self, info: StreamInfo) -> None:
        """Make a stream of another node playable here: ask its node for its packets."""
        if info.stream_id in self._live or info.owner.node == self._node or self.closed:
            return
        uplink = Uplink(None, self.media)
        mp3 = Mp3Broadcast(uplink, MP3_BITRATE, self._limits.mp3_listener_buffer)
        self._live[info.stream_id] = _Live(uplink, mp3, origin=info.owner.node)
        self._tell(info.owner.node, MediaDemand(info.stream_id, self._node, True))

    def drop_relayed(self, stream_id: str) -> None:
        """The stream left the directory: stop relaying it here (a stream sent to this
        node stops with its sender)."""
        live = self._live.get(stream_id)
        if live is not None and live.origin is not None:
            self.stop(stream_id)

    def release_idle(self) -> None:
        """Streams relayed from another node that nobody here listens to any more."""
        for stream_id in [sid for sid, live in self._live.items()
                          if live.origin is not None and live.idle]:
            self.stop(stream_id)

    def demand(self, event: MediaDemand) -> None:
        """Another node wants a stream of this node (or no longer)."""
        live = self._live.get(event.stream_id)
        if live is None or live.peer is None:
            return
        key = id(self)
        if event.wanted:
            if not live.nodes:
                stream_id = event.stream_id
                live.uplink.listen(key, lambda packet: self._relay(stream_id, live, packet))
            live.nodes.add(event.node)
        else:
            live.nodes.discard(event.node)
            if not live.nodes:
                live.uplink.unlisten(key)

    def forget_node(self, node: str) -> None:
        """A node was lost: stop relaying to it."""
        for live in self._live.values():
            if node in live.nodes:
                live.nodes.discard(node)
                if not live.nodes:
                    live.uplink.unlisten(id(self))

    def _relay(self, stream_id: str, live: _Live, packet: RtpPacket) -> None:
        event = MediaPacket(stream_id, packet.payload_type, bool(packet.marker),
                            packet.sequence_number, packet.timestamp, packet.ssrc,
                            packet.payload)
        for node in tuple(live.nodes):
            self._tell(node, event)
            self.relayed_out += 1

    def packet(self, event: MediaPacket) -> None:
        """A packet of a stream relayed from another node."""
        live = self._live.get(event.stream_id)
        if live is None or live.origin is None:
            return
        self.relayed_in += 1
        packet = RtpPacket(payload_type=event.payload_type, marker=int(event.marker),
                           sequence_number=event.sequence_number, timestamp=event.timestamp,
                           ssrc=event.ssrc, payload=event.payload)
        with contextlib.suppress(RuntimeError):
            self._tasks.spawn(live.uplink.feed(packet, int(time.monotonic() * 1000)),
                              name="voice-relayed-packet")

    def _tell(self, node: str, event: object) -> None:
        if self._courier is not None:
            self._courier.deliver(Address(node, MEDIA), event)

    # -- receivers -----------------------------------------------------------------------

    async def offer_receiver(self, stream_id: str) -> tuple[ReceiverPeer, str]:
        """A receiver's peer for ``stream_id`` and the server's offer; counted against
        ``VOICE_MAX_RECEIVERS`` from now on, answered or not."""
        self._require_webrtc()
        live = self._live.get(stream_id)
        if live is None:
            raise StreamEnded("Stream ended")
        limit = self._limits.voice_max_receivers
        if len(live.uplink.downtracks) + live.pending >= limit:
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
        self.release_idle()

    def attach(self, stream_id: str, downtrack: Downtrack) -> None:
        """Start forwarding ``stream_id`` to an answered receiver's downtrack."""
        live = self._live.get(stream_id)
        if live is None:
            raise StreamEnded("Stream ended")
        live.pending = max(0, live.pending - 1)
        live.uplink.attach(downtrack)
        self.media.changed()

    def uplink(self, stream_id: str) -> Uplink | None:
        """The uplink of a live stream."""
        live = self._live.get(stream_id)
        return live.uplink if live is not None else None

    def receivers(self, stream_id: str | None = None) -> int:
        """WebRTC receivers of one stream, or of all."""
        lives = self._live.values() if stream_id is None else filter(
            None, [self._live.get(stream_id)])
        return sum(len(live.uplink.downtracks) for live in lives)

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
        self.release_idle()
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
        self.release_idle()
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
        await self._tasks.close()
        while self._closing:
            with contextlib.suppress(Exception):
                await asyncio.gather(*list(self._closing), return_exceptions=True)


class NodeRelay:
    """What other nodes' voice sends this node (its ``MEDIA`` address): demands for its
    streams, packets of theirs, listener counts of its streams."""

    def __init__(self, service: VoiceService, broadcasts: Broadcasts) -> None:
        self._service = service
        self._broadcasts = broadcasts

    def deliver(self, event: object) -> None:
        """The courier's entry."""
        if type(event) is MediaPacket:
            self._broadcasts.packet(event)
        elif type(event) is MediaDemand:
            self._broadcasts.demand(event)
        elif type(event) is ListenerReport:
            self._service.listeners_reported(event.stream_id, event.node, event.webrtc,
                                             event.mp3)
