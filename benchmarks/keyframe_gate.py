"""Per-packet cost of keyframe detection and gating, on aiortc's own VP8 and H.264 packets.

Run by hand::

    .venv/bin/python benchmarks/keyframe_gate.py --packets 200000

It encodes a few noise frames with aiortc's encoders, then times, per packet:
the detector on every packet (what a shut gate pays), and ``KeyframeGate.admit``
once the gate is open (what every forwarded video packet pays), next to
``Rewriter.translate`` for scale.
"""

from __future__ import annotations

import argparse
import fractions
import random
import time
from collections.abc import Callable

import av
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder

from rtchub.media.forwarding import Rewriter
from rtchub.media.keyframes import KeyframeGate, detector


def payloads(encoder: Vp8Encoder | H264Encoder, frames: int = 10) -> list[bytes]:
    """The RTP payloads of ``frames`` noise frames, the first a keyframe."""
    out: list[bytes] = []
    noise = random.Random(1)
    for index in range(frames):
        frame = av.VideoFrame(320, 240, "yuv420p")
        for plane in frame.planes:
            plane.update(noise.randbytes(plane.buffer_size))
        frame.pts = index * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        out.extend(encoder.encode(frame, force_keyframe=index == 0)[0])
    return out


def per_packet(label: str, packets: int, step: Callable[[int], object]) -> None:
    started = time.perf_counter()
    for i in range(packets):
        step(i)
    took = time.perf_counter() - started
    print(f"{label:<34} {took / packets * 1e9:8.0f} ns/packet  "
          f"{packets / took / 1e6:6.2f} M packets/s")


def bench_codec(codec: str, encoder: Vp8Encoder | H264Encoder, n: int) -> None:
    """Detection on every packet, then admission through an open gate."""
    sample = payloads(encoder)
    detect = detector(codec)
    assert detect is not None
    size = len(sample)
    per_packet(f"{codec} detect (shut gate)", n, lambda i: detect(sample[i % size]))
    gate = KeyframeGate.for_codec(codec)
    assert gate is not None and gate.admit(1, 0, 0, sample[0])
    per_packet(f"{codec} admit (open gate)", n,
               lambda i: gate.admit(1, i & 0xFFFF, i * 3000, sample[i % size]))


def main() -> None:
    """Time detection, the open gate and the rewriter."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packets", type=int, default=200_000)
    args = parser.parse_args()
    n = args.packets
    per_packet("loop overhead (empty step)", n, lambda i: None)
    bench_codec("video/VP8", Vp8Encoder(), n)
    bench_codec("video/H264", H264Encoder(), n)
    rewriter = Rewriter(90000, 0, 0)
    per_packet("Rewriter.translate (for scale)", n,
               lambda i: rewriter.translate(1, i & 0xFFFF, i * 3000, i))


if __name__ == "__main__":
    main()
