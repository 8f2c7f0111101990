"""RTP on raw bytes: header fields, header extensions, retransmissions (pure, no I/O).

The SFU never builds aiortc ``RtpPacket`` objects: parsing one costs more than
everything else a forwarded packet needs. These functions read and write the
fields the SFU touches straight from and into ``bytes`` (RFC 3550 header,
RFC 8285 one- and two-byte header extensions, RFC 4588 retransmission, RFC 6464
audio level, the abs-send-time extension REMB estimators read).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ABS_SEND_TIME_URI",
    "AUDIO_LEVEL_URI",
    "MID_URI",
    "RID_URI",
    "RRID_URI",
    "ExtensionWriter",
    "MalformedPacket",
    "RtpHeader",
    "abs_send_time",
    "audio_level",
    "find_extension",
    "rtx_wrap",
]

MID_URI: Final = "urn:ietf:params:rtp-hdrext:sdes:mid"
RID_URI: Final = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
RRID_URI: Final = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
AUDIO_LEVEL_URI: Final = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
ABS_SEND_TIME_URI: Final = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"

FIXED: Final = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, sequence, timestamp, SSRC
_EXT_HEAD: Final = struct.Struct("!HH")  # profile, length in 32-bit words
_ONE_BYTE: Final = 0xBEDE
_TWO_BYTE_MASK: Final = 0xFFF0
_TWO_BYTE: Final = 0x1000


class MalformedPacket(ValueError):
    """Bytes that are not a well-formed RTP packet."""


@dataclass(frozen=True, slots=True)
class RtpHeader:
    """Where the parts of one RTP packet are: fields, extension block and payload."""

    marker: bool
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    ext_profile: int  # 0 without extensions
    ext_start: int  # first byte of the extension elements
    ext_end: int
    payload_start: int
    payload_end: int  # before any padding

    @classmethod
    def parse(cls, data: bytes) -> RtpHeader:
        """Locate the parts of ``data``; raise :class:`MalformedPacket` if they do not fit."""
        size = len(data)
        if size < 12:
            raise MalformedPacket(f"an RTP packet has at least 12 bytes, got {size}")
        first, second, seq, timestamp, ssrc = FIXED.unpack_from(data)
        if first >> 6 != 2:
            raise MalformedPacket(f"RTP version must be 2, got {first >> 6}")
        start = 12 + 4 * (first & 0x0F)
        profile = ext_start = ext_end = 0
        if first & 0x10:
            if size < start + 4:
                raise MalformedPacket("truncated header extension")
            profile, words = _EXT_HEAD.unpack_from(data, start)
            ext_start = start + 4
            ext_end = start = ext_start + 4 * words
        end = size
        if first & 0x20:
            end -= data[-1]
        if start > end:
            raise MalformedPacket(f"header of {start} bytes and padding exceed {size} bytes")
        return cls(bool(second & 0x80), second & 0x7F, seq, timestamp, ssrc, profile,
                   ext_start, ext_end, start, end)


def find_extension(data: bytes, profile: int, start: int, end: int,
                   ext_id: int) -> bytes | None:
    """The value of header extension ``ext_id`` in ``data[start:end]`` (RFC 8285)."""
    if profile == _ONE_BYTE:
        i = start
        while i < end:
            byte = data[i]
            if byte == 0:  # padding
                i += 1
                continue
            element, length = byte >> 4, (byte & 0x0F) + 1
            if element == 15:  # reserved: stop
                return None
            if element == ext_id:
                return data[i + 1:i + 1 + length] if i + 1 + length <= end else None
            i += 1 + length
        return None
    if profile & _TWO_BYTE_MASK == _TWO_BYTE:
        i = start
        while i + 1 < end:
            element = data[i]
            if element == 0:
                i += 1
                continue
            length = data[i + 1]
            if element == ext_id:
                return data[i + 2:i + 2 + length] if i + 2 + length <= end else None
            i += 2 + length
    return None


def audio_level(value: bytes) -> tuple[int, bool]:
    """RFC 6464: the level in -dBov (0 loudest, 127 silence) and the voice-activity flag."""
    if not value:
        raise MalformedPacket("an audio level extension has one byte")
    return value[0] & 0x7F, bool(value[0] & 0x80)


def abs_send_time(seconds: float) -> int:
    """The 24-bit 6.18 fixed-point abs-send-time of a wall-clock time in seconds."""
    return int(seconds * 262144) & 0xFFFFFF


class ExtensionWriter:
    """The one-byte header extension block one receiver negotiated (RFC 8285).

    ``mid`` goes in every packet when its id is given (receivers then demux by
    MID as well as by SSRC); abs-send-time, which REMB estimators need, is
    written per packet. The block is laid out as :attr:`prefix` (the block's
    head, the MID element, padding, the abs-send-time element's byte) followed
    by the three bytes of the time: the time is last, right before the payload,
    so the time and payload of one incoming packet can be shared by every
    receiver's copy (RFC 8285 4.2 lets padding sit between elements).
    """

    __slots__ = ("has_time", "prefix")

    def __init__(self, mid_id: int | None = None, mid: str | None = None,
                 abs_send_time_id: int | None = None) -> None:
        elements = b""
        if mid_id is not None and mid:
            value = mid.encode()
            if not 1 <= mid_id <= 14 or not 1 <= len(value) <= 16:
                raise ValueError(f"MID {mid!r} with id {mid_id} does not fit one byte")
            elements += bytes([(mid_id << 4) | (len(value) - 1)]) + value
        self.has_time = abs_send_time_id is not None
        time_head = b""
        if abs_send_time_id is not None:
            if not 1 <= abs_send_time_id <= 14:
                raise ValueError(f"abs-send-time id {abs_send_time_id} does not fit one byte")
            time_head = bytes([(abs_send_time_id << 4) | 2])
        # padding after the MID, so that the 4 bytes of the time end the block
        elements += b"\x00" * (-len(elements) % 4)
        size = len(elements) + (4 if time_head else 0)
        #: the packet's block is ``prefix`` + 3 bytes of time (``prefix`` alone without time)
        self.prefix = (_EXT_HEAD.pack(_ONE_BYTE, size // 4) + elements + time_head
                       if size else b"")

    @property
    def empty(self) -> bool:
        """True when the receiver negotiated none of the extensions written."""
        return not self.prefix

    def block(self, send_time: int) -> bytes:
        """The extension block with ``send_time`` (24 bits) filled in."""
        if self.has_time:
            return self.prefix + send_time.to_bytes(3, "big")
        return self.prefix


def rtx_wrap(packet: bytes, payload_type: int, seq: int, ssrc: int) -> bytes:
    """RFC 4588 retransmission of ``packet``: the same header and extensions, RTX
    payload type, sequence number and SSRC, and the original sequence number
    before the original payload."""
    header = RtpHeader.parse(packet)
    start = header.payload_start
    first = packet[0] & ~0x20  # no padding in the copy
    out = bytearray(packet[:start])
    FIXED.pack_into(out, 0, first, (packet[1] & 0x80) | payload_type, seq, header.timestamp,
                    ssrc)
    out += header.seq.to_bytes(2, "big")
    out += packet[start:header.payload_end]
    return bytes(out)
