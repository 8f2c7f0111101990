"""Simulcast receive, packet by packet: the answer's lines, RID demux, layer switches
with continuous sequence numbers, timestamps, VP8 picture ids and TL0PICIDX, and the
fall back when a layer stops, on real VP8 from aiortc's encoder and packetizer.

The outlets record what would go on the wire; the time is a FakeClock.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, cast

from aiortc.codecs.vpx import VpxPayloadDescriptor

from rtchub.media.fanout import ForwardingStats
from rtchub.media.keyframes import h264_starts_keyframe_with_sps, vp8_starts_keyframe
from rtchub.media.sfu.adaptive import AdaptationDriver, SimulcastControl, SubscriberLink
from rtchub.media.sfu.demux import Demuxer
from rtchub.media.sfu.downtrack import Downtrack, payload_map
from rtchub.media.sfu.layers import STALE_AFTER, OneLayer
from rtchub.media.sfu.rtp import RID_URI, RRID_URI, RtpHeader, rtx_wrap
from rtchub.media.sfu.sdp import Codec, parse_sections
from rtchub.media.sfu.simulcast import receive_simulcast, simulcast_offered
from rtchub.media.sfu.uplink import InboundPacket, TrackUplink
from rtchub.media.sfu.vp8 import Vp8Descriptor, Vp8Rewriter
from tests.media.simulcast_support import (
    MID_ID,
    RID_ID,
    RIDS,
    RRID_ID,
    LayerSource,
    with_extensions,
)
from tests.media.test_sfu_downtrack import H264, VP8, VP8_RTX, Recorder, Sender
from tests.support import FakeClock

CHROMIUM_OFFER = (Path(__file__).with_name("chromium_simulcast_offer.sdp")).read_text()
FRAME = 0.05  # the fake camera's 20 fps


# -- SDP ---------------------------------------------------------------------------------


def test_chromiums_simulcast_offer_is_read() -> None:
    section = parse_sections(CHROMIUM_OFFER)[0]
    assert section.rids == ("q", "h", "f") and section.sends
    assert simulcast_offered(CHROMIUM_OFFER) == {"0": ("q;h;f", (10, 11))}


def test_the_answer_receives_simulcast_with_the_offers_extension_ids() -> None:
    # what aiortc answers to that offer (VP8 chosen, MID and abs-send-time kept)
    answer = "\r\n".join([
        "v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=group:BUNDLE 0",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "c=IN IP4 0.0.0.0", "a=recvonly", "a=mid:0",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=rtpmap:96 VP8/90000", "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96", ""])
    offered = simulcast_offered(CHROMIUM_OFFER)
    out = receive_simulcast(answer, offered)
    section = parse_sections(out)[0]
    assert section.extensions[RID_URI] == 10 and section.extensions[RRID_URI] == 11
    assert section.extensions["urn:ietf:params:rtp-hdrext:sdes:mid"] == 9
    assert section.rids == ("q", "h", "f")
    lines = out.split("\r\n")
    assert [x for x in lines if x.startswith("a=rid:")] == [
        "a=rid:q recv", "a=rid:h recv", "a=rid:f recv"]
    assert "a=simulcast:recv q;h;f" in lines
    assert receive_simulcast(out, offered) == out  # idempotent (the server's later offers)
    # a codec the SFU cannot switch layers of gets no simulcast: one encoding comes
    vp9 = answer.replace("VP8/90000", "VP9/90000")
    assert receive_simulcast(vp9, offered) == vp9


# -- packets -------------------------------------------------------------------------------


class Simulcast:
    """A simulcast uplink fed through its demuxer, with recording downtracks."""

    def __init__(self, h264: bool = False) -> None:
        self.clock = FakeClock()
        self.stats = ForwardingStats()
        self.upstream = Recorder()
        self.uplink = TrackUplink("video", self.upstream, 0xAAAA, self.stats,
                                  clock=self.clock)
        self.uplink.set_codecs({102: H264} if h264 else {96: VP8, 97: VP8_RTX})
        self.h264 = h264
        self.uplink.set_rids(RIDS)
        self.demux = Demuxer()
        self.demux.mid_id, self.demux.rid_id, self.demux.rrid_id = MID_ID, RID_ID, RRID_ID
        self.demux.add_track("0", self.uplink)
        self.sources = [LayerSource(i, 0x5000 + i, h264=h264) for i in range(3)]
        self.frame_no = 0
        self.payloads: set[bytes] = set()  # every payload the publisher sent

    def downtrack(self, ssrc: int = 0xB0B) -> tuple[Downtrack, Recorder]:
        outlet = Recorder()
        downtrack = Downtrack(self.uplink, outlet, cast(Any, Sender(ssrc)), self.stats,
                              cache_size=64)
        mine = (Codec(100, "H264", 90000, None, {"packetization-mode": "1"}, ()) if self.h264
                else Codec(100, "VP8", 90000, None, {}, ()))
        downtrack.configure(payload_map(self.uplink.codecs, {100: mine}), None)
        return downtrack, outlet

    def frames(self, count: int, layers: tuple[int, ...] = (0, 1, 2),
               keyframes: dict[int, set[int]] | None = None) -> None:
        """``count`` frames of ``layers``, 50 ms apart; ``keyframes[layer]`` names the
        frames (counted from this call) where that layer sends a keyframe."""
        for n in range(count):
            for layer in layers:
                key = n in (keyframes or {}).get(layer, set()) or self.frame_no == 0
                for data in self.sources[layer].frame(self.frame_no, key):
                    self.payloads.add(data[RtpHeader.parse(data).payload_start:])
                    self.demux(data, int(self.clock() * 1000))
            self.frame_no += 1
            self.clock.advance(FRAME)


def plis(upstream: Recorder) -> list[int]:
    """The media SSRCs of the PLIs sent upstream, in order."""
    return [int.from_bytes(p[8:12], "big") for p in upstream.rtcp if p[1] == 206]


def check_continuous(sent: list[bytes]) -> list[int]:
    """Assert sequence numbers +1, timestamps never back, picture ids and TL0PICIDX +0/+1
    from packet to packet; return the picture ids."""
    headers = [RtpHeader.parse(p) for p in sent]
    descriptors = [Vp8Descriptor(p[h.payload_start:]) for p, h in zip(sent, headers,
                                                                      strict=True)]
    for (a, b), (da, db) in zip(itertools.pairwise(headers), itertools.pairwise(descriptors),
                                strict=True):
        assert (b.seq - a.seq) & 0xFFFF == 1
        assert (b.timestamp - a.timestamp) & 0xFFFFFFFF < 1 << 31
        assert da.picture_id is not None and db.picture_id is not None
        assert (db.picture_id - da.picture_id) % (1 << 15) in (0, 1)
        assert da.tl0 is not None and db.tl0 is not None
        assert (db.tl0 - da.tl0) % 256 in (0, 1)
        assert (db.picture_id == da.picture_id) == (b.timestamp == a.timestamp)
    return [d.picture_id for d in descriptors if d.picture_id is not None]


def test_each_layers_ssrc_and_rtx_are_learned_from_rid_and_routed() -> None:
    sc = Simulcast()
    sc.frames(3)
    assert [layer.ssrc for layer in sc.uplink.layers] == [0x5000, 0x5001, 0x5002]
    assert [layer.packets > 0 for layer in sc.uplink.layers] == [True] * 3
    assert sc.demux.unroutable == 0
    # a retransmission of layer h, on its own SSRC with the repaired-RID
    original = sc.sources[1].frame(99, False)[0]
    repair = with_extensions(rtx_wrap(original, 97, 1, 0x6001),
                             [(MID_ID, b"0"), (RRID_ID, b"h")])
    sc.demux(repair, 0)
    assert sc.uplink.layers[1].rtx_ssrc == 0x6001
    assert sc.demux.unroutable == 0
    # untagged packets of an SSRC never learned cannot be placed
    stranger = LayerSource(2, 0x7777, tagged=0)
    for data in stranger.frame(0, True):
        sc.demux(data, 0)
    assert sc.demux.unroutable > 0


def test_a_subscriber_switches_layers_only_at_keyframes_and_the_stream_stays_continuous(
) -> None:
    sc = Simulcast()
    downtrack, outlet = sc.downtrack()
    layers = downtrack.layers
    assert layers is not None
    layers.set_ceiling(0)  # set_quality("low"): what a new subscriber gets
    downtrack.start()
    sc.frames(4)
    assert layers.current == 0
    assert {RtpHeader.parse(p).payload_type for p in outlet.rtp} == {100}
    low = len(outlet.rtp)
    assert low > 0

    sc.upstream.rtcp.clear()
    layers.set_ceiling(2)  # high: a PLI for layer f at once, the old layer goes on meanwhile
    assert plis(sc.upstream) == [0x5002]
    sc.frames(3)
    assert layers.current == 0 and len(outlet.rtp) > low
    sc.frames(3, keyframes={2: {1}})  # f's keyframe at the second frame
    assert layers.current == 2 and layers.switches == 2

    sc.upstream.rtcp.clear()
    layers.set_ceiling(1)  # medium: down to h, again at its keyframe
    sc.frames(2)
    assert layers.current == 2 and plis(sc.upstream) == [0x5001]
    sc.frames(2, keyframes={1: {0}})
    assert layers.current == 1 and layers.switches == 3

    pids = check_continuous(outlet.rtp)
    assert len(set(pids)) >= sc.frame_no  # every frame of the clip reached the subscriber
    # every switch landed on a keyframe, and the payload after the descriptor is untouched
    for packet in outlet.rtp:
        header = RtpHeader.parse(packet)
        descriptor, rest = VpxPayloadDescriptor.parse(packet[header.payload_start:])
        assert descriptor.picture_id is not None and rest


def test_a_layer_that_stops_falls_back_to_the_next_down_and_comes_back() -> None:
    sc = Simulcast()
    downtrack, outlet = sc.downtrack()
    layers = downtrack.layers
    assert layers is not None
    layers.set_ceiling(2)
    downtrack.start()
    sc.frames(1)  # q arrives first, then h's and f's keyframes of the same frame: f
    assert layers.current == 2
    started = layers.switches
    sc.frames(int(1.5 / FRAME))
    rates = sc.uplink.layer_bitrates()
    assert rates[0] < rates[1] < rates[2]  # measured per layer over its window
    assert rates[0] > 0

    # the publisher's encoder drops f: once it is stale, h is chosen (a PLI for it)
    sc.upstream.rtcp.clear()
    frames_to_stale = int(STALE_AFTER / FRAME) + 1
    sc.frames(frames_to_stale, layers=(0, 1))
    assert layers.layer == 1 and layers.current == 2  # no h keyframe yet: nothing forwarded
    assert 0x5001 in plis(sc.upstream)
    sc.frames(2, layers=(0, 1), keyframes={1: {0}})
    assert layers.current == 1
    assert sc.uplink.layer_bitrates()[2] == 0 or not sc.uplink.layers[2].live(
        sc.clock(), STALE_AFTER)

    # f resumes (with a keyframe, as an encoder that restarts a layer sends): back up
    sc.frames(2, keyframes={2: {0}})
    assert layers.current == 2 and layers.switches == started + 2
    # adaptive quality lowers the target under the ceiling; the ceiling still bounds it
    layers.set_target(0)
    sc.frames(2, keyframes={0: {1}})
    assert layers.current == 0
    layers.set_target(2)
    layers.set_ceiling(1)
    sc.frames(2, keyframes={1: {1}, 2: {1}})
    assert layers.current == 1
    check_continuous(outlet.rtp)


def test_a_single_layer_track_is_never_switched() -> None:
    sc = Simulcast()
    sc.uplink.layers[1:] = []  # no simulcast: one encoding
    downtrack, outlet = sc.downtrack()
    assert downtrack.layers is not None
    downtrack.layers.set_ceiling(0)
    downtrack.start()
    sc.frames(3, layers=(0,))
    assert downtrack.layers.current == 0
    assert len(outlet.rtp) == sc.sources[0].sent
    first = RtpHeader.parse(outlet.rtp[0])
    assert vp8_starts_keyframe(outlet.rtp[0][first.payload_start:])
    # no switch: the payloads are passed on as they came, not copied and rewritten
    rewriter = Vp8Rewriter()
    assert all(rewriter.rewrite(1, p) is p for p in (b"\x90\x80\x01", b"\x10abc"))


def test_h264_layers_switch_at_an_idr_with_its_parameter_sets() -> None:
    sc = Simulcast(h264=True)
    downtrack, outlet = sc.downtrack()
    layers = downtrack.layers
    assert layers is not None
    layers.set_ceiling(0)
    downtrack.start()
    sc.frames(3)
    assert layers.current == 0
    switched_at = len(outlet.rtp)
    layers.set_ceiling(2)
    sc.frames(3, keyframes={2: {1}})
    assert layers.current == 2
    # the first packet of the new layer starts its SPS (the decoder needs it first)
    first = next(i for i, p in enumerate(outlet.rtp[switched_at:], switched_at)
                 if h264_starts_keyframe_with_sps(p[RtpHeader.parse(p).payload_start:])
                 and i > switched_at)
    headers = [RtpHeader.parse(p) for p in outlet.rtp]
    assert all((b.seq - a.seq) & 0xFFFF == 1 for a, b in itertools.pairwise(headers))
    assert headers[first].timestamp != headers[first - 1].timestamp
    # nothing in an H.264 payload is rewritten
    for packet, header in zip(outlet.rtp, headers, strict=True):
        assert packet[header.payload_start:] in sc.payloads


def test_a_recorder_sees_one_continuous_stream_of_the_best_layer() -> None:
    sc = Simulcast()
    one = OneLayer(sc.uplink)
    kept: list[tuple[int, int, bytes]] = []
    layers_kept: list[int] = []

    def listen(packet: InboundPacket) -> None:
        out = one(packet)
        if out is not None:
            kept.append(out)
            layers_kept.append(packet.layer)

    sc.uplink.listen("recorder", listen)
    sc.frames(4)
    assert layers_kept[-1] == 2  # f, the best, from its first keyframe on
    sc.frames(int(STALE_AFTER / FRAME) + 1, layers=(0, 1))  # f stops: h, at its keyframe
    sc.frames(2, layers=(0, 1), keyframes={1: {0}})
    assert layers_kept[-1] == 1
    seqs = [seq for seq, _, _ in kept]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    pids = [Vp8Descriptor(payload).picture_id for _, _, payload in kept]
    assert all(a is not None and b is not None and (b - a) % (1 << 15) in (0, 1)
               for a, b in itertools.pairwise(pids))


def test_adaptation_drives_a_real_simulcast_downtrack_and_caps_its_publisher() -> None:
    """Adaptive quality on the simulcast forwarding itself (SimulcastControl over a real
    downtrack and uplink): a subscriber whose estimate fits only q is taken down to q at
    q's keyframe although it asked for high; the publisher is capped to what is needed
    (the REMB it is sent drops below the configured cap); when the estimate grows the
    subscriber climbs one layer at a time, each after up_after seconds, and the cap goes."""
    sc = Simulcast()
    downtrack, outlet = sc.downtrack()
    layers = downtrack.layers
    assert layers is not None
    layers.set_ceiling(2)                     # set_quality high
    downtrack.start()
    sc.frames(int(1.5 / FRAME))               # every layer measured over a whole window
    rates = sc.uplink.layer_bitrates()
    assert layers.current == 2 and 0 < rates[0] < rates[1] < rates[2]
    driver = AdaptationDriver(sc.clock, interval=1.0)
    control = SimulcastControl(downtrack)
    sc.uplink.cap_source = lambda: driver.cap_for("cam")
    policy = driver.policy
    downtrack.estimate = int((rates[0] + rates[1]) / 2 / policy.headroom)   # fits q only
    driver.add("bob", control, lambda: SubscriberLink(downtrack.estimate), "cam")
    assert layers.target == 0
    sc.frames(2, keyframes={0: {1}})
    assert layers.current == 0
    capped = sc.uplink.remb_target(10_000, 2_500_000, 5.0)
    assert capped < 2_500_000 and capped == driver.cap_for("cam")

    downtrack.estimate = 10 * rates[2]        # room for everything now: up slowly
    for expected in (1, 2):
        waited = 0.0
        while layers.target < expected:
            assert waited <= policy.up_after + 2 * driver.interval, "never stepped up"
            sc.frames(int(driver.interval / FRAME))
            waited += driver.interval
            driver.step()
        assert waited >= policy.up_after - driver.interval
        assert layers.target == expected
        sc.frames(2, keyframes={expected: {1}})
        assert layers.current == expected
    assert driver.cap_for("cam") is None
    assert sc.uplink.remb_target(10_000, 2_500_000, 5.0) == 2_500_000
    check_continuous(outlet.rtp)
