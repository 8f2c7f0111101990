"""What a container header needs from a key frame: its picture size (and for H.264 its SPS).

Pure readers of codec bitstreams, no decoding: the VP8 key frame header
(RFC 6386 9.1), the VP9 uncompressed header (VP9 bitstream spec 6.2) and the
H.264 sequence parameter set (H.264 7.3.2.1.1), whose sizes need
Exp-Golomb codes, emulation prevention and cropping.
"""

from __future__ import annotations

from typing import Final

from rtchub.media.recording.payloads import h264_nal_types

__all__ = ["h264_is_keyframe", "h264_size", "vp8_is_keyframe", "vp8_size", "vp9_is_keyframe",
           "vp9_size"]

_VP8_START: Final = b"\x9d\x01\x2a"
_VP9_SYNC: Final = 0x498342
_VP9_CS_RGB: Final = 7
_H264_IDR: Final = 5
_H264_SPS: Final = 7
_H264_PPS: Final = 8
# profile_idc values whose SPS carries chroma format and bit depths (H.264 7.3.2.1.1)
_H264_HIGH_PROFILES: Final = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139,
                                        134, 135})

Size = tuple[int, int]


class _Bits:
    """An MSB-first bit reader over bytes; reading past the end raises ValueError."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def u(self, count: int) -> int:
        value = 0
        for _ in range(count):
            byte = self._pos >> 3
            if byte >= len(self._data):
                raise ValueError("bitstream ends early")
            value = (value << 1) | ((self._data[byte] >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while not self.u(1):
            zeros += 1
            if zeros > 31:
                raise ValueError("Exp-Golomb code too long")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)


# -- VP8 -------------------------------------------------------------------------------


def vp8_is_keyframe(frame: bytes) -> bool:
    """A VP8 frame whose tag says key frame and whose start code follows."""
    return len(frame) >= 10 and not frame[0] & 0x01 and frame[3:6] == _VP8_START


def vp8_size(frame: bytes) -> Size | None:
    """Width and height of a VP8 key frame, None for any other frame."""
    if not vp8_is_keyframe(frame):
        return None
    width = int.from_bytes(frame[6:8], "little") & 0x3FFF
    height = int.from_bytes(frame[8:10], "little") & 0x3FFF
    return (width, height) if width and height else None


# -- VP9 -------------------------------------------------------------------------------


def _vp9_first_frame(frame: bytes) -> bytes:
    """The first frame of a superframe (Annex B of the VP9 spec), or ``frame`` itself."""
    if not frame:
        return frame
    marker = frame[-1]
    if marker & 0xE0 != 0xC0:
        return frame
    count = (marker & 0x07) + 1
    width = ((marker >> 3) & 0x03) + 1
    index = 2 + width * count
    if len(frame) < index or frame[-index] != marker:
        return frame
    first = int.from_bytes(frame[-index + 1:-index + 1 + width], "little")
    return frame[:first]


def vp9_size(frame: bytes) -> Size | None:
    """Width and height from a VP9 key frame's uncompressed header, None otherwise."""
    bits = _Bits(_vp9_first_frame(frame))
    try:
        if bits.u(2) != 2:  # frame_marker
            return None
        profile = bits.u(1) | (bits.u(1) << 1)
        if profile == 3:
            bits.u(1)  # reserved_zero
        if bits.u(1):  # show_existing_frame
            return None
        if bits.u(1):  # frame_type: 0 is KEY_FRAME
            return None
        bits.u(2)  # show_frame, error_resilient_mode
        if bits.u(24) != _VP9_SYNC:
            return None
        if profile >= 2:
            bits.u(1)  # ten_or_twelve_bit
        if bits.u(3) != _VP9_CS_RGB:  # color_space
            bits.u(1)  # color_range
            if profile in (1, 3):
                bits.u(3)  # subsampling_x, subsampling_y, reserved_zero
        elif profile in (1, 3):
            bits.u(1)  # reserved_zero
        return bits.u(16) + 1, bits.u(16) + 1
    except ValueError:
        return None


def vp9_is_keyframe(frame: bytes) -> bool:
    """A VP9 frame whose uncompressed header says key frame."""
    return vp9_size(frame) is not None


# -- H.264 -----------------------------------------------------------------------------


def h264_is_keyframe(access_unit: bytes) -> bool:
    """An Annex B access unit holding an IDR picture."""
    return _H264_IDR in h264_nal_types(access_unit)


def _unescape(nal: bytes) -> bytes:
    """RBSP bytes of a NAL unit: every 00 00 03 loses its emulation prevention 03."""
    if b"\x00\x00\x03" not in nal:
        return nal
    out = bytearray()
    zeros = 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _nal_units(access_unit: bytes) -> list[bytes]:
    units: list[bytes] = []
    at = access_unit.find(b"\x00\x00\x01")
    while at != -1:
        start = at + 3
        at = access_unit.find(b"\x00\x00\x01", start)
        end = len(access_unit) if at == -1 else at
        unit = access_unit[start:end].rstrip(b"\x00") if at != -1 else access_unit[start:end]
        if unit:
            units.append(unit)
    return units


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = following = 8
    for _ in range(size):
        if following:
            following = (last + bits.se() + 256) % 256
        last = following or last


def _sps_size(sps: bytes) -> Size | None:
    bits = _Bits(_unescape(sps[1:]))  # after the NAL unit header
    try:
        profile = bits.u(8)
        bits.u(16)  # constraint flags, level_idc
        bits.ue()  # seq_parameter_set_id
        chroma = 1
        separate_planes = 0
        if profile in _H264_HIGH_PROFILES:
            chroma = bits.ue()
            if chroma == 3:
                separate_planes = bits.u(1)
            bits.ue()  # bit_depth_luma_minus8
            bits.ue()  # bit_depth_chroma_minus8
            bits.u(1)  # qpprime_y_zero_transform_bypass_flag
            if bits.u(1):  # seq_scaling_matrix_present_flag
                for i in range(8 if chroma != 3 else 12):
                    if bits.u(1):
                        _skip_scaling_list(bits, 16 if i < 6 else 64)
        bits.ue()  # log2_max_frame_num_minus4
        poc_type = bits.ue()
        if poc_type == 0:
            bits.ue()  # log2_max_pic_order_cnt_lsb_minus4
        elif poc_type == 1:
            bits.u(1)  # delta_pic_order_always_zero_flag
            bits.se()  # offset_for_non_ref_pic
            bits.se()  # offset_for_top_to_bottom_field
            for _ in range(bits.ue()):
                bits.se()  # offset_for_ref_frame
        bits.ue()  # max_num_ref_frames
        bits.u(1)  # gaps_in_frame_num_value_allowed_flag
        width_mbs = bits.ue() + 1
        height_units = bits.ue() + 1
        frame_mbs_only = bits.u(1)
        if not frame_mbs_only:
            bits.u(1)  # mb_adaptive_frame_field_flag
        bits.u(1)  # direct_8x8_inference_flag
        crop = (0, 0, 0, 0)
        if bits.u(1):  # frame_cropping_flag
            crop = (bits.ue(), bits.ue(), bits.ue(), bits.ue())
    except ValueError:
        return None
    fields = 2 - frame_mbs_only
    if chroma == 0 or separate_planes:
        unit_x, unit_y = 1, fields
    else:
        unit_x = 1 if chroma == 3 else 2
        unit_y = (2 if chroma == 1 else 1) * fields
    left, right, top, bottom = crop
    width = width_mbs * 16 - unit_x * (left + right)
    height = fields * height_units * 16 - unit_y * (top + bottom)
    return (width, height) if width > 0 and height > 0 else None


def h264_size(access_unit: bytes) -> Size | None:
    """Picture size from the SPS of an Annex B access unit that also has a PPS and an IDR.

    None when the access unit cannot start a file on its own (no SPS, no PPS or
    no IDR picture, or an SPS this reader cannot follow).
    """
    sps: bytes | None = None
    has_pps = has_idr = False
    for unit in _nal_units(access_unit):
        kind = unit[0] & 0x1F
        if kind == _H264_SPS and sps is None:
            sps = unit
        has_pps = has_pps or kind == _H264_PPS
        has_idr = has_idr or kind == _H264_IDR
    if sps is None or not has_pps or not has_idr:
        return None
    return _sps_size(sps)
