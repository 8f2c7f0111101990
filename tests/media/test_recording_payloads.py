"""RTP payload formats and key frame headers, against real encoders and packetizers.

VP8 and H.264 payloads come from aiortc's encoders; the bytes a depacketizer
gives back must equal what aiortc's own depayloaders rebuild. Picture sizes
read from key frame headers must equal what the encoders were given,
including H.264 cropping and scaling matrices and VP9's 4:4:4 profile.
Arbitrary bytes never raise anything but ``MalformedPayload``.
"""

from __future__ import annotations

import contextlib
import fractions
import struct
from typing import Any

import av
import pytest
from aiortc.codecs.h264 import H264Encoder, h264_depayload
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from hypothesis import given
from hypothesis import strategies as st

from rtchub.media.recording.payloads import (
    MalformedPayload,
    opus_samples,
    parse_h264,
    parse_opus,
    parse_vp8,
    parse_vp9,
)
from rtchub.media.recording.pictures import h264_size, vp8_size, vp9_size
from tests.media.recsupport import AudioSender, picture, vp9_packetize


def _frame(index: int, width: int, height: int, fmt: str = "yuv420p") -> av.VideoFrame:
    frame = picture(index, width, height) if fmt == "yuv420p" else av.VideoFrame(
        width, height, fmt)
    if fmt != "yuv420p":
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
    frame.pts = index * 3000
    frame.time_base = fractions.Fraction(1, 90000)
    return frame


def test_vp8_payloads_from_aiortc_depacketize_to_its_own_bytes() -> None:
    encoder = Vp8Encoder()
    for index in range(3):
        payloads, _ = encoder.encode(_frame(index, 640, 480), force_keyframe=index == 2)
        fragments = [parse_vp8(p) for p in payloads]
        assert b"".join(f.data for f in fragments) == b"".join(vp8_depayload(p) for p in payloads)
        assert fragments[0].starts_frame
        assert not any(f.starts_frame for f in fragments[1:])
        assert fragments[0].keyframe == (index in (0, 2))
        assert len(payloads) > 1 or index == 1


@pytest.mark.parametrize(("descriptor", "offset"), [
    (bytes([0x10]), 1),  # no extension
    (bytes([0x90, 0x80, 0x05]), 3),  # X, I with a 7-bit PictureID
    (bytes([0x90, 0x80, 0x81, 0x02]), 4),  # 15-bit PictureID
    (bytes([0x90, 0xF0, 0x81, 0x02, 0x07, 0x40]), 6),  # I, L, T, K
    (bytes([0x90, 0x40, 0x07]), 3),  # L only
])
def test_vp8_descriptor_lengths(descriptor: bytes, offset: int) -> None:
    key_tag = b"\x50\x01\x00\x9d\x01\x2a\xa0\x00\x78\x00"
    fragment = parse_vp8(descriptor + key_tag)
    assert fragment.data == key_tag
    assert fragment.starts_frame and fragment.keyframe
    assert len(descriptor) == offset


def test_vp8_continuation_and_other_partitions_do_not_start_frames() -> None:
    assert not parse_vp8(bytes([0x00, 0x50])).starts_frame  # S=0
    assert not parse_vp8(bytes([0x11, 0x50])).starts_frame  # S=1 but partition 1
    assert parse_vp8(bytes([0x10, 0x51])).starts_frame  # a delta frame start
    assert not parse_vp8(bytes([0x10, 0x51])).keyframe


def test_h264_payloads_from_aiortc_depacketize_to_its_own_bytes() -> None:
    encoder = H264Encoder()
    kinds = set()
    for index in range(4):
        payloads, _ = encoder.encode(_frame(index, 640, 480), force_keyframe=index == 3)
        fragments = [parse_h264(p) for p in payloads]
        assert b"".join(f.data for f in fragments) == b"".join(h264_depayload(p)
                                                               for p in payloads)
        assert fragments[0].starts_frame
        for payload, fragment in zip(payloads, fragments, strict=True):
            if payload[0] & 0x1F == 28 and not payload[1] & 0x80:  # an FU-A continuation
                assert not fragment.starts_frame
        assert any(f.keyframe for f in fragments) == (index in (0, 3))
        kinds |= {p[0] & 0x1F for p in payloads}
    assert {24, 28} <= kinds  # STAP-A and FU-A both seen


def test_h264_access_unit_openers() -> None:
    idr_first = bytes([0x65, 0x88, 0x84])  # IDR, first_mb_in_slice 0
    idr_second = bytes([0x65, 0x40, 0x84])  # IDR, first_mb_in_slice 1
    assert parse_h264(idr_first)[:3] == (b"\x00\x00\x00\x01" + idr_first, True, True)
    assert parse_h264(idr_second)[1:3] == (False, False)
    assert parse_h264(bytes([0x41, 0x9A, 0x00]))[1:3] == (True, False)  # P slice, first MB
    assert parse_h264(bytes([0x09, 0xF0]))[1:3] == (True, False)  # AUD
    assert parse_h264(bytes([0x67, 0x42, 0xC0]))[1:3] == (True, True)  # SPS
    fu_start = bytes([0x7C, 0x85, 0x88, 0x84])  # FU-A, S, IDR, first MB
    assert parse_h264(fu_start)[:3] == (b"\x00\x00\x00\x01\x65\x88\x84", True, True)
    fu_middle = bytes([0x7C, 0x05, 0x11, 0x22])
    assert parse_h264(fu_middle)[:3] == (b"\x11\x22", False, False)
    stap = bytes([0x78]) + struct.pack("!H", 3) + bytes([0x67, 0x42, 0xC0]) + struct.pack(
        "!H", 2) + bytes([0x68, 0xCE])
    assert parse_h264(stap)[:3] == (
        b"\x00\x00\x00\x01\x67\x42\xc0\x00\x00\x00\x01\x68\xce", True, True)


@pytest.mark.parametrize("payload", [
    b"\x65",  # too short
    bytes([0xE5, 0x88]),  # forbidden_zero_bit
    bytes([0x7D, 0x85, 0x88]),  # FU-B (29): not in packetization mode 1
    bytes([0x79, 0x00]),  # STAP-B
    bytes([0x78, 0x00, 0x09, 0x67]),  # STAP-A unit overruns the packet
    bytes([0x78, 0x00]),  # STAP-A length field truncated
    bytes([0x7C, 0x85]),  # FU-A without data
])
def test_h264_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse_h264(payload)


def test_vp9_payloads_depacketize_to_the_encoders_frame() -> None:
    data = bytes(range(256)) * 11
    payloads = vp9_packetize(data, 77, True, (320, 240))
    fragments = [parse_vp9(p) for p in payloads]
    assert b"".join(f.data for f in fragments) == data
    assert fragments[0].starts_frame and fragments[0].keyframe
    assert fragments[-1].ends_frame and not fragments[0].ends_frame
    assert not any(f.starts_frame for f in fragments[1:])
    delta = [parse_vp9(p) for p in vp9_packetize(data[:100], 78, False, (320, 240))]
    assert delta[0].starts_frame and not delta[0].keyframe and delta[0].ends_frame
    upper = [parse_vp9(p) for p in vp9_packetize(data[:100], 78, False, (320, 240), spatial=1)]
    assert all(f.skip for f in upper)
    base = [parse_vp9(p) for p in vp9_packetize(data[:100], 78, True, (320, 240), spatial=0)]
    assert base[0].starts_frame and base[0].keyframe and not base[0].skip


def test_vp9_flexible_mode_and_picture_groups() -> None:
    # I, P, F, B, E with a 7-bit picture id and two reference indices
    flexible = bytes([0x80 | 0x40 | 0x10 | 0x08 | 0x04, 0x05, 0x03, 0x02]) + b"frame"
    assert parse_vp9(flexible) == (b"frame", True, False, True, False)
    # V with Y and G: one layer's size, two picture groups with 1 and 0 references
    ss = bytes([0x08 | 0x04 | 0x02, 0x10 | 0x08]) + struct.pack("!HH", 64, 48) + bytes(
        [2, 0x04, 0x01, 0x00]) + b"key"
    assert parse_vp9(ss).data == b"key"
    with pytest.raises(MalformedPayload):
        parse_vp9(bytes([0x0E, 0x18, 0x00]))  # SS promises a size and stops


def test_opus_durations() -> None:
    sender = AudioSender()
    payload = sender.next().frame
    assert parse_opus(payload) == (payload, True, True, True, False)
    assert opus_samples(payload) == 960  # aiortc sends 20 ms
    assert opus_samples(bytes([16 << 3])) == 120  # CELT 2.5 ms
    assert opus_samples(bytes([(16 << 3) | 1])) == 240  # two frames
    assert opus_samples(bytes([(3 << 3) | 3, 3])) == 3 * 2880  # code 3: three 60 ms frames
    assert opus_samples(bytes([12 << 3])) == 480  # hybrid 10 ms
    with pytest.raises(MalformedPayload):
        parse_opus(b"")


@given(st.binary(max_size=64))
def test_arbitrary_bytes_are_payloads_or_malformed(data: bytes) -> None:
    for parse in (parse_vp8, parse_vp9, parse_h264, parse_opus):
        with contextlib.suppress(MalformedPayload):
            parse(data)
    with contextlib.suppress(MalformedPayload):
        opus_samples(data)
    for size in (vp8_size, vp9_size, h264_size):
        result = size(data)
        assert result is None or min(result) > 0


# -- picture sizes from key frame headers ----------------------------------------------


def _encode(codec_name: str, width: int, height: int, fmt: str = "yuv420p",
            options: dict[str, str] | None = None, **attrs: Any) -> list[bytes]:
    codec: Any = av.CodecContext.create(codec_name, "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = fmt
    codec.time_base = fractions.Fraction(1, 30)
    codec.options = options or {}
    for name, value in attrs.items():
        setattr(codec, name, value)
    frames = []
    for index in range(3):
        frame = _frame(index, width, height, fmt)
        frame.pts = index
        frame.time_base = fractions.Fraction(1, 30)
        frames += [bytes(p) for p in codec.encode(frame)]
    frames += [bytes(p) for p in codec.encode(None)]
    return frames


@pytest.mark.parametrize("size", [(160, 96), (318, 238), (1280, 720)])
def test_vp8_size(size: tuple[int, int]) -> None:
    frames = _encode("libvpx", *size, options={"deadline": "realtime"})
    assert vp8_size(frames[0]) == size
    assert vp8_size(frames[1]) is None  # a delta frame


@pytest.mark.parametrize(("size", "fmt"), [((160, 96), "yuv420p"), ((321, 241), "yuv420p"),
                                          ((200, 120), "yuv444p")])
def test_vp9_size(size: tuple[int, int], fmt: str) -> None:
    frames = _encode("libvpx-vp9", *size, fmt=fmt,
                     options={"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"})
    assert vp9_size(frames[0]) == size
    assert vp9_size(frames[1]) is None


@pytest.mark.parametrize(("size", "options"), [
    ((176, 144), {"profile": "baseline"}),
    ((318, 238), {"profile": "baseline"}),  # cropped to an odd-free size
    ((1280, 720), {"profile": "high"}),
    ((330, 190), {"profile": "high", "x264-params": "cqm=jvt"}),  # scaling matrices in SPS
])
def test_h264_size(size: tuple[int, int], options: dict[str, str]) -> None:
    frames = _encode("libx264", *size, options={"tune": "zerolatency", **options})
    assert h264_size(frames[0]) == size
    assert h264_size(frames[1]) is None  # no SPS, no IDR
    idr_without_pps = b"".join(b"\x00\x00\x00\x01" + u for u in frames[0].split(
        b"\x00\x00\x00\x01") if u and u[0] & 0x1F != 8)
    assert h264_size(idr_without_pps) is None
