"""The pure parts of recording a track: reordering, frame assembly, the time line."""

from __future__ import annotations

import random
from collections.abc import Set as AbstractSet
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtchub.media.recording.assembler import FrameAssembler
from rtchub.media.recording.codecs import recorded_codec
from rtchub.media.recording.reorder import Reorderer
from rtchub.media.recording.timeline import Timeline
from tests.media.recsupport import Sent, VideoSender, vp9_packetize

# -- reordering ------------------------------------------------------------------------


def test_the_start_waits_out_the_window_then_packets_pass_straight_through() -> None:
    r: Reorderer[int] = Reorderer(8, 0.2)
    assert r.push(11, 11, 0.0) == []  # is 11 the first? wait and see
    assert r.push(10, 10, 0.1) == []
    assert r.push(12, 12, 0.3) == [(0, 10), (0, 11), (0, 12)]
    assert r.push(13, 13, 0.31) == [(0, 13)]
    assert r.late == 0


def test_without_a_delay_nothing_waits() -> None:
    r: Reorderer[int] = Reorderer(8, 0.0)
    assert [r.push(s, s, 0.0) for s in (10, 11, 13, 12)] == [[(0, 10)], [(0, 11)], [(1, 13)],
                                                           []]
    assert r.late == 1


def _started(window: int, delay: float, first: int) -> Reorderer[int]:
    """A reorderer past its start, having released ``first``."""
    r: Reorderer[int] = Reorderer(window, delay)
    r.push(first, first, 0.0)
    assert r.push(first + 1, first + 1, delay) == [(0, first), (0, first + 1)]
    return r


def test_reordered_packets_come_out_in_order_across_the_wrap() -> None:
    r = _started(8, 0.2, 65532)
    out = []
    for seq in (65534, 0, 65535, 2, 1, 3):
        out += r.push(seq, seq, 0.0)
    assert out == [(0, 65534), (0, 65535), (0, 0), (0, 1), (0, 2), (0, 3)]
    assert r.lost == r.late == 0


def test_a_gap_is_given_up_when_the_window_fills() -> None:
    r = _started(4, 10.0, 0)
    out = []
    for seq in (3, 4, 5, 6):
        out += r.push(seq, seq, 0.0)
    assert out == []  # four held behind the gap
    out += r.push(7, 7, 0.0)
    assert out == [(1, 3), (0, 4), (0, 5), (0, 6), (0, 7)]
    assert r.lost == 1
    assert r.push(2, 2, 0.0) == [] and r.late == 1  # too late now


def test_a_gap_is_given_up_after_the_delay() -> None:
    r = _started(100, 0.2, 0)
    assert r.push(4, 4, 0.0) == []
    assert r.push(5, 5, 0.1) == []
    assert r.push(6, 6, 0.25) == [(2, 4), (0, 5), (0, 6)]
    assert r.lost == 2 and r.held == 0


def test_duplicates_are_dropped() -> None:
    r = _started(8, 0.2, 0)
    r.push(3, 3, 0.0)
    assert r.push(3, 3, 0.0) == [] and r.push(1, 1, 0.0) == []
    assert (r.duplicates, r.late) == (1, 1)


def test_a_sequence_restart_is_a_discontinuity_not_thousands_lost() -> None:
    r = _started(8, 0.2, 99)
    r.push(102, 102, 0.0)  # held behind 101
    assert r.push(40000, 40000, 1.0) == [(1, 102)]  # the new start waits out its window
    assert r.push(40001, 40001, 1.3) == [(1, 40000), (0, 40001)]
    assert r.lost == 2
    assert r.push(39990, 0, 1.3) == [] and r.late == 1  # close behind: late, not a restart


def test_flush_releases_everything_held() -> None:
    r = _started(8, 10.0, 0)
    r.push(3, 3, 0.0)
    r.push(6, 6, 0.0)
    assert r.flush() == [(1, 3), (2, 6)]
    assert r.push(50, 50, 0.0) == []  # a fresh start waits again
    assert r.flush() == [(0, 50)]


@given(st.integers(0, 65535), st.lists(st.booleans(), min_size=1, max_size=300),
       st.integers(1, 8), st.randoms(use_true_random=False))
def test_every_packet_comes_out_once_in_order(first: int, kept: list[bool], spread: int,
                                              rnd: random.Random) -> None:
    r: Reorderer[int] = Reorderer(16, 0.2)
    seqs = [first + i for i, keep in enumerate(kept) if keep]
    arrival: list[int] = []
    for i in range(0, len(seqs), spread):  # reordered within runs of ``spread`` packets
        run = seqs[i:i + spread]
        rnd.shuffle(run)
        arrival += run
    out = []
    for n, ext in enumerate(arrival):
        out += r.push(ext % 65536, ext, n * 0.001)
    out += r.flush()
    released = [ext for _, ext in out]
    assert released == sorted(arrival)  # a window of 16 absorbs runs of up to 8
    assert r.late == 0
    if released:
        missing = sum(1 for ext in range(released[0], released[-1]) if ext not in set(seqs))
        assert sum(lost for lost, _ in out) == missing == r.lost


# -- the time line ---------------------------------------------------------------------


def test_timeline_follows_rtp_time_across_the_wrap() -> None:
    t = Timeline(90000, Fraction(1, 1000))
    start = (1 << 32) - 4500
    ticks = [t.place(1, (start + i * 3000) % (1 << 32), i / 30) for i in range(5)]
    assert ticks == [0, 33, 67, 100, 133]


def test_timeline_never_repeats_a_tick() -> None:
    t = Timeline(90000, Fraction(1, 1000))
    assert [t.place(1, 1000, 0.0), t.place(1, 1000, 0.0), t.place(1, 1010, 0.0)] == [0, 1, 2]


def test_timeline_keeps_a_pause_that_rtp_time_agrees_with() -> None:
    t = Timeline(48000, Fraction(1, 1000))
    t.place(1, 0, 10.0)
    assert t.place(1, 48000 * 3, 13.0) == 3000
    assert t.resyncs == 0


@pytest.mark.parametrize(("ssrc", "timestamp"), [
    (2, 123456789),  # a new SSRC
    (1, 1000),  # RTP time went backwards
    (1, 90000 * 60),  # a minute of RTP time in two seconds
])
def test_timeline_resyncs_on_the_arrival_clock(ssrc: int, timestamp: int) -> None:
    t = Timeline(90000, Fraction(1, 1000), resync_after=5.0)
    t.place(1, 90000, 0.0)
    t.place(1, 93000, 0.033)
    assert t.place(ssrc, timestamp, 2.033) == 33 + 2000
    assert t.place(ssrc, timestamp + 3000, 2.066) == 33 + 2000 + 33
    assert t.resyncs == 1


# -- frames ----------------------------------------------------------------------------


def _frames_of(sender: VideoSender, count: int) -> list[Sent]:
    return [sender.next() for _ in range(count)]


def _push(assembler: FrameAssembler, sent: list[Sent],
          drop: AbstractSet[tuple[int, int]] = frozenset()) -> list[bytes]:
    out = []
    lost = 0
    for s in sent:
        for i, packet in enumerate(s.packets):
            if (s.index, i) in drop:
                lost += 1
                continue
            out += [f.data for f in assembler.push(lost, packet.payload, packet.timestamp,
                                                  bool(packet.marker))]
            lost = 0
    return out


@pytest.mark.parametrize("codec", ["VP8", "H264", "VP9"])
def test_frames_come_out_whole_and_loss_waits_for_a_key_frame(codec: str) -> None:
    sender = VideoSender(codec, width=320, height=240)
    sent = _frames_of(sender, 6)
    sender.keyframe_wanted = True
    sent += _frames_of(sender, 3)
    assert [s.keyframe for s in sent] == [True] + [False] * 5 + [True, False, False]
    assembler = FrameAssembler(recorded_codec(f"video/{codec}"), 1 << 20)
    lost_frame = sent[2]
    out = _push(assembler, sent, {(lost_frame.index, len(lost_frame.packets) - 1)})
    assert out == [s.frame for s in (sent[0], sent[1], sent[6], sent[7], sent[8])]
    assert assembler.dropped == 1  # the frame that lost its last packet
    assert assembler.discarded == sum(len(s.packets) for s in sent[3:6])
    assert not assembler.waiting


def test_video_starts_only_at_a_key_frame() -> None:
    sender = VideoSender("VP8")
    sent = _frames_of(sender, 3)
    assembler = FrameAssembler(recorded_codec("video/VP8"), 1 << 20)
    assert _push(assembler, sent[1:]) == []
    assert assembler.waiting


def test_an_h264_key_frame_without_its_parameter_sets_is_not_a_start() -> None:
    sender = VideoSender("H264", width=320, height=240)
    sent = _frames_of(sender, 2)
    assert sent[0].packets[0].payload[0] & 0x1F == 24  # STAP-A with SPS and PPS
    assembler = FrameAssembler(recorded_codec("video/H264"), 1 << 20)
    assert _push(assembler, sent, {(0, 0)}) == []
    assert assembler.waiting and assembler.dropped == 1


def test_a_frame_without_its_marker_ends_at_the_next_timestamp() -> None:
    sender = VideoSender("VP8")
    sent = _frames_of(sender, 2)
    for s in sent:
        s.packets[-1].marker = 0
    assembler = FrameAssembler(recorded_codec("video/VP8"), 1 << 20)
    assert _push(assembler, sent) == [sent[0].frame]


def test_an_oversized_frame_is_dropped() -> None:
    sender = VideoSender("VP8", width=320, height=240)
    sent = _frames_of(sender, 1)
    assembler = FrameAssembler(recorded_codec("video/VP8"), len(sent[0].frame) - 1)
    assert _push(assembler, sent) == []
    assert assembler.dropped == 1 and assembler.waiting


def test_upper_spatial_layers_are_skipped() -> None:
    assembler = FrameAssembler(recorded_codec("video/VP9"), 1 << 20)
    sender = VideoSender("VP9")
    key = sender.next()
    frame = key.frame
    base = vp9_packetize(frame, 5, True, (160, 96), spatial=0)
    upper = vp9_packetize(b"\x00" * 50, 5, True, (320, 192), spatial=1)
    out = []
    for payload in base:
        out += assembler.push(0, payload, 1000, False)
    for i, payload in enumerate(upper):
        out += assembler.push(0, payload, 1000, i == len(upper) - 1)
    assert [f.data for f in out] == [frame]


def test_a_malformed_packet_breaks_its_frame() -> None:
    sender = VideoSender("VP8", width=320, height=240)
    sent = _frames_of(sender, 2)
    assembler = FrameAssembler(recorded_codec("video/VP8"), 1 << 20)
    sent[0].packets[1].payload = b"\x90"  # an extension byte promised, nothing after
    assert _push(assembler, sent) == []
    assert assembler.malformed == 1 and assembler.waiting


def test_audio_frames_stand_alone() -> None:
    assembler = FrameAssembler(recorded_codec("audio/opus"), 4096)
    assert not assembler.waiting
    assert [f.data for f in assembler.push(3, b"\xfc\x01", 960, False)] == [b"\xfc\x01"]
    assert not assembler.waiting
