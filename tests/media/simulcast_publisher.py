"""A light simulcast publisher over a real peer connection, sending as Chromium does.

Shared by :mod:`benchmarks.sfu_forwarding` (its generator's simulcast publisher) and
tests/calls/test_adaptive_loss.py (issue 11's loss proof): a browser publishing three
layers costs a Python test process far more than the server it tests, this costs
almost nothing (no encoding while it sends).

aiortc cannot send simulcast, so the publisher is an aiortc peer connection whose
offer is made to look like Chromium's (tests/media/chromium_simulcast_offer.sdp): VP8
only, no ``a=ssrc`` lines, the RID and repaired-RID header extensions and
``a=rid:q|h|f send`` with ``a=simulcast:send q;h;f``. Its own sender stays silent;
once the connection is up, three VP8 clips encoded beforehand (:func:`encode_clip`;
640x360, 320x180 and 160x90 in the benchmark, each starting with a keyframe, so a
keyframe comes in all three at every turn of the clip) are packetized by aiortc's VP8
packetizer (one picture id counter per layer, as each of a browser's encoders has)
and sent on three SSRCs through the connection's SRTP, paced like a camera. The first
packets of each SSRC carry the MID and RID extensions, as a browser's do until the
SSRC is acknowledged; the server learns the layers from them.
"""

from __future__ import annotations

import asyncio
import fractions
import os
import random
import re
import time
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.codecs.vpx import Vp8Encoder

from rtchub.media import aiortc_adapter
from rtchub.media.sfu.rtp import FIXED, RID_URI, RRID_URI

__all__ = ["RIDS", "SilentTrack", "encode_clip", "layer_sizes", "send_layers",
           "simulcast_offer"]

RIDS = ("q", "h", "f")
RID_ID, RRID_ID = 10, 11  # ids aiortc's own offers leave free
TAGGED = 100  # packets of each SSRC that carry MID and RID


def layer_sizes(width: int, height: int, bitrate: int) -> list[tuple[int, int, int]]:
    """(width, height, bits/s) of the q, h and f layers for a top layer of that size and
    rate (a quarter and a half of each side, as browsers scale)."""
    return [(width // 4, height // 4, bitrate // 6), (width // 2, height // 2, bitrate // 3),
            (width, height, bitrate)]


class SilentTrack(MediaStreamTrack):
    """A video track that never yields a frame: the transceiver is there for the SDP and the
    transport, the layers are sent by :func:`send_layers`."""

    kind = "video"

    async def recv(self) -> Any:
        await asyncio.get_running_loop().create_future()  # never


def simulcast_offer(sdp: str) -> tuple[str, int, int]:
    """aiortc's offer for one sendonly video section (VP8 preferred) rewritten as
    Chromium's simulcast offer; also its VP8 payload type and its MID extension id."""
    lines = [line for line in sdp.split("\r\n") if not line.startswith(("a=ssrc:",
                                                                         "a=ssrc-group:"))]
    pt = next(int(m.group(1)) for line in lines
              if (m := re.match(r"a=rtpmap:(\d+) VP8/90000", line)))
    mid_id = next(int(m.group(1)) for line in lines
                  if (m := re.match(r"a=extmap:(\d+) urn:ietf:params:rtp-hdrext:sdes:mid$",
                                    line)))
    last_ext = max(i for i, line in enumerate(lines) if line.startswith("a=extmap:"))
    lines[last_ext + 1:last_ext + 1] = [f"a=extmap:{RID_ID} {RID_URI}",
                                        f"a=extmap:{RRID_ID} {RRID_URI}"]
    end = len(lines) - 1 if lines[-1] == "" else len(lines)
    lines[end:end] = [*(f"a=rid:{rid} send" for rid in RIDS),
                      f"a=simulcast:send {';'.join(RIDS)}"]
    return "\r\n".join(lines), pt, mid_id


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


def _extensions(mid_id: int, mid: str, rid: str) -> bytes:
    body = (bytes([(mid_id << 4) | (len(mid) - 1)]) + mid.encode()
            + bytes([(RID_ID << 4) | (len(rid) - 1)]) + rid.encode())
    body += b"\x00" * (-len(body) % 4)
    return b"\xbe\xde" + (len(body) // 4).to_bytes(2, "big") + body


async def send_layers(wire: aiortc_adapter.SrtpWire, clips: list[list[bytes]], pt: int,
                      mid_id: int, fps: int = 30, mid: str = "0") -> None:
    """Send the clips as simulcast layers (lowest first) of the section ``mid`` until
    cancelled, ``fps`` frames a second (a media clock, like a camera's); a frame whose
    time slot passed while the loop was busy is skipped, not sent late (the clips go on
    in order, so every layer stays decodable)."""
    step = 90000 // fps
    encoders = [Vp8Encoder() for _ in clips]
    ssrcs = [random.randrange(1, 1 << 32) for _ in clips]
    seqs = [random.randrange(1 << 16) for _ in clips]
    heads = [_extensions(mid_id, mid, rid) for rid in RIDS[:len(clips)]]
    counts = [0] * len(clips)
    start = time.monotonic()
    slot = sent = 0
    while True:
        now = time.monotonic()
        slot = max(slot + 1, int((now - start) * fps))
        await asyncio.sleep(max(0.0, start + slot / fps - now))
        for index, clip in enumerate(clips):
            packet = av.Packet(clip[sent % len(clip)])
            packet.pts = slot * step
            packet.time_base = fractions.Fraction(1, 90000)
            payloads, timestamp = encoders[index].pack(packet)
            for j, payload in enumerate(payloads):
                second = (0x80 if j == len(payloads) - 1 else 0) | pt
                seq = seqs[index] = (seqs[index] + 1) & 0xFFFF
                if counts[index] < TAGGED:
                    data = (FIXED.pack(0x90, second, seq, timestamp, ssrcs[index])
                            + heads[index] + payload)
                else:
                    data = FIXED.pack(0x80, second, seq, timestamp, ssrcs[index]) + payload
                counts[index] += 1
                wire.send_rtp(data)
        sent += 1
