"""RTP payload formats of the recorded codecs: what one packet says about its frame.

Pure functions of bytes; nothing here does I/O or knows aiortc. Each parser
returns a :class:`Fragment`: the codec bytes the packet carries (its payload
header removed, H.264 NAL units given Annex B start codes) and where the packet
sits in its frame. Formats: VP8 per RFC 7741, VP9 per RFC 9628, H.264 per RFC
6184 in packetization mode 1 (single NAL unit, STAP-A, FU-A), Opus per RFC
7587 (one packet, one frame).

``starts_frame`` means "a frame may begin with this packet": VP8's S bit with
partition 0, VP9's B bit on spatial layer 0, for H.264 a packet whose first NAL
unit may open an access unit (an AUD, SEI, SPS or PPS, or the first slice of a
picture: ``first_mb_in_slice`` 0). ``keyframe`` means the packet starts a
picture a decoder can start from (VP8/VP9 key frames; for H.264 an SPS or the
first slice of an IDR picture).
"""

from __future__ import annotations

from typing import Final, NamedTuple

__all__ = [
    "Fragment",
    "MalformedPayload",
    "h264_nal_types",
    "opus_samples",
    "parse_h264",
    "parse_opus",
    "parse_vp8",
    "parse_vp9",
]

START_CODE: Final = b"\x00\x00\x00\x01"

_H264_SLICE: Final = 1
_H264_IDR: Final = 5
_H264_SEI: Final = 6
_H264_SPS: Final = 7
_H264_PPS: Final = 8
_H264_AUD: Final = 9
_H264_STAP_A: Final = 24
_H264_FU_A: Final = 28
# NAL unit types that may open an access unit besides a first slice (H.264 7.4.1.2.3).
_H264_AU_OPENERS: Final = frozenset({_H264_SEI, _H264_SPS, _H264_PPS, _H264_AUD, 14, 15, 16,
                                     17, 18})

# Opus frame duration in 48 kHz samples per TOC configuration (RFC 6716 3.1).
_OPUS_FRAME: Final = tuple(
    [480, 960, 1920, 2880] * 3  # SILK-only, configs 0-11: 10, 20, 40, 60 ms
    + [480, 960] * 2  # hybrid, configs 12-15: 10, 20 ms
    + [120, 240, 480, 960] * 4  # CELT-only, configs 16-31: 2.5, 5, 10, 20 ms
)


class MalformedPayload(ValueError):
    """A payload that does not follow its RTP payload format."""


class Fragment(NamedTuple):
    """What one RTP packet contributes to a frame."""

    data: bytes
    starts_frame: bool
    keyframe: bool
    ends_frame: bool = False  # the format says so itself (VP9's E bit); else the marker
    skip: bool = False  # carries nothing the recording keeps (a VP9 upper spatial layer)


def parse_vp8(payload: bytes) -> Fragment:
    """Split a VP8 payload descriptor (RFC 7741 4.2) from the VP8 bytes after it."""
    size = len(payload)
    if size < 2:
        raise MalformedPayload(f"VP8 payload of {size} bytes")
    first = payload[0]
    offset = 1
    if first & 0x80:  # X: an extension byte follows
        ext = payload[1]
        offset = 2
        if ext & 0x80:  # I: PictureID, 15 bits when its M bit is set
            if size <= offset:
                raise MalformedPayload("VP8 descriptor truncated in its PictureID")
            offset += 2 if payload[offset] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            offset += 1
        if ext & 0x30:  # T or K: the TID/Y/KEYIDX byte
            offset += 1
    if size <= offset:
        raise MalformedPayload("VP8 payload has a descriptor and no data")
    starts = bool(first & 0x10) and not first & 0x0F  # S=1, partition index 0
    # a key frame's frame tag has its inverse key-frame bit P clear
    keyframe = starts and not payload[offset] & 0x01
    return Fragment(payload[offset:], starts, keyframe)


def parse_vp9(payload: bytes) -> Fragment:
    """Split a VP9 payload descriptor (RFC 9628 4.2) from the VP9 bytes after it.

    Only spatial layer 0 is kept: packets of upper spatial layers come back with
    ``skip`` set (a recording of a scalable stream keeps its base layer).
    """
    size = len(payload)
    if size < 2:
        raise MalformedPayload(f"VP9 payload of {size} bytes")
    first = payload[0]
    predicted = bool(first & 0x40)
    flexible = bool(first & 0x10)
    offset = 1
    if first & 0x80:  # I: PictureID
        offset += 2 if payload[offset] & 0x80 else 1
    spatial = 0
    if first & 0x20:  # L: layer indices, and TL0PICIDX in non-flexible mode
        _need(payload, offset + 1, "layer indices")
        spatial = (payload[offset] >> 1) & 0x07
        offset += 1 if flexible else 2
    if flexible and predicted:  # up to three reference indices, N bit chains them
        for _ in range(3):
            _need(payload, offset + 1, "reference indices")
            more = payload[offset] & 0x01
            offset += 1
            if not more:
                break
    if first & 0x02:  # V: scalability structure
        offset = _skip_vp9_ss(payload, offset)
    if size <= offset:
        raise MalformedPayload("VP9 payload has a descriptor and no data")
    if spatial:
        return Fragment(b"", False, False, skip=True)
    starts = bool(first & 0x08)  # B
    return Fragment(payload[offset:], starts, starts and not predicted,
                    ends_frame=bool(first & 0x04))  # E


def _skip_vp9_ss(payload: bytes, offset: int) -> int:
    _need(payload, offset + 1, "scalability structure")
    ss = payload[offset]
    offset += 1
    layers = (ss >> 5) + 1
    if ss & 0x10:  # Y: a width and height per spatial layer
        offset += 4 * layers
    if ss & 0x08:  # G: picture group description
        _need(payload, offset + 1, "picture group")
        groups = payload[offset]
        offset += 1
        for _ in range(groups):
            _need(payload, offset + 1, "picture group")
            refs = (payload[offset] >> 2) & 0x03
            offset += 1 + refs
    _need(payload, offset, "scalability structure")
    return offset


def _need(payload: bytes, end: int, what: str) -> None:
    if len(payload) < end:
        raise MalformedPayload(f"VP9 descriptor truncated in its {what}")


def _first_slice(nal_body_first: int) -> bool:
    """first_mb_in_slice is 0 when its ue(v) code is the single bit 1."""
    return bool(nal_body_first & 0x80)


def _h264_opens(nal_type: int, body_first: int | None) -> tuple[bool, bool]:
    """(may open an access unit, starts a key picture) for one NAL unit's start."""
    if nal_type in (_H264_SLICE, _H264_IDR):
        first = body_first is not None and _first_slice(body_first)
        return first, first and nal_type == _H264_IDR
    return nal_type in _H264_AU_OPENERS, nal_type == _H264_SPS


def parse_h264(payload: bytes) -> Fragment:
    """Turn an H.264 payload (RFC 6184, packetization mode 1) into Annex B bytes."""
    size = len(payload)
    if size < 2:
        raise MalformedPayload(f"H.264 payload of {size} bytes")
    header = payload[0]
    if header & 0x80:
        raise MalformedPayload("H.264 NAL unit has its forbidden_zero_bit set")
    nal_type = header & 0x1F
    if 1 <= nal_type <= 23:  # a single NAL unit
        starts, key = _h264_opens(nal_type, payload[1])
        return Fragment(START_CODE + payload, starts, key)
    if nal_type == _H264_STAP_A:
        return _parse_stap_a(payload)
    if nal_type == _H264_FU_A:
        if size < 3:
            raise MalformedPayload("H.264 FU-A without data")
        fu = payload[1]
        inner = fu & 0x1F
        if fu & 0x80:  # S: the first fragment rebuilds the NAL unit header
            starts, key = _h264_opens(inner, payload[2])
            return Fragment(START_CODE + bytes([(header & 0xE0) | inner]) + payload[2:],
                            starts, key)
        return Fragment(payload[2:], False, False)
    raise MalformedPayload(f"H.264 packet type {nal_type} is not allowed in packetization "
                           f"mode 1")


def _parse_stap_a(payload: bytes) -> Fragment:
    parts: list[bytes] = []
    starts = False
    key = False
    offset = 1
    size = len(payload)
    while offset < size:
        if offset + 2 > size:
            raise MalformedPayload("H.264 STAP-A length field truncated")
        length = int.from_bytes(payload[offset:offset + 2], "big")
        offset += 2
        end = offset + length
        if length == 0 or end > size:
            raise MalformedPayload("H.264 STAP-A unit overruns the packet")
        unit = payload[offset:end]
        opens, unit_key = _h264_opens(unit[0] & 0x1F, unit[1] if length > 1 else None)
        if not parts:
            starts = opens
        key = key or unit_key
        parts.append(START_CODE)
        parts.append(unit)
        offset = end
    if not parts:
        raise MalformedPayload("H.264 STAP-A carries no NAL unit")
    return Fragment(b"".join(parts), starts, key)


def h264_nal_types(annex_b: bytes) -> list[int]:
    """The NAL unit types of an Annex B access unit, in order."""
    types: list[int] = []
    at = annex_b.find(b"\x00\x00\x01")
    while at != -1 and at + 3 < len(annex_b):
        types.append(annex_b[at + 3] & 0x1F)
        at = annex_b.find(b"\x00\x00\x01", at + 3)
    return types


def parse_opus(payload: bytes) -> Fragment:
    """An Opus payload is one whole frame (RFC 7587)."""
    if not payload:
        raise MalformedPayload("empty Opus payload")
    return Fragment(payload, True, True, ends_frame=True)


def opus_samples(payload: bytes) -> int:
    """The duration of an Opus packet in 48 kHz samples, from its TOC byte (RFC 6716 3.1)."""
    if not payload:
        return 0
    toc = payload[0]
    frames = toc & 0x03
    if frames == 0:
        count = 1
    elif frames in (1, 2):
        count = 2
    else:
        if len(payload) < 2:
            raise MalformedPayload("Opus code 3 packet without its frame count")
        count = payload[1] & 0x3F
    return count * _OPUS_FRAME[toc >> 3]
