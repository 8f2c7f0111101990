"""Recording a call that really flows between aiortc peers, through the SFU's Uplinks.

An aiortc sender publishes a moving picture (VP8 or H.264) and a 440 Hz tone to
a server-side peer whose tracks are tapped by :class:`Uplink` as the SFU does.
The recording starts mid-stream, so the video track must get its first key
frame by asking the real sender for one (a PLI through the adapter). Then the
files are read back: the right codecs, no decode errors, the tone still at 440
Hz, and each file as long as the manifest's offsets say.
"""

from __future__ import annotations

import asyncio
import fractions
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import av
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, VideoStreamTrack
from aiortc.rtp import RtpPacket

from rtchub.media import aiortc_adapter as adapter
from rtchub.media.fanout import ForwardingStats, Uplink
from rtchub.media.recording import RecordingState, RoomRecording
from tests.media.recsupport import picture, probe
from tests.media.test_recording_room import span
from tests.voice.audio import ToneTrack, dominant_frequency, mono_samples

TIMEOUT = 20.0


class MovingPicture(VideoStreamTrack):
    """A moving gradient at 30 fps, paced by aiortc's own clock."""

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = picture(pts // 3000, 320, 240)
        frame.pts = pts
        frame.time_base = fractions.Fraction(time_base)
        return frame


class Waiter:
    """Wakes waiting conditions whenever something is poked."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def poke(self, *_: object) -> None:
        for condition, future in list(self._waiting):
            if not future.done() and condition():
                future.set_result(None)

    async def until(self, condition: Callable[[], bool]) -> None:
        if condition():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (condition, future)
        self._waiting.append(entry)
        try:
            await asyncio.wait_for(future, TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"not reached within {TIMEOUT}s") from None
        finally:
            self._waiting.remove(entry)


class Call:
    """A sender peer and the server's peer, with an Uplink per received track."""

    def __init__(self) -> None:
        self.pcs: list[RTCPeerConnection] = []
        self.tracks: list[Any] = []
        self.uplinks: dict[str, Uplink] = {}
        self.waiter = Waiter()

    async def connect(self, video_codec: str) -> None:
        sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        server = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs += [sender, server]
        video, audio = MovingPicture(), ToneTrack(440)
        self.tracks += [video, audio]
        transceiver = sender.addTransceiver(video, direction="sendonly")
        caps = RTCRtpSender.getCapabilities("video")
        transceiver.setCodecPreferences([c for c in caps.codecs if c.mimeType == video_codec])
        sender.addTransceiver(audio, direction="sendonly")
        adapter.configure_ice(sender, ["127.0.0.1"], None)
        await sender.setLocalDescription(await sender.createOffer())
        await server.setRemoteDescription(sender.localDescription)
        stats = ForwardingStats()
        for received in server.getTransceivers():
            uplink = Uplink(received.receiver, stats)
            uplink.listen(0, self.waiter.poke)
            self.uplinks[received.kind] = uplink
        adapter.configure_ice(server, ["127.0.0.1"], None)
        await server.setLocalDescription(await server.createAnswer())
        await sender.setRemoteDescription(server.localDescription)

    async def close(self) -> None:
        for uplink in self.uplinks.values():
            uplink.close()
        for track in self.tracks:
            track.stop()
        for pc in self.pcs:
            await pc.close()


@pytest.fixture
async def call() -> AsyncIterator[Call]:
    c = Call()
    yield c
    await c.close()


@pytest.mark.parametrize("codec", ["video/VP8", "video/H264"])
async def test_a_call_between_real_peers_is_recorded(tmp_path: Path, call: Call,
                                                     codec: str) -> None:
    await adapter.check_assumptions()
    await call.connect(codec)
    packets: dict[str, int] = {"video": 0, "audio": 0}
    for kind, uplink in call.uplinks.items():
        def count(_: RtpPacket, kind: str = kind) -> None:
            packets[kind] += 1
        uplink.listen(1, count)
    await call.waiter.until(lambda: packets["video"] >= 30 and packets["audio"] >= 25)

    rec = RoomRecording("call", tmp_path, on_change=call.waiter.poke)
    rec.add_track("cam", participant="pat", codec=codec, source=call.uplinks["video"])
    rec.add_track("mic", participant="pat", codec="audio/opus", source=call.uplinks["audio"])
    await rec.start()  # mid-stream: the video waits for the key frame it asks for

    def frames(track_id: str) -> int:
        return next(t.frames for t in rec.status().tracks if t.track_id == track_id)

    await call.waiter.until(lambda: frames("cam") >= 60 and frames("mic") >= 100)
    status = await rec.stop()
    assert status.state is RecordingState.STOPPED
    assert status.directory is not None
    cam, mic = status.tracks
    assert cam.keyframe_requests >= 1  # the sender's GOP is long: the key frame was asked for
    assert (cam.width, cam.height) == (320, 240)

    video = probe(status.directory / (cam.file or ""))
    assert video.codec == {"video/VP8": "vp8", "video/H264": "h264"}[codec]
    assert video.errors == []
    assert video.keyframes[0]
    assert video.decoded == len(video.packets) == cam.frames
    audio = probe(status.directory / (mic.file or ""))
    assert audio.codec == "opus" and audio.errors == []
    assert len(audio.packets) == mic.frames

    # the files line up as the manifest says: each as long as its span of the recording,
    # less what had not arrived yet when stop was called (the span ends at the stop, by
    # the clock; a loaded loop delivers the last packets late), never longer
    for entry, result, frame in ((cam, video, 0.1), (mic, audio, 0.03)):
        assert span(entry) - 0.3 <= result.duration <= span(entry) + frame
    # each file starts where its first frame was taken into the recording: the video at
    # a key frame (video.keyframes[0] above), which may come before or after the first
    # audio packet (an H.264 IDR already in flight can beat it by milliseconds)
    assert mic.start_offset is not None and cam.start_offset is not None
    assert 0 <= mic.start_offset < 5.0 and 0 <= cam.start_offset < 5.0

    with av.open(str(status.directory / (mic.file or ""))) as container:
        samples = [s for frame in container.decode(audio=0) for s in mono_samples(frame)]
    assert dominant_frequency(samples[48000 // 2:48000], 48000) == pytest.approx(440, abs=10)
