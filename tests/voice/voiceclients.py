"""Seed 002 clients for the tests: aiortc peers driven over the voice WebSocket."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from rtchub.hub import Hub
from rtchub.media import aiortc_adapter
from tests.support import TIMEOUT, WsClient
from tests.voice.audio import ToneTrack, dominant_frequency, mono_samples

LOOPBACK = ["127.0.0.1"]


def client_pc() -> RTCPeerConnection:
    """A client peer with no ICE servers."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def set_local(pc: RTCPeerConnection, offer: bool) -> str:
    """Create and apply the local description, gathering on loopback."""
    aiortc_adapter.configure_ice(pc, LOOPBACK, None)
    desc = await (pc.createOffer() if offer else pc.createAnswer())
    await pc.setLocalDescription(desc)
    return str(pc.localDescription.sdp)


@dataclass
class Sender:
    """A seed 002 sender: its WebSocket, peer connection and stream ID."""

    ws: WsClient
    pc: RTCPeerConnection
    stream_id: str
    connection_id: str

    async def close(self) -> None:
        await self.pc.close()
        await self.ws.close()


@dataclass
class Receiver:
    """A seed 002 receiver with the track it got."""

    ws: WsClient
    pc: RTCPeerConnection
    track: MediaStreamTrack
    stream_id: str
    extra: list[dict[str, Any]] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)  # RTP sequence numbers as received

    async def frequency(self, seconds: float = 0.3) -> float:
        return await track_frequency(self.track, seconds)

    async def close(self) -> None:
        await self.pc.close()
        await self.ws.close()


async def start_sender(url: str, freq: float, ws: WsClient | None = None) -> Sender:
    """start_sending, offer a tone, apply the answer; returns once the stream is live."""
    ws = ws if ws is not None else await WsClient.connect(url)
    await ws.send({"type": "start_sending"})
    ready = await ws.expect("sender_ready")
    pc = client_pc()
    pc.addTrack(ToneTrack(freq))
    sdp = await set_local(pc, offer=True)
    await ws.send({"type": "webrtc_offer", "offer": {"sdp": sdp, "type": "offer"}})
    answer = await ws.expect("webrtc_answer")
    await pc.setRemoteDescription(RTCSessionDescription(**answer["answer"]))
    live = await ws.expect("stream_available")
    assert live["stream_id"] == f"stream_{ready['connection_id']}"
    return Sender(ws, pc, live["stream_id"], ready["connection_id"])


async def start_receiver(url: str, stream_id: str | None = None,
                         ws: WsClient | None = None) -> Receiver:
    """start_receiving, answer the server's offer, wait for the track."""
    ws = ws if ws is not None else await WsClient.connect(url)
    msg: dict[str, Any] = {"type": "start_receiving"}
    if stream_id is not None:
        msg["stream_id"] = stream_id
    await ws.send(msg)
    extra: list[dict[str, Any]] = []
    while True:
        try:
            offer = await ws.recv()
        except TimeoutError:
            raise AssertionError(f"no webrtc_offer; got {extra}") from None
        if offer["type"] == "webrtc_offer":
            break
        extra.append(offer)
    pc = client_pc()
    got: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    seqs: list[int] = []

    def on_track(track: MediaStreamTrack) -> None:
        if not got.done():
            got.set_result(track)

    pc.on("track", on_track)
    await pc.setRemoteDescription(RTCSessionDescription(**offer["offer"]))
    rtp_receiver = pc.getTransceivers()[0].receiver
    aiortc_adapter.watch_receiver(rtp_receiver, lambda p: seqs.append(p.sequence_number))
    sdp = await set_local(pc, offer=False)
    await ws.send({"type": "webrtc_answer", "answer": {"sdp": sdp, "type": "answer"}})
    track = await asyncio.wait_for(got, TIMEOUT)
    return Receiver(ws, pc, track, offer["stream_id"], extra, seqs)


async def track_frequency(track: MediaStreamTrack, seconds: float = 0.3,
                          skip: float = 0.1) -> float:
    """Read ``skip`` + ``seconds`` of audio and return its dominant frequency."""
    samples: list[float] = []
    rate = 48000
    while len(samples) < int((skip + seconds) * rate):
        frame: Any = await asyncio.wait_for(track.recv(), TIMEOUT)
        rate = frame.sample_rate
        samples += mono_samples(frame)
    return dominant_frequency(samples[-int(seconds * rate):][:4800], rate)


def mp3_frequency(data: bytes) -> tuple[float, int]:
    """Decode MP3 bytes with PyAV: (dominant frequency of the last 0.1 s, sample rate)."""
    container: Any = av.open(io.BytesIO(data), format="mp3")
    samples: list[float] = []
    rate = 0
    channels = 0
    for frame in container.decode(audio=0):
        rate = frame.sample_rate
        channels = len(frame.layout.channels)
        samples += mono_samples(frame)
    container.close()
    assert channels == 2, f"expected stereo MP3, got {channels} channels"
    return dominant_frequency(samples[-rate // 10:], rate), rate


async def read_mp3(http: aiohttp.ClientSession, url: str, size: int) -> tuple[bytes, Any]:
    """GET an MP3 stream and read ``size`` bytes of it."""
    async with http.get(url) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"] == "audio/mpeg"
        data = await asyncio.wait_for(resp.content.readexactly(size), TIMEOUT)
        return data, resp.headers


async def eventually(hub: Hub, condition: Callable[[], bool], timeout: float = TIMEOUT
                     ) -> None:
    """Wait until ``condition()`` holds: re-checked whenever the hub reports a change
    (an owned task ended, a connection went, the media plane moved)."""
    try:
        await hub.changes.wait_for(condition, timeout)
    except TimeoutError:
        raise AssertionError(f"condition not reached within {timeout}s") from None
