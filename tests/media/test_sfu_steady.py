"""The downtrack's steady path sends exactly what its full path sends.

A downtrack sends most packets on a short path that skips the checks which
would only say yes. These tests feed the same real VP8 packets (aiortc's encoder
and packetizer) to two downtracks with the same starting points, one of which
can never take that path (a loss switch that drops nothing), through layer
switches, reordering, duplicates, a publisher restart, a hold and a failed send,
and compare the bytes on their wires. :class:`Continuity` is checked against the
:class:`~rtchub.media.forwarding.Rewriter` it mirrors.
"""

from __future__ import annotations

import random
from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from rtchub.media.forwarding import Rewriter
from rtchub.media.sfu.continuity import Continuity
from rtchub.media.sfu.downtrack import Downtrack, payload_map
from rtchub.media.sfu.loss import DropEvery
from rtchub.media.sfu.rtp import ExtensionWriter, RtpHeader
from rtchub.media.sfu.sdp import Codec
from rtchub.media.sfu.uplink import InboundPacket
from tests.media.test_sfu_downtrack import Plane, Recorder, Sender, vp8_packets
from tests.media.test_sfu_simulcast import Simulcast, check_continuous

NEVER = 10 ** 9  # a DropEvery that never drops: the downtrack never takes the steady path


class Flaky(Recorder):
    """An outlet whose sends fail while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def send_rtp(self, packet: bytes) -> bool:
        if self.down:
            return False
        return super().send_rtp(packet)


def twins(make: Any) -> tuple[Downtrack, Recorder, Downtrack, Recorder]:
    """Two downtracks from ``make`` with the same random starting points; the second
    always takes the full path."""
    state = random.getstate()
    steady, steady_out = make()
    random.setstate(state)
    full, full_out = make()
    full.loss = DropEvery(NEVER)
    return steady, steady_out, full, full_out


class Holdable:
    """A selector that holds everything while ``held``."""

    layer = 0

    def __init__(self) -> None:
        self.held = False

    def admit(self, packet: InboundPacket) -> bool:
        return not self.held


def test_one_layer_with_reordering_restarts_holds_and_failed_sends() -> None:
    plane = Plane()

    def make() -> tuple[Downtrack, Recorder]:
        outlet = Flaky()
        downtrack = Downtrack(plane.uplink, outlet, cast(Any, Sender(0xC0C)), plane.stats,
                              cache_size=64)
        subscriber = {100: Codec(100, "VP8", 90000, None, {}, ()),
                      101: Codec(101, "rtx", 90000, None, {"apt": "100"}, ())}
        downtrack.configure(payload_map(plane.uplink.codecs, subscriber),
                            ExtensionWriter(3, "7", 5))
        downtrack.start()
        return downtrack, outlet

    steady, steady_out, full, full_out = twins(make)
    packets = vp8_packets(40)
    rng = random.Random(7)
    order = list(range(len(packets)))
    for i in range(5, len(order) - 1, 7):  # swap neighbours now and then
        order[i], order[i + 1] = order[i + 1], order[i]
    selector = Holdable()
    for step, index in enumerate(order):
        if step == 60:
            steady.selector = full.selector = selector
            selector.held = True
        if step == 70:
            selector.held = False
        if step == 80:
            steady.selector = None
            full.selector = None
        flaky = cast(Flaky, steady_out), cast(Flaky, full_out)
        for outlet in flaky:
            outlet.down = 90 <= step < 93
        plane.demux(packets[index], 1000 + step * 3)
        if rng.random() < 0.1:  # a duplicate
            plane.demux(packets[index], 1000 + step * 3)
    # the publisher restarts on another SSRC (learned as the track's new SSRC)
    plane.demux.bind(plane.uplink, 0, 0x2222)
    for step, data in enumerate(vp8_packets(20, ssrc=0x2222)):
        plane.demux(data, 5000 + step * 3)
    assert len(steady_out.rtp) > 50
    assert steady_out.rtp == full_out.rtp


def test_simulcast_switches_send_the_same_bytes_on_both_paths() -> None:
    sc = Simulcast()

    def make() -> tuple[Downtrack, Recorder]:
        downtrack, outlet = sc.downtrack(0xD0D)
        assert downtrack.layers is not None
        downtrack.layers.set_ceiling(0)
        downtrack.start()
        return downtrack, outlet

    steady, steady_out, full, full_out = twins(make)
    sc.frames(4)
    for downtrack in (steady, full):
        assert downtrack.layers is not None
        downtrack.layers.set_ceiling(2)
    sc.frames(6, keyframes={2: {3}})
    for downtrack in (steady, full):
        assert downtrack.layers is not None
        downtrack.layers.set_ceiling(1)
    sc.frames(4, keyframes={1: {1}})
    sc.frames(30, layers=(0, 1))  # f stops: h goes on; then it all comes back
    sc.frames(10, keyframes={2: {0}})
    assert steady.layers is not None and steady.layers.switches >= 3
    assert len(steady_out.rtp) > 40
    check_continuous(steady_out.rtp)
    assert steady_out.rtp == full_out.rtp
    assert {RtpHeader.parse(p).ssrc for p in steady_out.rtp} == {0xD0D}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(-3, 40), st.integers(0, 9000),
                          st.integers(0, 200)), min_size=1, max_size=60),
       st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF))
def test_continuity_maps_as_the_rewriter_does(steps: list[tuple[int, int, int, int]],
                                              first_seq: int, first_ts: int) -> None:
    mine = Continuity(90000, first_seq, first_ts)
    theirs = Rewriter(90000, first_seq, first_ts)
    seqs = [100, 40000, 65530]
    stamps = [0, 1 << 31, 0xFFFFFF00]
    ms = 1000
    for source, seq_step, ts_step, ms_step in steps:
        seqs[source] = (seqs[source] + seq_step) & 0xFFFF
        stamps[source] = (stamps[source] + ts_step) & 0xFFFFFFFF
        ms += ms_step
        args = (source, seqs[source], stamps[source], ms)
        assert mine.translate(*args) == theirs.translate_pair(*args)
