"""The pure decisions of RTP forwarding: rewriting, the NACK cache, RTX, throttling."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtchub.media.forwarding import (
    KeyframeThrottle,
    PacketCache,
    Rewriter,
    rtp_packet,
    rtx_packet,
)


def test_first_packet_maps_to_the_receivers_starting_point() -> None:
    rw = Rewriter(48000, first_seq=1000, first_ts=5000)
    out = rw.translate(ssrc=7, seq=40000, timestamp=123456, arrival_ms=0)
    assert (out.seq, out.timestamp) == (1000, 5000)
    out = rw.translate(7, 40001, 123456 + 960, 20)
    assert (out.seq, out.timestamp) == (1001, 5960)


def test_wraparound_of_both_counters() -> None:
    rw = Rewriter(48000, first_seq=65535, first_ts=(1 << 32) - 480)
    rw.translate(1, 10, 0, 0)
    out = rw.translate(1, 11, 960, 20)
    assert (out.seq, out.timestamp) == (0, 480)


def test_reordered_packets_keep_their_place() -> None:
    rw = Rewriter(48000, 0, 0)
    rw.translate(1, 100, 0, 0)
    late = rw.translate(1, 102, 1920, 40)
    early = rw.translate(1, 101, 960, 41)
    assert (early.seq, late.seq) == (1, 2)
    # the late arrival did not move the anchor backwards
    assert rw.translate(1, 103, 2880, 60).seq == 3


def test_source_switch_continues_after_the_last_packet() -> None:
    rw = Rewriter(48000, 500, 0)
    for i in range(5):
        rw.translate(1, 10 + i, i * 960, i * 20)
    switched = rw.translate(2, 30000, 999999, 4 * 20 + 100)  # 100 ms later, new source
    assert switched.seq == 505
    assert switched.timestamp == 4 * 960 + 100 * 48
    assert rw.source == 2
    assert rw.translate(2, 30001, 999999 + 960, 200).seq == 506


@given(st.integers(0, 65535), st.integers(0, (1 << 32) - 1),
       st.lists(st.integers(1, 3), min_size=1, max_size=50))
def test_outgoing_numbers_advance_like_incoming(first_seq: int, first_ts: int,
                                                 steps: list[int]) -> None:
    rw = Rewriter(48000, first_seq, first_ts)
    seq, ts = 65000, 4_000_000_000
    prev = rw.translate(9, seq, ts, 0)
    for step in steps:
        seq, ts = (seq + step) % 65536, (ts + 960 * step) % (1 << 32)
        out = rw.translate(9, seq, ts, 0)
        assert (out.seq - prev.seq) % 65536 == step
        assert (out.timestamp - prev.timestamp) % (1 << 32) == 960 * step
        prev = out


def test_rewriter_rejects_a_bad_clock_rate() -> None:
    with pytest.raises(ValueError, match="clock rate"):
        Rewriter(0, 0, 0)


def test_rtp_packet_layout() -> None:
    data = rtp_packet(True, 111, 513, 0x01020304, 0xAABBCCDD, b"opus")
    assert data == bytes([0x80, 0x80 | 111, 2, 1, 1, 2, 3, 4, 0xAA, 0xBB, 0xCC, 0xDD]) + b"opus"


def test_rtx_wraps_the_original() -> None:
    original = rtp_packet(True, 96, 4242, 777, 1, b"frame")
    rtx = rtx_packet(original, 97, 9, 2)
    version, second, seq, ts, ssrc = struct.unpack_from("!BBHII", rtx)
    assert (version, second, seq, ts, ssrc) == (0x80, 0x80 | 97, 9, 777, 2)
    assert rtx[12:] == (4242).to_bytes(2, "big") + b"frame"
    with pytest.raises(ValueError):
        rtx_packet(b"short", 97, 1, 2)


def test_cache_keeps_the_last_packets_only() -> None:
    cache = PacketCache(4)
    for seq in range(10):
        cache.put(seq, bytes([seq]))
    assert cache.get(9) == b"\x09"
    assert cache.get(6) == b"\x06"
    assert cache.get(5) is None  # overwritten by 9
    assert cache.get(1234) is None
    with pytest.raises(ValueError):
        PacketCache(0)


def test_keyframe_throttle_combines_bursts() -> None:
    throttle = KeyframeThrottle(0.5)
    assert throttle.allow(10.0)
    assert not throttle.allow(10.1)
    assert not throttle.allow(10.49)
    assert throttle.allow(10.5)
    assert throttle.combined == 2
