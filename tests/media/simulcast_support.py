"""Simulcast packets for the media tests: three VP8 layers from aiortc's encoder.

Each layer is a real ``Vp8Encoder`` at its own size (its own random picture id,
as each of a browser's encodings has), packetized by aiortc; a TL0PICIDX is
added to each descriptor with aiortc's ``VpxPayloadDescriptor`` (aiortc does not
write one, browsers do), and the first packets of each SSRC carry the MID and
RID header extensions (a retransmission: the repaired-RID) as a browser's do.
"""

from __future__ import annotations

import fractions
import random
from dataclasses import dataclass, field

import av
from aiortc.codecs.base import Encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder, VpxPayloadDescriptor
from aiortc.rtp import RtpPacket

from rtchub.media.sfu.rtp import FIXED

__all__ = ["MID_ID", "RIDS", "RID_ID", "RRID_ID", "LayerSource", "with_extensions"]

MID_ID, RID_ID, RRID_ID = 9, 10, 11
RIDS = ("q", "h", "f")
SIZES = ((80, 48), (160, 96), (320, 192))


def with_extensions(packet: bytes, elements: list[tuple[int, bytes]]) -> bytes:
    """``packet`` (no extensions) with a one-byte header extension block (RFC 8285)."""
    first, second, seq, timestamp, ssrc = FIXED.unpack_from(packet)
    body = b"".join(bytes([(ident << 4) | (len(value) - 1)]) + value
                    for ident, value in elements)
    body += b"\x00" * (-len(body) % 4)
    block = b"\xbe\xde" + (len(body) // 4).to_bytes(2, "big") + body
    return FIXED.pack(first | 0x10, second, seq, timestamp, ssrc) + block + packet[12:]


@dataclass
class LayerSource:
    """One simulcast encoding: its encoder, SSRC, sequence numbers and TL0PICIDX
    (``h264``: aiortc's H.264 encoder, payload type 102, no descriptor)."""

    index: int
    ssrc: int
    mid: str = "0"
    tagged: int = 4  # how many first packets carry MID and RID
    h264: bool = False
    encoder: Encoder = field(init=False)
    seq: int = field(default_factory=lambda: random.randrange(1 << 16))
    tl0: int = field(default_factory=lambda: random.randrange(256))
    sent: int = 0

    def __post_init__(self) -> None:
        self.encoder = H264Encoder() if self.h264 else Vp8Encoder()

    def frame(self, number: int, keyframe: bool) -> list[bytes]:
        """The RTP packets of frame ``number`` (timestamps shared by every layer)."""
        width, height = SIZES[self.index]
        picture = av.VideoFrame(width, height, "yuv420p")
        for plane in picture.planes:
            plane.update(bytes([(number * 16 + plane.line_size) % 256]) * plane.buffer_size)
        picture.pts = number * 4500
        picture.time_base = fractions.Fraction(1, 90000)
        payloads, timestamp = self.encoder.encode(picture, force_keyframe=keyframe)
        self.tl0 = (self.tl0 + 1) % 256
        out: list[bytes] = []
        for j, encoded in enumerate(payloads):
            payload = encoded
            if not self.h264:
                descriptor, rest = VpxPayloadDescriptor.parse(encoded)
                descriptor.tl0picidx = self.tl0
                payload = bytes(descriptor) + rest
            packet = bytes(RtpPacket(payload_type=102 if self.h264 else 96,
                                     marker=int(j == len(payloads) - 1),
                                     sequence_number=self.seq, timestamp=timestamp,
                                     ssrc=self.ssrc, payload=payload).serialize())
            self.seq = (self.seq + 1) & 0xFFFF
            if self.sent < self.tagged:
                packet = with_extensions(packet, [(MID_ID, self.mid.encode()),
                                                  (RID_ID, RIDS[self.index].encode())])
            self.sent += 1
            out.append(packet)
        return out
