"""The single-layer publisher of :mod:`benchmarks.sfu_forwarding`: a pre-encoded VP8 clip.

The clip looks like a webcam to an encoder (a scrolling grainy ramp and a moving
textured block, about 1 Mbit/s of 640x360 at 30 fps, a keyframe every 2 s) and is
encoded once, before the run; :class:`ClipTrack` hands its frames to aiortc, which
only packetizes them, paced like a camera.
"""

from __future__ import annotations

import asyncio
import fractions
import os
import time
from typing import Any

import av
from aiortc import MediaStreamTrack

__all__ = ["ClipTrack", "clip_rate", "encode_clip"]


def encode_clip(frames: int = 60, width: int = 640, height: int = 360,
                bitrate: int = 1_000_000) -> list[bytes]:
    """A VP8 clip that starts with a keyframe, about ``bitrate`` bits/s at 30 fps: a
    scrolling ramp with grain that changes every frame (a camera's sensor noise) and a
    moving textured block, so an encoder has about a webcam's work to do."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.bit_rate = bitrate
    codec.framerate = fractions.Fraction(30, 1)
    codec.time_base = fractions.Fraction(1, 30)
    codec.gop_size = frames
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0",
                     "maxrate": str(bitrate), "minrate": str(bitrate // 4)}
    grain = os.urandom(16 * 2 * width)
    ramp = [(x % width) * 200 // width for x in range(2 * width)]
    rows = [bytes(v + (grain[k * 2 * width + x] & 0x07) for x, v in enumerate(ramp))
            for k in range(16)]  # 16 grainy ramps, twice as wide to scroll through
    bw, bh = min(160, width // 2), min(120, height // 2)  # the block (160x120 from 320x240)
    texture = os.urandom(bw * bh)
    out: list[bytes] = []
    for i in range(frames):
        frame = av.VideoFrame(width, height, "yuv420p")
        shift = (i * 6) % width
        luma = bytearray(b"".join(rows[(y * 7 + i * 13) % 16][shift:shift + width]
                                  for y in range(height)))
        left, top = (i * 10) % (width - bw), (i * 4) % (height - bh)
        for row in range(bh):
            start = (top + row) * width + left
            luma[start:start + bw] = texture[row * bw:(row + 1) * bw]
        frame.planes[0].update(bytes(luma))
        for plane in frame.planes[1:]:
            plane.update(bytes([100 + i % 50]) * plane.buffer_size)
        frame.pts = i
        out += [bytes(p) for p in codec.encode(frame)]
    out += [bytes(p) for p in codec.encode(None)]
    return out


class ClipTrack(MediaStreamTrack):
    """Sends the clip's frames in a loop at 30 fps; aiortc only packetizes them.

    Paced like a camera: a frame whose time slot passed while the event loop was
    busy is not sent late in a burst; the next frame takes the next slot (the
    clip goes on in order, so the stream stays decodable).
    """

    kind = "video"

    def __init__(self, clip: list[bytes]) -> None:
        super().__init__()
        self._clip = clip
        self._sent = 0
        self._slot = 0
        self._start: float | None = None

    async def recv(self) -> Any:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        self._slot = max(self._slot + 1, int((now - self._start) * 30))
        await asyncio.sleep(max(0.0, self._start + self._slot / 30 - now))
        packet = av.Packet(self._clip[self._sent % len(self._clip)])
        self._sent += 1
        packet.pts = self._slot * 3000
        packet.time_base = fractions.Fraction(1, 90000)
        return packet


def clip_rate(clip: list[bytes]) -> float:
    """Packets per second one publisher of ``clip`` sends (aiortc cuts VP8 frames into
    payloads of at most 1300 bytes, descriptor included)."""
    packets = sum(-(-len(frame) // 1294) for frame in clip)
    return packets * 30 / len(clip)
