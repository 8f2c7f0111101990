"""Keyframe detection and gating, on real payloads from aiortc's own VP8 and H.264 packetizers."""

from __future__ import annotations

import fractions
import random
from dataclasses import dataclass

import av
import pytest
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame
from hypothesis import given
from hypothesis import strategies as st

from rtchub.media.forwarding import KeyframeThrottle, Rewriter
from rtchub.media.keyframes import (
    KeyframeGate,
    detector,
    h264_starts_keyframe,
    vp8_starts_keyframe,
    vp9_starts_keyframe,
)

KEYFRAMES = (0, 5)  # frames encoded with force_keyframe
FRAMES = 9


@dataclass(frozen=True)
class Sent:
    """One RTP packet as the sender would send it."""

    frame: int
    seq: int
    timestamp: int
    marker: bool
    payload: bytes


def video_frame(index: int, width: int = 160, height: int = 120) -> av.VideoFrame:
    """A noise picture (different every frame, so every frame is several packets)."""
    frame = av.VideoFrame(width, height, "yuv420p")
    noise = random.Random(index)
    for plane in frame.planes:
        plane.update(noise.randbytes(plane.buffer_size))
    frame.pts = index * 3000
    frame.time_base = fractions.Fraction(1, 90000)
    return frame


def encode(encoder: Vp8Encoder | H264Encoder, first_seq: int = 65530) -> list[Sent]:
    """The RTP packets of FRAMES frames, keyframes at KEYFRAMES, seq wrapping on the way."""
    sent: list[Sent] = []
    seq = first_seq
    for index in range(FRAMES):
        payloads, timestamp = encoder.encode(video_frame(index),
                                             force_keyframe=index in KEYFRAMES)
        for n, payload in enumerate(payloads):
            sent.append(Sent(index, seq, timestamp, n == len(payloads) - 1, payload))
            seq = (seq + 1) % (1 << 16)
    return sent


@pytest.fixture(scope="module")
def vp8() -> list[Sent]:
    return encode(Vp8Encoder())


@pytest.fixture(scope="module")
def h264() -> list[Sent]:
    return encode(H264Encoder())


def first_packets(sent: list[Sent]) -> dict[int, Sent]:
    firsts: dict[int, Sent] = {}
    for packet in sent:
        firsts.setdefault(packet.frame, packet)
    return firsts


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_only_the_first_packet_of_a_keyframe_is_detected(codec: str, vp8: list[Sent],
                                                         h264: list[Sent]) -> None:
    sent = vp8 if codec == "vp8" else h264
    detect = detector(f"video/{codec.upper()}")
    assert detect is not None
    firsts = first_packets(sent)
    assert all(len([p for p in sent if p.frame == f]) > 1 for f in range(FRAMES))
    detected = [p for p in sent if detect(p.payload)]
    assert all(firsts[f] in detected for f in KEYFRAMES)
    if codec == "vp8":
        assert detected == [firsts[f] for f in KEYFRAMES]
    else:  # the STAP-A with SPS and PPS, then the first FU-A fragment of each IDR slice
        assert {p.frame for p in detected} == set(KEYFRAMES)


def test_vp8_descriptor_variants(vp8: list[Sent]) -> None:
    key = vp8[0].payload
    assert key[0] == 0x90 and key[1] & 0x80  # X, S, PictureID as aiortc sends them
    assert key[2] & 0x80  # 15-bit PictureID
    body = vp8_depayload(key)
    # the same frame start with other descriptor shapes
    assert vp8_starts_keyframe(b"\x10" + body)  # no extensions
    assert vp8_starts_keyframe(b"\x90\x80\x05" + body)  # 7-bit PictureID
    assert vp8_starts_keyframe(b"\x90\xf0\x85\x01\x07\x20" + body)  # I(15) L T K
    assert not vp8_starts_keyframe(b"\x00" + body)  # S=0: not the start
    assert not vp8_starts_keyframe(b"\x11" + body)  # partition 1
    delta = vp8_depayload(vp8[first_packet_index(vp8, 1)].payload)
    assert not vp8_starts_keyframe(b"\x10" + delta)


def first_packet_index(sent: list[Sent], frame: int) -> int:
    return next(i for i, p in enumerate(sent) if p.frame == frame)


def test_h264_packetization_modes(h264: list[Sent]) -> None:
    key = h264[0].payload
    assert key[0] & 0x1F == 24  # aiortc aggregates SPS and PPS in a STAP-A
    idr_start = next(p.payload for p in h264 if p.payload[0] & 0x1F == 28
                     and p.payload[1] & 0x1F == 5 and p.payload[1] & 0x80)
    assert h264_starts_keyframe(idr_start)
    middle = bytes([idr_start[0], idr_start[1] & 0x7F]) + idr_start[2:]
    assert not h264_starts_keyframe(middle)  # an IDR fragment that is not the first
    assert h264_starts_keyframe(b"\x65\x88\x84")  # single NAL unit, IDR
    assert h264_starts_keyframe(b"\x67\x42\xc0")  # single NAL unit, SPS
    assert not h264_starts_keyframe(b"\x41\x9a\x00")  # single NAL unit, non-IDR slice
    assert not h264_starts_keyframe(b"\x68\xce")  # PPS alone
    pps_and_slice = b"\x78" + b"\x00\x02\x68\xce" + b"\x00\x03\x41\x9a\x00"
    assert not h264_starts_keyframe(pps_and_slice)
    assert h264_starts_keyframe(b"\x78" + b"\x00\x02\x68\xce" + b"\x00\x03\x65\x88\x84")
    assert not h264_starts_keyframe(b"\x78\x00\x09\x67")  # STAP-A length past the end


def test_vp9_descriptor() -> None:
    assert vp9_starts_keyframe(bytes([0x08]))  # B, not P
    assert not vp9_starts_keyframe(bytes([0x48]))  # inter-predicted
    assert not vp9_starts_keyframe(bytes([0x04]))  # not the beginning of a frame
    assert vp9_starts_keyframe(bytes([0xA8, 0x81, 0x23, 0x00]))  # I(15) L, SID 0
    assert not vp9_starts_keyframe(bytes([0xA8, 0x81, 0x23, 0x02]))  # SID 1
    assert vp9_starts_keyframe(bytes([0xA8, 0x05, 0x00]))  # I(7) L, SID 0


@given(st.binary(max_size=40))
def test_detectors_never_raise(payload: bytes) -> None:
    for detect in (vp8_starts_keyframe, vp9_starts_keyframe, h264_starts_keyframe):
        detect(payload)


def test_audio_and_unknown_codecs_are_never_gated() -> None:
    assert KeyframeGate.for_codec("audio/opus") is None
    assert KeyframeGate.for_codec("video/AV1") is None
    assert KeyframeGate.for_codec("video/vp8") is not None


@dataclass(frozen=True)
class Out:
    frame: int
    seq: int
    timestamp: int
    payload: bytes


def receive(gate: KeyframeGate, rewriter: Rewriter, sent: list[Sent], ssrc: int,
            throttle: KeyframeThrottle | None = None, out: list[Out] | None = None,
            requests: list[float] | None = None) -> list[Out]:
    """What a gated downtrack forwards of ``sent``; dropped packets ask for a keyframe."""
    out = [] if out is None else out
    for packet in sent:
        now = packet.frame / 30
        if not gate.admit(ssrc, packet.seq, packet.timestamp, packet.payload):
            if throttle is not None and requests is not None and throttle.allow(now):
                requests.append(now)
            continue
        t = rewriter.translate(ssrc, packet.seq, packet.timestamp, int(now * 1000))
        out.append(Out(packet.frame, t.seq, t.timestamp, packet.payload))
    return out


def test_a_join_mid_stream_starts_at_the_keyframe_without_a_gap(vp8: list[Sent]) -> None:
    joined = vp8[first_packet_index(vp8, 2) + 1:]  # mid-way through frame 2
    gate = KeyframeGate.for_codec("video/VP8")
    assert gate is not None and gate.source is None
    rewriter = Rewriter(90000, first_seq=65535, first_ts=1000)
    requests: list[float] = []
    out = receive(gate, rewriter, joined, 0x1234, KeyframeThrottle(0.05), requests=requests)
    assert gate.source == 0x1234
    assert out[0].frame == 5 and vp8_starts_keyframe(out[0].payload)
    assert [o.payload for o in out] == [p.payload for p in vp8 if p.frame >= 5]
    # contiguous from the receiver's first sequence number, across the wrap
    assert [o.seq for o in out] == [(65535 + i) % (1 << 16) for i in range(len(out))]
    assert out[0].timestamp == 1000
    sent_ts = {p.frame: p.timestamp for p in vp8}
    for o in out:
        assert o.timestamp == 1000 + sent_ts[o.frame] - sent_ts[5]
    # frames 2, 3, 4 were dropped: requests at most every 50 ms (1.5 frame times)
    assert requests == [2 / 30, 4 / 30]
    decode_all(out)


def decode_all(out: list[Out]) -> None:
    """The receiver's VP8 decoder accepts every frame it got, the first one included."""
    decoder = Vp8Decoder()
    for frame in sorted({o.frame for o in out}):
        data = b"".join(vp8_depayload(o.payload) for o in out if o.frame == frame)
        pictures = decoder.decode(JitterFrame(data, 0))
        assert len(pictures) == 1, f"frame {frame} did not decode"


def test_a_stream_switch_waits_for_the_new_sources_keyframe(vp8: list[Sent]) -> None:
    gate = KeyframeGate.for_codec("video/VP8")
    assert gate is not None
    rewriter = Rewriter(90000, first_seq=100, first_ts=0)
    old = vp8[:first_packet_index(vp8, 3)]  # source A: frames 0-2
    out = receive(gate, rewriter, old, 0xA)
    assert len(out) == len(old)
    # source B (new SSRC, other numbering) interleaves with A's last frame
    b = [Sent(p.frame, (p.seq + 20000) % (1 << 16), p.timestamp + 777, p.marker, p.payload)
         for p in vp8 if p.frame >= 3]
    b_delta, b_rest = b[:3], b
    receive(gate, rewriter, b_delta, 0xB, out=out)
    assert gate.source == 0xA and len(out) == len(old)  # B's deltas dropped
    late_a = [p for p in vp8 if p.frame == 3][:2]
    receive(gate, rewriter, late_a, 0xA, out=out)
    assert len(out) == len(old) + 2  # A still flows until B has a keyframe
    receive(gate, rewriter, b_rest[3:], 0xB, out=out)
    assert gate.source == 0xB
    switched = out[len(old) + 2:]
    assert switched[0].frame == 5 and vp8_starts_keyframe(switched[0].payload)
    assert [o.seq for o in out] == list(range(100, 100 + len(out)))  # no gap at the switch
    assert switched[0].timestamp > out[len(old) + 1].timestamp  # time moves forward
    # A's packets after the switch are dropped (they are not keyframes)
    before = len(out)
    receive(gate, rewriter, [p for p in vp8 if p.frame == 6], 0xA, out=out)
    assert len(out) == before


def test_late_deltas_from_before_the_keyframe_are_dropped(vp8: list[Sent]) -> None:
    gate = KeyframeGate.for_codec("video/VP8")
    assert gate is not None
    key = first_packet_index(vp8, 5)
    def admit(p: Sent, seq: int | None = None) -> bool:
        return gate.admit(1, p.seq if seq is None else seq, p.timestamp, p.payload)

    assert admit(vp8[key])
    assert not admit(vp8[key - 1])  # reordered, older
    assert admit(vp8[key + 1])
    # far past the switch, the comparison stops so wrap-around cannot drop new packets
    for step in range(0, 1 << 16, 512):
        assert admit(vp8[key + 1], (vp8[key].seq + step) % (1 << 16))
    gate.reset()
    assert gate.source is None
    assert not admit(vp8[key + 1])


def test_h264_join_after_the_first_idr_slice_waits_for_the_next_keyframe(
        h264: list[Sent]) -> None:
    gate = KeyframeGate.for_codec("video/H264")
    assert gate is not None
    rewriter = Rewriter(90000, first_seq=7, first_ts=0)
    out = receive(gate, rewriter, h264[2:], 0x264)  # after the SPS/PPS and first fragment
    # frame 0's second IDR slice starts with an IDR fragment, but mid-frame: not opened
    assert out[0].frame == 5 and out[0].payload[0] & 0x1F == 24
    assert [o.payload for o in out] == [p.payload for p in h264 if p.frame >= 5]
    assert [o.seq for o in out] == list(range(7, 7 + len(out)))
    # a receiver that joins exactly at a keyframe starts right there
    gate.reset()
    whole = receive(gate, Rewriter(90000, 0, 0), h264, 0x264)
    assert len(whole) == len(h264)
