"""Real aiortc clients of the SFU's server-side peers, signalled in process.

A :class:`Client` is a participant: one aiortc peer connection to its
:class:`SfuPeer`, publishing real encoded tracks and receiving what the server
forwards. Signaling is direct method calls (the call feature's wire is not in
the media layer), and the client behaves as a polite peer: it sends an offer
it created but has not applied yet, applies it only when the server answers,
and when the server ignores it (glare) answers the server's offer first and
tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.rtcconfiguration import RTCBundlePolicy

from rtchub.base.changes import Changes
from rtchub.media import aiortc_adapter as adapter
from rtchub.media.fanout import ForwardingStats
from rtchub.media.sfu import PublishedTrack, SfuMediaConfig, SfuPeer
from tests.support import TIMEOUT

LOOPBACK = ("127.0.0.1",)
BUFFER = 2 * 1024 * 1024  # the clients share the test's event loop: room for its stalls


class PictureTrack(VideoStreamTrack):
    """Noise pictures of one size at 30 fps (paced by aiortc's clock)."""

    def __init__(self, width: int, height: int, seed: int = 0) -> None:
        super().__init__()
        self.width = width
        self.height = height
        self._noise = random.Random(seed)
        self._rows = [self._noise.randbytes(width) for _ in range(8)]
        self._shift = 0
        # the pictures repeat every len(rows) frames: each one's planes are built once
        # (joining rows in Python for every frame was a test's main cost at 8 people)
        self._planes: dict[int, list[bytes]] = {}

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        planes = self._planes.get(self._shift)
        if planes is None:
            rows = self._rows[self._shift:] + self._rows[:self._shift]
            planes = [b"".join(rows[i % len(rows)][:plane.line_size].ljust(
                          plane.line_size, b"\x80") for i in range(plane.height))
                      for plane in frame.planes]
            self._planes[self._shift] = planes
        for plane, data in zip(frame.planes, planes, strict=True):
            plane.update(data)
        self._shift = (self._shift + 1) % len(self._rows)  # some motion
        frame.pts = pts
        frame.time_base = fractions.Fraction(time_base)
        return frame


@dataclass
class Client:
    """One participant: an aiortc peer connection and its server-side peer."""

    name: str
    room: Room
    pc: RTCPeerConnection
    peer: SfuPeer
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    received: dict[str, Any] = field(default_factory=dict)  # remote track id -> track
    offers_ignored: int = 0
    server_offers: int = 0
    hold: asyncio.Event | None = None  # when set, server offers wait for it
    last_answer: str = ""  # the server's last answer, as sent
    failures: list[Exception] = field(default_factory=list)

    async def on_server_offer(self, sdp: str) -> None:
        """The server's offer: answer it at once (a polite peer has nothing pending)."""
        self.server_offers += 1
        self.room.changes.notify()
        if self.hold is not None:
            await self.hold.wait()
        async with self.lock:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
            adapter.configure_ice(self.pc, LOOPBACK, None, BUFFER)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self.peer.accept_answer(self.pc.localDescription.sdp)
        self.room.changes.notify()

    async def negotiate(self) -> None:
        """Offer what the client has now, retrying after glare."""
        while True:
            async with self.lock:
                adapter.configure_ice(self.pc, LOOPBACK, None, BUFFER)
                if self.pc.localDescription is None:
                    # the first offer must carry candidates: gather by applying it first
                    await self.pc.setLocalDescription(await self.pc.createOffer())
                    answer = await self.peer.accept_offer(self.pc.localDescription.sdp)
                    assert answer is not None, "no glare before the first answer"
                else:
                    offer = await self.pc.createOffer()  # candidates known: apply on success
                    answer = await self.peer.accept_offer(offer.sdp)
                    if answer is not None:
                        await self.pc.setLocalDescription(offer)
                if answer is not None:
                    self.last_answer = answer
                    await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
                    self.room.changes.notify()
                    return
                self.offers_ignored += 1
            # glare: the server's offer goes first; let it through, then offer again
            await self.room.until(lambda: self.peer.signaling_state == "stable")

    def publish(self, track: MediaStreamTrack, codec: str | None = None) -> RTCRtpTransceiver:
        """Add a sendonly track (sent at the next :meth:`negotiate`)."""
        transceiver = self.pc.addTransceiver(track, direction="sendonly")
        if codec is not None:
            caps = RTCRtpSender.getCapabilities(track.kind).codecs
            transceiver.setCodecPreferences([c for c in caps if c.mimeType == codec])
        self.room.tracks.append(track)
        return transceiver

    def track_from(self, published: PublishedTrack) -> Any:
        """The track this client receives for ``published`` (by its msid track id)."""
        return self.received.get(published.track_id)

    async def close(self) -> None:
        await self.peer.close()
        await self.pc.close()


@dataclass
class Room:
    """Clients, their published tracks and a change notifier to wait on."""

    config: SfuMediaConfig
    clock: Callable[[], float] = time.monotonic
    changes: Changes = field(default_factory=Changes)
    clients: list[Client] = field(default_factory=list)
    tracks: list[MediaStreamTrack] = field(default_factory=list)
    published: list[PublishedTrack] = field(default_factory=list)
    stats: ForwardingStats = field(init=False)

    def __post_init__(self) -> None:
        self.stats = ForwardingStats(self.changes.notify)

    async def join(self, name: str, config: SfuMediaConfig | None = None) -> Client:
        """A client and its server-side peer, not negotiated yet."""
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[],
                                                bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        holder: list[Client] = []

        async def on_offer(sdp: str) -> None:
            await holder[0].on_server_offer(sdp)

        peer = SfuPeer(name, config or self.config, on_offer, stats=self.stats,
                       clock=self.clock)
        client = Client(name, self, pc, peer)
        holder.append(client)

        @pc.on("track")
        def got(track: Any) -> None:
            client.received[track.id] = track
            self.changes.notify()

        def published(track: PublishedTrack) -> None:
            self.published.append(track)
            self.changes.notify()

        def unpublished(track: PublishedTrack) -> None:
            self.changes.notify()

        peer.on_track_published = published
        peer.on_track_unpublished = unpublished
        peer.on_connection_state_change = lambda state: self.changes.notify()

        def failed(error: Exception) -> None:
            client.failures.append(error)
            self.changes.notify()

        peer.on_failed = failed
        pc.on("connectionstatechange", self.changes.notify)
        self.clients.append(client)
        return client

    async def until(self, condition: Callable[[], bool], timeout: float = TIMEOUT * 2) -> None:
        """Wait (without polling) until ``condition`` holds."""
        try:
            await self.changes.wait_for(condition, timeout)
        except TimeoutError:
            raise AssertionError(f"not reached within {timeout}s") from None

    def tracks_of(self, client: Client) -> list[PublishedTrack]:
        """What ``client`` publishes now."""
        return [t for t in self.published if t.publisher_id == client.name and not t.ended]

    async def close(self) -> None:
        for track in self.tracks:
            track.stop()
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.close()


@contextlib.asynccontextmanager
async def room(config: SfuMediaConfig | None = None,
               clock: Callable[[], float] = time.monotonic) -> AsyncIterator[Room]:
    """A room of clients on loopback, closed afterwards; ``clock`` drives the peers'
    throttles and estimate expiry."""
    r = Room(config or SfuMediaConfig(node_ips=LOOPBACK), clock)
    try:
        yield r
    finally:
        await r.close()


async def next_frame(track: Any, timeout: float = TIMEOUT * 2) -> Any:
    """The next decoded frame of a received track."""
    return await asyncio.wait_for(track.recv(), timeout)
