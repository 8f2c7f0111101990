"""Media sources light enough for many aiortc participants in one test process.

A call of eight runs the server and eight aiortc clients in one Python process, and
on this machine's two shared cores that process cannot keep up with what the default
sources produce (30 fps video and 20 ms Opus packets: 56 forwarded streams of each,
some 4,800 packets a second to unprotect, parse and jitter-buffer in Python). The
clients then lose most of what the server sends in their own socket buffers (the
kernel's RcvbufErrors), and their NACKs arrive far too late to be answered.

These sources send the same kind of media with fewer packets: :class:`SlowPictureTrack`
a picture that VP8 compresses well (noise, as in ``PictureTrack``, takes all the bitrate
the encoder is given: some 460 kbit/s, five packets a frame) at a chosen frame rate, and
:class:`OpusToneTrack` a tone already encoded by the track, in Opus packets of 60 ms
(RFC 7587 allows up to 120 ms), which aiortc's sender packs as they are. Both pace
themselves on the wall clock, like aiortc's own sources: that is a media clock, not a
test waiting.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from typing import Any

import av
from aiortc import MediaStreamTrack, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError

from tests.voice.audio import RATE, ToneTrack

__all__ = ["OpusToneTrack", "SlowPictureTrack"]

VIDEO_RATE = 90000
SHIFTS = 8  # pictures in one sweep of the ramp


class _Pacer:
    """The next tick of a ``period``-second clock that starts at the first call."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.ticks = 0
        self._start: float | None = None

    async def next(self) -> int:
        """Wait for the next tick; return how many ticks came before it."""
        if self._start is None:
            self._start = time.time()
            return 0
        self.ticks += 1
        await asyncio.sleep(max(0.0, self._start + self.ticks * self.period - time.time()))
        return self.ticks


class SlowPictureTrack(VideoStreamTrack):
    """A grey ramp sliding sideways, ``fps`` frames a second: cheap to encode, so
    every frame fits in one or two packets whatever bitrate the encoder is allowed."""

    def __init__(self, width: int, height: int, seed: int = 0, fps: int = 10) -> None:
        super().__init__()
        self.width = width
        self.height = height
        self._pacer = _Pacer(1 / fps)
        self._step = VIDEO_RATE // fps
        self._seed = seed
        self._planes: dict[int, list[bytes]] = {}

    async def next_timestamp(self) -> tuple[int, fractions.Fraction]:
        if self.readyState != "live":
            raise MediaStreamError
        tick = await self._pacer.next()
        return tick * self._step, fractions.Fraction(1, VIDEO_RATE)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        shift = (pts // self._step) % SHIFTS
        planes = self._planes.get(shift)
        if planes is None:
            planes = []
            for index, plane in enumerate(frame.planes):
                if index == 0:
                    row = bytes((x + 8 * shift + 32 * self._seed) & 0xFF
                                for x in range(plane.line_size))
                else:
                    row = bytes([128]) * plane.line_size
                planes.append(row * plane.height)
            self._planes[shift] = planes
        for plane, data in zip(frame.planes, planes, strict=True):
            plane.update(data)
        frame.pts = pts
        frame.time_base = time_base
        return frame


class OpusToneTrack(MediaStreamTrack):
    """A stereo tone at ``freq`` Hz as Opus packets of ``frame_ms`` ms, paced in real time."""

    kind = "audio"

    def __init__(self, freq: float, frame_ms: int = 60, amplitude: float = 0.5) -> None:
        super().__init__()
        self._samples = RATE * frame_ms // 1000
        self._tone = ToneTrack(freq, amplitude)   # its samples only; never started
        self._pacer = _Pacer(frame_ms / 1000)
        codec = av.CodecContext.create("libopus", "w")
        codec.sample_rate = RATE
        codec.layout = "stereo"
        codec.format = "s16"
        codec.bit_rate = 32000
        codec.time_base = fractions.Fraction(1, RATE)
        codec.options = {"application": "voip", "frame_duration": str(frame_ms)}
        self._codec = codec
        self._made = 0   # samples encoded so far
        self._sent = 0   # packets returned so far

    def stop(self) -> None:
        self._tone.stop()
        super().stop()

    async def recv(self) -> Any:  # an encoded av.Packet, sent as it is
        if self.readyState != "live":
            raise MediaStreamError
        await self._pacer.next()
        while True:   # the encoder holds the first frame back (its look-ahead)
            frame = av.AudioFrame(format="s16", layout="stereo", samples=self._samples)
            frame.planes[0].update(b"".join(
                self._tone.samples(start) for start in
                range(self._made, self._made + self._samples, 960)))
            frame.sample_rate = RATE
            frame.pts = self._made
            frame.time_base = fractions.Fraction(1, RATE)
            self._made += self._samples
            packets = self._codec.encode(frame)
            if packets:
                break
        packet = packets[0]
        packet.pts = self._sent * self._samples
        packet.time_base = fractions.Fraction(1, RATE)
        self._sent += 1
        return packet
