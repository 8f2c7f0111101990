"""One track's uplink and downtracks, packet by packet, on real VP8 from aiortc's encoder.

The outlets here record what would go on the wire (the network path is what the
aiortc-client tests drive); everything between the bytes in and the bytes out
is the real code.
"""

from __future__ import annotations

import fractions
import itertools
from typing import Any, cast

import av
import pytest
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RtpPacket

from rtchub.media.aiortc_adapter import RtcpFeedback
from rtchub.media.fanout import ForwardingStats
from rtchub.media.keyframes import vp8_starts_keyframe
from rtchub.media.sfu.demux import Demuxer
from rtchub.media.sfu.downtrack import Downtrack, payload_map
from rtchub.media.sfu.rtp import FIXED, RtpHeader, rtx_wrap
from rtchub.media.sfu.sdp import Codec
from rtchub.media.sfu.uplink import InboundPacket, TrackUplink
from tests.support import FakeClock

VP8 = Codec(96, "VP8", 90000, None, {}, ())
VP8_RTX = Codec(97, "rtx", 90000, None, {"apt": "96"}, ())
H264 = Codec(102, "H264", 90000, None, {"packetization-mode": "1"}, ())
PUBLISHER_SSRC = 0x1111


class Recorder:
    """An outlet or upstream that keeps what it was given."""

    def __init__(self) -> None:
        self.rtp: list[bytes] = []
        self.rtcp: list[bytes] = []
        self.connected = True

    def send_rtp(self, packet: bytes) -> bool:
        self.rtp.append(packet)
        return self.connected

    def send_rtcp(self, packet: bytes) -> bool:
        self.rtcp.append(packet)
        return self.connected


class Sender:
    """What a downtrack reads of aiortc's sender: its SSRCs (and it notes its counters)."""

    def __init__(self, ssrc: int) -> None:
        self._ssrc = ssrc
        self._rtx_ssrc = ssrc + 1


def vp8_packets(frames: int = 12, ssrc: int = PUBLISHER_SSRC) -> list[bytes]:
    """Real VP8 RTP packets (aiortc's encoder and packetizer), a keyframe first."""
    encoder = Vp8Encoder()
    out: list[bytes] = []
    seq = 65500  # wraps inside the clip
    for i in range(frames):
        frame = av.VideoFrame(320, 240, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([(i * 16 + plane.line_size) % 256]) * plane.buffer_size)
        frame.pts = i * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        payloads, timestamp = encoder.encode(frame, force_keyframe=i in (0, 8))
        for j, payload in enumerate(payloads):
            packet = RtpPacket(payload_type=96, marker=int(j == len(payloads) - 1),
                               sequence_number=seq & 0xFFFF, timestamp=timestamp,
                               ssrc=ssrc, payload=payload)
            out.append(bytes(packet.serialize()))
            seq += 1
    return out


class Plane:
    """An uplink, its demuxer, and downtracks recording their output."""

    def __init__(self, ssrc: int = PUBLISHER_SSRC) -> None:
        self.clock = FakeClock()
        self.stats = ForwardingStats()
        self.upstream = Recorder()
        self.uplink = TrackUplink("video", self.upstream, 0xAAAA, self.stats,
                                  clock=self.clock)
        self.uplink.set_codecs({96: VP8, 97: VP8_RTX})
        self.demux = Demuxer()
        self.demux.add_track("0", self.uplink)
        self.demux.bind(self.uplink, 0, ssrc, ssrc + 9)

    def downtrack(self, ssrc: int, follows: Downtrack | None = None) -> tuple[Downtrack,
                                                                               Recorder]:
        outlet = Recorder()
        downtrack = Downtrack(self.uplink, outlet, cast(Any, Sender(ssrc)), self.stats,
                              cache_size=64, follows=follows)
        subscriber = [Codec(100, "VP8", 90000, None, {}, ()),
                      Codec(101, "rtx", 90000, None, {"apt": "100"}, ())]
        downtrack.configure(payload_map(self.uplink.codecs,
                                        {c.payload_type: c for c in subscriber}), None)
        return downtrack, outlet


def test_payload_types_map_by_codec_and_rtx_follows() -> None:
    publisher = {96: VP8, 97: VP8_RTX, 102: H264}
    subscriber = {120: Codec(120, "H264", 90000, None, {"packetization-mode": "1"}, ()),
                  121: Codec(121, "rtx", 90000, None, {"apt": "120"}, ()),
                  100: Codec(100, "VP8", 90000, None, {}, ())}
    assert payload_map(publisher, subscriber) == {96: (100, None), 102: (120, 121)}
    assert payload_map({102: H264}, {5: Codec(5, "H264", 90000, None, {}, ())}) == {}


def test_a_subscriber_starts_at_a_keyframe_with_its_own_header() -> None:
    plane = Plane()
    packets = vp8_packets()
    first_key = 0
    second_key = next(i for i, p in enumerate(packets) if i and vp8_starts_keyframe(
        p[RtpHeader.parse(p).payload_start:]))
    for data in packets[:3]:  # before anyone subscribed
        plane.demux(data, 1000)
    downtrack, outlet = plane.downtrack(0xB0B)
    downtrack.start()
    assert plane.upstream.rtcp[-1][1] == 206  # a PLI asked for a keyframe at once
    for data in packets[3:]:
        plane.demux(data, 1000)
    assert len(outlet.rtp) == len(packets) - second_key  # from the next keyframe on
    assert first_key == 0 and plane.stats.packets_gated == second_key - 3
    headers = [RtpHeader.parse(p) for p in outlet.rtp]
    assert vp8_starts_keyframe(outlet.rtp[0][headers[0].payload_start:])
    assert {h.ssrc for h in headers} == {0xB0B}
    assert {h.payload_type for h in headers} == {100}
    seqs = [h.seq for h in headers]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    for sent, original in zip(outlet.rtp, packets[second_key:], strict=True):
        source = RtpHeader.parse(original)
        assert sent[RtpHeader.parse(sent).payload_start:] == original[source.payload_start:]


def test_nacks_come_back_as_rtx_at_most_twice_and_pli_and_remb_go_upstream() -> None:
    plane = Plane()
    downtrack, outlet = plane.downtrack(0xC0C)
    downtrack.start()
    for data in vp8_packets(4):
        plane.demux(data, 1000)
    lost = RtpHeader.parse(outlet.rtp[2])
    sent = len(outlet.rtp)
    downtrack.on_feedback(RtcpFeedback([lost.seq, 12345], False))
    rtx = outlet.rtp[sent]
    assert rtx == rtx_wrap(outlet.rtp[2], 101, RtpHeader.parse(rtx).seq, 0xC0C + 1)
    assert (plane.stats.nack_hits, plane.stats.nack_misses) == (1, 1)
    downtrack.on_feedback(RtcpFeedback([lost.seq], False))  # too soon: not again
    assert len(outlet.rtp) == sent + 1
    plane.clock.advance(0.1)
    downtrack.on_feedback(RtcpFeedback([lost.seq], False))
    plane.clock.advance(0.1)
    downtrack.on_feedback(RtcpFeedback([lost.seq], False))  # a third time: no
    assert len(outlet.rtp) == sent + 2

    requests = len(plane.upstream.rtcp)
    downtrack.on_feedback(RtcpFeedback([], True))  # 0.2 s after the subscription's PLI
    assert len(plane.upstream.rtcp) == requests
    plane.clock.advance(0.5)
    downtrack.on_feedback(RtcpFeedback([], True))
    assert len(plane.upstream.rtcp) == requests + 1
    downtrack.on_feedback(RtcpFeedback([], True))  # within the throttle: folded in
    assert len(plane.upstream.rtcp) == requests + 1
    downtrack.on_feedback(RtcpFeedback([], False, 900_000, (0xC0C, 0xD0D, 0xE0E)))
    assert downtrack.estimate == 300_000
    assert plane.uplink.remb_target(100_000, 2_500_000, 5.0) == 300_000
    # the subscriber names the RTX it got beside the stream: that is one stream, not two
    downtrack.on_feedback(RtcpFeedback([], False, 900_000, (0xC0C, 0xC0C + 1)))
    assert downtrack.estimate == 900_000


def test_a_reused_sender_continues_its_sequence_and_a_layer_selector_filters() -> None:
    plane = Plane()
    first, outlet = plane.downtrack(0xD0D)
    first.start()
    packets = vp8_packets(3)
    for data in packets:
        plane.demux(data, 1000)
    last = RtpHeader.parse(outlet.rtp[-1])
    first.stop()
    # the subscriber's section now carries another publisher's track
    other = Plane(ssrc=0x2222)
    second, outlet2 = other.downtrack(0xD0D, follows=first)
    second.start()
    for data in vp8_packets(3, ssrc=0x2222):
        other.demux(data, 2000)
    resumed = RtpHeader.parse(outlet2.rtp[0])
    assert resumed.seq == (last.seq + 1) & 0xFFFF
    assert 0 < (resumed.timestamp - last.timestamp) & 0xFFFFFFFF < 90000 * 2

    class OnlyLayer1:
        layer = 1

        def admit(self, packet: InboundPacket) -> bool:
            return packet.layer == 1

    heard: list[InboundPacket] = []
    other.uplink.listen("recorder", heard.append)  # e.g. a recorder, after the downtracks
    other.demux(vp8_packets(1, ssrc=0x2222)[0], 2500)
    assert heard[-1].ssrc == 0x2222 and heard[-1].payload_type == 96
    other.uplink.unlisten("recorder")

    second.selector = OnlyLayer1()
    count = len(outlet2.rtp)
    for data in vp8_packets(2, ssrc=0x2222):
        other.demux(data, 3000)  # layer 0 only: nothing passes
    assert len(outlet2.rtp) == count


def test_the_publishers_retransmissions_are_unwrapped_and_gaps_nacked() -> None:
    plane = Plane()
    downtrack, outlet = plane.downtrack(0xE0E)
    downtrack.start()
    packets = vp8_packets(4)
    plane.demux(packets[0], 1000)
    plane.demux(packets[2], 1000)  # packets[1] went missing upstream
    nack = plane.upstream.rtcp[-1]
    assert nack[1] == 205 and FIXED.unpack_from(nack)[4] == PUBLISHER_SSRC
    assert plane.stats.lost_in == 1
    rtx = rtx_wrap(packets[1], 97, 7, PUBLISHER_SSRC + 9)
    plane.demux(rtx, 1100)
    late = RtpHeader.parse(outlet.rtp[-1])
    original = RtpHeader.parse(packets[1])
    assert outlet.rtp[-1][late.payload_start:] == packets[1][original.payload_start:]
    assert late.seq == (RtpHeader.parse(outlet.rtp[0]).seq + 1) & 0xFFFF


@pytest.mark.parametrize("connected", [True, False])
def test_a_send_that_fails_waits_for_a_new_keyframe(connected: bool) -> None:
    plane = Plane()
    downtrack, outlet = plane.downtrack(0xF0F)
    outlet.connected = connected
    downtrack.start()
    for data in vp8_packets(3):
        plane.demux(data, 1000)
    # a keyframe that could not be sent closes the gate again (the next one is awaited)
    assert downtrack.waiting_for_keyframe is not connected
    assert not outlet.rtp[0][0] & 0x10  # no extensions negotiated: none written
