"""Keyframe gating through real aiortc peers: a video receiver joins a stream mid-way.

The server negotiates audio only today, so this wires the media plane by hand,
as the SFU will: an aiortc sender's VP8 or H.264 goes to an :class:`Uplink`, a
:class:`Downtrack` forwards it to an aiortc receiver, all over loopback.
"""

from __future__ import annotations

import fractions
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import av
import pytest
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    VideoStreamTrack,
)
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription

from rtchub.base.changes import Changes
from rtchub.media import aiortc_adapter as adapter
from rtchub.media.fanout import Downtrack, ForwardingStats, Uplink
from rtchub.media.keyframes import detector
from rtchub.media.peers import HeldTrack

TIMEOUT = 10.0
VP8 = "video/VP8"
H264 = "video/H264"


class NoiseTrack(VideoStreamTrack):
    """Small noise pictures at 30 fps (paced by aiortc's own clock).

    The width follows the seed, so two sources never send the same bytes (not
    even H.264 parameter sets, which carry the picture size).
    """

    def __init__(self, seed: int) -> None:
        super().__init__()
        self._noise = random.Random(seed)
        self.width = 96 + 32 * seed

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(self.width, 64, "yuv420p")
        for plane in frame.planes:
            plane.update(self._noise.randbytes(plane.buffer_size))
        frame.pts = pts
        frame.time_base = fractions.Fraction(time_base)
        return frame


def only(transceiver: RTCRtpTransceiver, mime_type: str) -> None:
    caps = RTCRtpSender.getCapabilities("video")
    transceiver.setCodecPreferences([c for c in caps.codecs if c.mimeType == mime_type])


def payload_type(sdp: str, mime_type: str) -> int:
    for media in SessionDescription.parse(sdp).media:
        for codec in media.rtp.codecs:
            if codec.mimeType == mime_type and codec.payloadType is not None:
                return int(codec.payloadType)
    raise AssertionError(f"no {mime_type} in the answer")


class Plane:
    """Four peers: sender -> (uplink | downtrack) -> receiver, and what the receiver saw."""

    def __init__(self, codec: str) -> None:
        self.codec = codec
        detect = detector(codec)
        assert detect is not None
        self.starts_keyframe = detect
        self.changes = Changes()
        self.stats = ForwardingStats(self.changes.notify)
        self.pcs: list[RTCPeerConnection] = []
        self.received: list[RtpPacket] = []
        self.tracks: list[Any] = []
        self.sent: dict[Uplink, set[bytes]] = {}  # payloads each uplink got, as they come
        self.receiver: RTCRtpReceiver | None = None
        self.now = 0.0  # the uplinks' throttle clock: each keeps one request per value
        self.keyframes = 0  # keyframe starts the uplinks got (after forwarding them)

    def pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.on("connectionstatechange", self.changes.notify)
        self.pcs.append(pc)
        return pc

    async def connect(self, offerer: RTCPeerConnection, answerer: RTCPeerConnection,
                      on_remote_offer: Callable[[], None] = lambda: None) -> str:
        adapter.configure_ice(offerer, ["127.0.0.1"], None)
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        on_remote_offer()
        adapter.configure_ice(answerer, ["127.0.0.1"], None)  # its transports exist now
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        return str(answerer.localDescription.sdp)

    def seen(self, packet: RtpPacket) -> None:
        """The receiver got ``packet`` (before aiortc's jitter buffer)."""
        self.received.append(packet)
        self.changes.notify()

    async def until(self, condition: Callable[[], bool]) -> None:
        try:
            await self.changes.wait_for(condition, TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"not reached within {TIMEOUT}s") from None


@pytest.fixture(params=[VP8, H264])
async def plane(request: pytest.FixtureRequest) -> AsyncIterator[Plane]:
    p = Plane(request.param)
    yield p
    for track in p.tracks:
        track.stop()
    for pc in p.pcs:
        await pc.close()


async def start_sender(plane: Plane, seed: int) -> Uplink:
    """An aiortc video sender whose stream reaches an uplink and runs past its first keyframe."""
    sender, inbound = plane.pc(), plane.pc()
    source = NoiseTrack(seed)
    plane.tracks.append(source)
    only(sender.addTransceiver(source, direction="sendonly"), plane.codec)
    uplinks: list[Uplink] = []
    payloads: set[bytes] = set()

    def tap() -> None:
        transceiver = inbound.getTransceivers()[0]
        only(transceiver, plane.codec)
        # a clock the test moves: the throttle lets one keyframe request through per tick
        uplinks.append(Uplink(transceiver.receiver, plane.stats, 0.5, clock=lambda: plane.now))
        uplinks[0].listen(1, got)

    def got(packet: RtpPacket) -> None:
        payloads.add(packet.payload)
        if plane.starts_keyframe(packet.payload):
            plane.keyframes += 1
            plane.changes.notify()

    await plane.connect(sender, inbound, tap)
    await plane.until(lambda: len(payloads) >= 30)  # about a second of video
    plane.sent[uplinks[0]] = payloads
    return uplinks[0]


async def join(plane: Plane) -> Downtrack:
    """A receiver connected to the plane; its downtrack is not attached yet."""
    outbound, receiver = plane.pc(), plane.pc()
    held = HeldTrack("video")
    plane.tracks.append(held)
    out = outbound.addTransceiver(held, direction="sendonly")
    only(out, plane.codec)
    answer = await plane.connect(outbound, receiver)
    plane.receiver = receiver.getReceivers()[0]
    adapter.watch_receiver(plane.receiver, plane.seen)
    await plane.until(lambda: outbound.connectionState == "connected")
    return Downtrack(out.sender, payload_type(answer, plane.codec), 90000, plane.stats,
                     codec=plane.codec)


def assert_contiguous(packets: list[RtpPacket]) -> None:
    first = packets[0].sequence_number
    seqs = [p.sequence_number for p in packets]
    assert seqs == [(first + i) % (1 << 16) for i in range(len(seqs))]


async def test_a_receiver_joining_mid_stream_starts_at_a_keyframe(plane: Plane) -> None:
    await adapter.check_assumptions()
    uplink = await start_sender(plane, seed=0)
    downtrack = await join(plane)
    assert downtrack.waiting_for_keyframe
    uplink.attach(downtrack)
    await plane.until(lambda: len(plane.received) >= 20)

    assert plane.starts_keyframe(plane.received[0].payload)
    assert not downtrack.waiting_for_keyframe
    assert_contiguous(plane.received)
    # the deltas before it were held back, and asked for one keyframe upstream
    assert plane.stats.packets_gated >= 1
    assert plane.stats.keyframe_requests == 1
    assert uplink.keyframes_combined >= plane.stats.packets_gated - 1
    # and aiortc's own decoder on the receiver makes a picture of the first frame
    assert plane.receiver is not None
    picture = await plane.receiver.track.recv()
    assert isinstance(picture, av.VideoFrame)
    assert (picture.width, picture.height) == (96, 64)


async def test_a_stream_switch_resumes_at_the_new_sources_keyframe(plane: Plane) -> None:
    first = await start_sender(plane, seed=1)
    downtrack = await join(plane)
    first.attach(downtrack)
    await plane.until(lambda: len(plane.received) >= 10)
    second = await start_sender(plane, seed=2)
    gated = plane.stats.packets_gated

    first.detach(downtrack)  # the receiver switches streams
    second.attach(downtrack)
    new = plane.sent[second]

    def switched() -> list[RtpPacket]:
        return [p for p in plane.received if p.payload in new]

    await plane.until(lambda: len(switched()) >= 10)
    assert not new & plane.sent[first]  # packets tell their source by their bytes
    at = plane.received.index(switched()[0])
    assert plane.starts_keyframe(plane.received[at].payload)
    assert all(p.payload in new for p in plane.received[at:])
    assert all(p.payload in plane.sent[first] for p in plane.received[:at])
    assert_contiguous(plane.received)  # no gap at the switch point
    step = (plane.received[at].timestamp - plane.received[at - 1].timestamp) % (1 << 32)
    assert 0 < step < 1 << 31  # timestamps move forward across the switch
    assert plane.stats.packets_gated > gated
    assert plane.stats.keyframe_requests == 2  # one per source


async def test_a_keyframe_the_receiver_never_got_is_waited_for_again(plane: Plane) -> None:
    uplink = await start_sender(plane, seed=0)
    outbound, receiver = plane.pc(), plane.pc()
    held = HeldTrack("video")
    plane.tracks.append(held)
    out = outbound.addTransceiver(held, direction="sendonly")
    only(out, plane.codec)
    adapter.configure_ice(outbound, ["127.0.0.1"], None)
    await outbound.setLocalDescription(await outbound.createOffer())
    pt = payload_type(outbound.localDescription.sdp, plane.codec)
    downtrack = Downtrack(out.sender, pt, 90000, plane.stats, codec=plane.codec)
    keyframes = plane.keyframes
    uplink.attach(downtrack)  # before its transport is connected
    await plane.until(lambda: plane.keyframes > keyframes)
    # the keyframe it asked for could not be sent: the gate shut again
    assert downtrack.waiting_for_keyframe
    assert plane.received == []

    await receiver.setRemoteDescription(outbound.localDescription)
    adapter.configure_ice(receiver, ["127.0.0.1"], None)
    await receiver.setLocalDescription(await receiver.createAnswer())
    plane.receiver = receiver.getReceivers()[0]
    adapter.watch_receiver(plane.receiver, plane.seen)
    await outbound.setRemoteDescription(receiver.localDescription)
    await plane.until(lambda: outbound.connectionState == "connected")
    plane.now += 1.0  # the throttle's interval has passed: the next request goes up
    await plane.until(lambda: len(plane.received) >= 10)
    assert plane.starts_keyframe(plane.received[0].payload)
    assert_contiguous(plane.received)
    assert plane.stats.keyframe_requests == 2
