"""CPU cost of recording a track, and what a file write costs where it runs.

Run by hand (pin it to one core; say what the machine's load was)::

    uptime; taskset -c 1 .venv/bin/python benchmarks/recording.py --seconds 30
    taskset -c 1 .venv/bin/python benchmarks/recording.py --realtime 20 --seconds 20

Part 1, per track: a few seconds of real encoded media (aiortc's VP8 and H.264
encoders on noise at their top bitrates, libvpx-vp9, aiortc's Opus) are
packetized once, repeated to ``--seconds`` with continuing sequence numbers and
timestamps, and fed as fast as possible through a :class:`RoomRecording` (fake
clock) to a file in a temporary directory. Process CPU time (the loop and the
file thread) per second of media is the share of a core one recorded track
costs; the loop's own time per packet is reported with its tail.

Part 2, where the write runs: the same frames muxed straight on the calling
thread (what the event loop would pay per frame if files were written on it),
and the cost of opening and closing a file.

Part 3 (``--realtime N``): N tracks (half VP8 video, half Opus) paced in real
time for ``--seconds``; reports process CPU and how late the loop's 10 ms ticks
ran (the event loop's responsiveness while recording).
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RtpPacket

from rtchub.media.recording import RoomRecording
from rtchub.media.recording.codecs import recorded_codec
from rtchub.media.recording.files import TimedFrame, TrackFile
from rtchub.media.recording.payloads import parse_vp8
from rtchub.media.recording.pictures import vp8_size


@dataclass
class Profile:
    """One kind of track: its codec, its packets (time, packet) and its frame rate."""

    name: str
    mime_type: str
    packets: list[tuple[float, RtpPacket]]
    frames: int
    seconds: float

    @property
    def kbps(self) -> float:
        return sum(len(p.payload) for _, p in self.packets) * 8 / self.seconds / 1000


class _Scene:
    """A noise texture scrolling two pixels a frame: a camera pan the encoders predict,
    which puts them at the top of their usual WebRTC bitrates (not noise's tens of Mb/s)."""

    def __init__(self, width: int, height: int, rnd: random.Random) -> None:
        self.width, self.height = width, height
        self._planes = [rnd.randbytes(width * height), rnd.randbytes(width * height // 4),
                        rnd.randbytes(width * height // 4)]

    def frame(self, index: int) -> av.VideoFrame:
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for plane, data, div in zip(frame.planes, self._planes, (1, 2, 2), strict=True):
            shift = (index * 2 // div) * (self.width // div) % len(data)
            plane.update(data[shift:] + data[:shift])
        return frame


def _vp9_payloads(codec: Any, frame: av.VideoFrame, picture_id: int) -> list[bytes]:
    data = b"".join(bytes(p) for p in codec.encode(frame))
    key = (data[0] & 0x04) == 0
    chunks = [data[i:i + 1200] for i in range(0, len(data), 1200)]
    out = []
    for i, chunk in enumerate(chunks):
        first = 0x80 | (0 if key else 0x40) | (0x08 if i == 0 else 0) | (
            0x04 if i == len(chunks) - 1 else 0)
        out.append(bytes([first, 0x80 | (picture_id >> 8), picture_id & 0xFF]) + chunk)
    return out


def video_profile(name: str, width: int, height: int, seconds: float,
                  unique: int = 60) -> Profile:
    """``unique`` frames encoded once, repeated to ``seconds`` at 30 fps."""
    scene = _Scene(width, height, random.Random(3))
    encoded: list[list[bytes]] = []
    if name == "VP9":
        codec: Any = av.CodecContext.create("libvpx-vp9", "w")
        codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
        codec.time_base = fractions.Fraction(1, 90000)
        codec.bit_rate = 1_500_000
        codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    else:
        encoder: Any = Vp8Encoder() if name == "VP8" else H264Encoder()
        encoder.target_bitrate = 10**9  # clamped to the encoder's own ceiling
    for index in range(unique):
        frame = scene.frame(index)
        frame.pts = index * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        if name == "VP9":
            encoded.append(_vp9_payloads(codec, frame, index))
        else:
            encoded.append(encoder.encode(frame)[0])
    packets: list[tuple[float, RtpPacket]] = []
    seq = 0
    frames = int(seconds * 30)
    for index in range(frames):
        payloads = encoded[index % unique]
        for i, payload in enumerate(payloads):
            packets.append((index / 30, RtpPacket(
                payload_type=96, marker=int(i == len(payloads) - 1), sequence_number=seq & 0xFFFF,
                timestamp=(index * 3000) & 0xFFFFFFFF, ssrc=1, payload=payload)))
            seq += 1
    return Profile(f"{name} {width}x{height}", f"video/{name}", packets, frames, seconds)


def opus_profile(seconds: float) -> Profile:
    encoder = OpusEncoder()
    payloads: list[bytes] = []
    rnd = random.Random(4)
    for index in range(50):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(rnd.randbytes(960 * 4))
        frame.sample_rate = 48000
        frame.pts = index * 960
        frame.time_base = fractions.Fraction(1, 48000)
        payloads += encoder.encode(frame)[0]
    frames = int(seconds * 50)
    packets = [(i / 50, RtpPacket(payload_type=111, sequence_number=i & 0xFFFF,
                                  timestamp=(i * 960) & 0xFFFFFFFF, ssrc=2,
                                  payload=payloads[i % len(payloads)])) for i in range(frames)]
    return Profile("Opus 20 ms", "audio/opus", packets, frames, seconds)


class Source:
    """A packet source for one track."""

    def __init__(self) -> None:
        self.listener: Callable[[RtpPacket], None] | None = None

    def listen(self, key: int, listener: Callable[[RtpPacket], None]) -> None:
        self.listener = listener

    def unlisten(self, key: int) -> None:
        self.listener = None

    async def request_keyframe(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def per_track(profile: Profile, directory: Path) -> None:
    clock = Clock()
    rec = RoomRecording("bench", directory, clock=clock)
    source = Source()
    rec.add_track("t", participant="p", codec=profile.mime_type, source=source)
    await rec.start()
    listener = source.listener
    assert listener is not None
    loop_times: list[float] = []
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for at, packet in profile.packets:
        clock.now = at
        started = time.perf_counter()
        listener(packet)
        loop_times.append(time.perf_counter() - started)
        if len(loop_times) % 64 == 0:
            await asyncio.sleep(0)
    clock.now = profile.seconds
    status = await rec.stop()
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    entry = status.tracks[0]
    assert entry.frames == profile.frames, (entry.frames, profile.frames)
    packets = len(profile.packets)
    print(f"{profile.name:<18} {profile.kbps:7.0f} kb/s {packets / profile.seconds:6.0f} pkt/s "
          f"| CPU {cpu / profile.seconds * 100:5.2f}% of a core per track "
          f"({cpu / packets * 1e6:5.1f} us/packet, {cpu / profile.frames * 1e6:6.1f} us/frame) "
          f"| loop per packet p50 {pct(loop_times, 0.5) * 1e6:4.1f} "
          f"p99 {pct(loop_times, 0.99) * 1e6:5.1f} max {max(loop_times) * 1e6:7.1f} us "
          f"| {wall:.2f} s wall")


def on_the_loop(profile: Profile, directory: Path) -> None:
    """Mux the profile's frames on this thread: what each write would cost the loop."""
    frames: list[bytes] = []
    parts: list[bytes] = []
    for _, packet in profile.packets:
        parts.append(parse_vp8(packet.payload).data)
        if packet.marker:
            frames.append(b"".join(parts))
            parts = []
    size = vp8_size(frames[0])
    assert size is not None
    codec = recorded_codec(profile.mime_type)
    from rtchub.media.recording.files import StreamInfo
    opens, closes, writes = [], [], []
    for round_ in range(5):
        file = TrackFile(directory / f"loop-{round_}.webm")
        started = time.perf_counter()
        file.open(StreamInfo(codec, *size))
        opens.append(time.perf_counter() - started)
        for index, data in enumerate(frames):
            started = time.perf_counter()
            file.write(TimedFrame(data, index * 33, 0, index == 0))
            writes.append(time.perf_counter() - started)
        started = time.perf_counter()
        file.close()
        closes.append(time.perf_counter() - started)
    print(f"{profile.name} muxed on the calling thread ({len(writes)} frames): "
          f"write p50 {pct(writes, 0.5) * 1e6:.0f} p99 {pct(writes, 0.99) * 1e6:.0f} "
          f"max {max(writes) * 1e6:.0f} us; open median "
          f"{statistics.median(opens) * 1e3:.2f} ms; close median "
          f"{statistics.median(closes) * 1e3:.2f} ms, max {max(closes) * 1e3:.2f} ms")


async def realtime(tracks: int, seconds: float, video: Profile, audio: Profile,
                   directory: Path, record: bool) -> None:
    """Pace ``tracks`` tracks in real time, into a recording or (``record`` False, the
    baseline) into listeners that only count."""
    rec = RoomRecording("live", directory)
    sources = []
    counted = 0

    def count(_: RtpPacket) -> None:
        nonlocal counted
        counted += 1

    for i in range(tracks):
        profile = video if i % 2 == 0 else audio
        source = Source()
        if record:
            rec.add_track(f"t{i}", participant=f"p{i // 2}", codec=profile.mime_type,
                          source=source)
        else:
            source.listen(0, count)
        sources.append((source, profile))
    if record:
        await rec.start()
    loop = asyncio.get_running_loop()
    start = loop.time()
    positions = [0] * tracks
    late: list[float] = []
    cpu0 = time.process_time()
    tick = 0.01
    next_at = start
    while next_at - start < seconds:
        await asyncio.sleep(max(0.0, next_at - loop.time()))
        late.append(loop.time() - next_at)
        elapsed = next_at - start
        for index, (source, profile) in enumerate(sources):
            packets = profile.packets
            listener = source.listener
            assert listener is not None
            while positions[index] < len(packets) and packets[positions[index]][0] <= elapsed:
                listener(packets[positions[index]][1])
                positions[index] += 1
        next_at += tick
    frames = 0
    if record:
        status = await rec.stop()
        frames = sum(t.frames for t in status.tracks)
    cpu = time.process_time() - cpu0
    what = f"recorded ({frames} frames written)" if record else "not recorded (baseline)"
    print(f"{tracks} tracks paced in real time for {seconds:.0f} s, {what}: process CPU "
          f"{cpu / seconds * 100:.1f}% of a core; loop tick lateness p50 "
          f"{pct(late, 0.5) * 1e3:.2f} p99 {pct(late, 0.99) * 1e3:.2f} "
          f"max {max(late) * 1e3:.2f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--realtime", type=int, default=0, metavar="TRACKS")
    args = parser.parse_args()
    vp8 = video_profile("VP8", 640, 480, args.seconds)
    audio = opus_profile(args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        if args.realtime:
            for record in (False, True):
                await realtime(args.realtime, args.seconds, vp8, audio, directory, record)
            return
        for profile in (vp8, video_profile("H264", 1280, 720, args.seconds),
                        video_profile("VP9", 640, 480, args.seconds), audio):
            await per_track(profile, directory)
        on_the_loop(vp8, directory)


if __name__ == "__main__":
    asyncio.run(main())
