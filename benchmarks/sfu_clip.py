"""The single-layer publisher of :mod:`benchmarks.sfu_forwarding`: a pre-encoded VP8 clip.

The clip looks like a webcam to an encoder (a scrolling grainy ramp and a moving
textured block, about 1 Mbit/s of 640x360 at 30 fps, a keyframe every 2 s) and is
encoded once, before the run; :class:`ClipTrack` hands its frames to aiortc, which
only packetizes them, paced like a camera.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from typing import Any

import av
from aiortc import MediaStreamTrack
from tests.media.simulcast_publisher import encode_clip

__all__ = ["ClipTrack", "clip_rate", "encode_clip"]


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
