"""Issue 11's loss proof: loss injected on the way to one subscriber steps it down, the
other keeps the top layer, and it climbs back once the loss stops.

A light publisher (tests/media/simulcast_publisher.py: three VP8 clips encoded
beforehand, 160x90, 320x180 and 640x360, sent as Chromium sends simulcast, on three
SSRCs with MID and RID) publishes into an SFU call room; two aiortc participants
subscribe, both ask for high and decode what they get. The media plane's loss switch
then drops every fourth packet the server sends one of them (``Downtrack.loss``,
exact and deterministic; nothing is dropped on the way to the other).

The hub runs on a :class:`~tests.support.FakeClock`: the quality monitor samples and
the adaptation driver decides only when the test moves that clock, one interval at a
time, after the event it needs happened for real (a receiver report showing the loss,
or a clean one, reached the server; a subscriber decoded the layer it was switched to).
So the decisions and their spacing are exact whatever the machine's load: the lossy
subscriber goes down one layer at each of the two decisions while its reports show the
loss, and up one layer ``CALL_ADAPTIVE_UP_AFTER`` after its reports came clean, then
another after as long again. Media, RTCP and the layer switches run in real time.

What a starved process could do on its own is kept out, without making the claim
unprovable: the publisher, the server and the subscribers share one event loop, so a
stall pauses sender and receivers together and nothing overflows a socket buffer (a
browser publisher in another process did, and the clean subscriber saw real loss); the
subscribers negotiate no abs-send-time, so they send no REMB (aiortc's delay-based
estimate reads event-loop lag as congestion) and adaptation works from loss alone, its
"estimate unknown" path; and the round-trip limit is out of reach (a report handled
late reads as a long round trip). The estimate's and round trip's rules are tested on
the policy in tests/media/test_adaptive.py. The clean subscriber's loss is whatever it
really is: any decision about it fails the test.

Chromium's own simulcast is proven elsewhere (tests/media/test_sfu_simulcast_browser.py,
tests/e2e/test_sfu_simulcast_app.py); tests/e2e/scenario_sfu_adaptive_loss.py is the
same story by hand on the whole stack, with Chromium publishing.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError

from rtchub.config import CallSettings
from rtchub.features.calls.quality_rules import ConnectionQuality
from rtchub.features.calls.routes import CALL_MEDIA
from rtchub.media import aiortc_adapter as adapter
from rtchub.media.sfu.layers import LayerSwitch
from rtchub.media.sfu.loss import DropEvery
from tests.calls.support import WAIT, Call, Participant, call
from tests.media.simulcast_publisher import (
    SilentTrack,
    encode_clip,
    layer_sizes,
    send_layers,
    simulcast_offer,
)
from tests.support import FakeClock

pytestmark = pytest.mark.webrtc

ROOM = "adaptive"
INTERVAL = 1.0  # CALL_QUALITY_INTERVAL here; the adaptation driver decides every second
UP_AFTER = 3.0  # CALL_ADAPTIVE_UP_AFTER here
EVERY = 4  # one packet in four to the lossy subscriber never leaves the server
FPS = 15  # the publisher's frame rate; its clips are FPS frames long: a keyframe a second
SIZES = layer_sizes(640, 360, 600_000)  # (width, height, bits/s) of q, h and f
WIDTHS = [width for width, _, _ in SIZES]
ABS_SEND_TIME = re.compile(r"a=extmap:\d+ http://www\.webrtc\.org/experiments/rtp-hdrext/"
                           r"abs-send-time\r\n")


def without_estimates(sdp: str) -> str:
    """The server's SDP without abs-send-time: aiortc then sends no REMB."""
    return ABS_SEND_TIME.sub("", sdp)


@dataclass
class Watcher:
    """Decodes what one subscriber receives of a track: the width of the latest frame."""

    person: Participant
    width: int = 0
    widths: list[int] = field(default_factory=list)  # each width it changed to, in order
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def start(self, track_id: str) -> None:
        track = self.person.received[track_id]

        async def drain() -> None:
            with contextlib.suppress(MediaStreamError):
                while True:
                    frame: Any = await track.recv()
                    if frame.width != self.width:
                        self.width = frame.width
                        self.widths.append(frame.width)
                        self.person.changes.notify()

        self.task = asyncio.get_running_loop().create_task(drain())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


async def publish_simulcast(person: Participant) -> asyncio.Task[None]:
    """Make ``person`` publish three simulcast layers (see the module doc); the task
    sends them until cancelled."""
    clips = [encode_clip(FPS, width, height, bitrate) for width, height, bitrate in SIZES]
    transceiver = person.pc.addTransceiver(SilentTrack(), direction="sendonly")
    transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                     if c.mimeType.lower() in ("video/vp8", "video/rtx")])
    offered: list[tuple[int, int]] = []

    def as_chromium(sdp: str) -> str:
        rewritten, pt, mid_id = simulcast_offer(sdp)
        offered.append((pt, mid_id))
        return rewritten

    person.offer_filter = as_chromium
    try:
        await person.negotiate()
    finally:
        person.offer_filter = None
    dtls = adapter.bundled_transport(person.pc)
    assert dtls is not None and offered
    wire = adapter.SrtpWire(dtls, lambda data, arrival: None)  # it receives nothing
    pt, mid_id = offered[-1]
    mid = transceiver.mid
    assert mid is not None

    async def send() -> None:
        try:
            await send_layers(wire, clips, pt, mid_id, FPS, mid)
        finally:
            wire.close()

    return asyncio.get_running_loop().create_task(send())


@pytest.mark.timeout(180)  # each wait below is bounded by WAIT; this bounds their sum
async def test_loss_to_one_subscriber_steps_it_down_and_back_up() -> None:
    clock = FakeClock()
    settings = CallSettings(quality_interval=INTERVAL, adaptive_up_after=UP_AFTER)
    async with call(clock=clock, calls=settings) as c:
        await _prove(c, clock)


async def _prove(c: Call, clock: FakeClock) -> None:
    media = c.srv.server.app[CALL_MEDIA]
    adaptation, monitor = media.adaptation, media.quality
    assert adaptation is not None and monitor is not None  # both on by default
    policy = adaptation.driver.policy
    assert policy.up_after == UP_AFTER
    # a report handled late by this loaded process reads as a long round trip: this test
    # is about loss (the round-trip rule is tested on the policy)
    adaptation.driver.policy = replace(policy, rtt_down=60_000.0)
    loss_down, loss_hold = policy.loss_down, policy.loss_hold

    decisions: dict[str, list[tuple[int, float]]] = {"bob": [], "cat": []}

    def decided(key: Hashable, layer: int, now: float) -> None:
        assert isinstance(key, tuple)
        decisions[key[1]].append((layer, now))
        c.changes.notify()

    adaptation.driver.on_change = decided
    qualities: dict[str, list[ConnectionQuality]] = {"bob": [], "cat": []}  # on change

    def measured(peer_id: str, quality: ConnectionQuality) -> None:
        qualities.setdefault(peer_id, []).append(quality)
        c.changes.notify()

    stop_listening = monitor.on_quality_change(measured)
    ann = await c.join("ann", ROOM, media=False)
    sending = await publish_simulcast(ann)
    watchers: dict[str, Watcher] = {}
    try:
        c.sdp_filter = without_estimates  # for the subscribers
        bob = await c.join("bob", ROOM, media=False)
        cat = await c.join("cat", ROOM, media=False)

        def camera() -> str | None:
            return next((t["track_id"] for t in bob.tracks if t["publisher"] == "ann"), None)

        await c.until(lambda: (track := camera()) is not None
                      and all(track in p.received for p in (bob, cat)))
        track_id = camera()
        assert track_id is not None
        for person in (bob, cat):
            assert "abs-send-time" not in person.pc.remoteDescription.sdp
            await person.send({"type": "set_quality", "track_id": track_id,
                               "quality": "high"})
            await person.sync()
            watchers[person.name] = Watcher(person)
            watchers[person.name].start(track_id)

        # every receiver report each subscriber's client sends the server is an event
        reports = {"bob": 0, "cat": 0}
        for name in reports:
            def seen(blocks: list[adapter.ReportBlock], infos: list[adapter.SenderInfo],
                     name: str = name) -> None:
                if blocks:
                    reports[name] += 1
                    c.changes.notify()

            assert adapter.watch_reports(media.peer(ROOM, name).pc, seen) is not None

        def layers(who: str) -> LayerSwitch:
            downtrack = media.downtrack(ROOM, who, track_id)
            assert downtrack is not None and downtrack.layers is not None
            return downtrack.layers

        def state() -> str:
            return "; ".join(
                f"{name}: layer {layers(name).current} target {layers(name).target} "
                f"decoded widths {watchers[name].widths} reports {reports[name]} "
                f"recent {monitor.recent(name, ROOM)} decisions {decisions[name]}"
                for name in ("bob", "cat"))

        async def until(condition: Callable[[], bool]) -> None:
            try:
                await c.changes.wait_for(condition, WAIT * 2)
            except TimeoutError:
                raise AssertionError(f"not reached within {WAIT * 2}s: {state()}") from None

        def forwarded(who: str, layer: int) -> bool:
            """The server forwards ``layer`` to ``who``, and ``who`` decodes it."""
            return layers(who).current == layer and watchers[who].width == WIDTHS[layer]

        def recent_loss(who: str) -> float | None:
            return monitor.recent(who, ROOM)[0]

        async def next_report(who: str, condition: Callable[[float], bool]) -> None:
            """Until a report from ``who`` arrives after now whose loss meets ``condition``."""
            mark = reports[who]
            await until(lambda: reports[who] > mark
                        and (loss := recent_loss(who)) is not None and condition(loss))

        # both started low (a new subscriber's ceiling until it asks) and climb to the
        # top layer they asked for, one layer per UP_AFTER (no estimate, no loss)
        for _ in range(int(3 * UP_AFTER / INTERVAL)):
            if all(decisions[name][-1][0] == 2 for name in decisions):
                break
            clock.advance(INTERVAL)
        assert all(decisions[name][-1][0] == 2 for name in decisions), state()
        await until(lambda: forwarded("bob", 2) and forwarded("cat", 2))
        clock.advance(INTERVAL)  # a sample before the loss: the baseline of the next
        assert all(decisions[name][-1][0] == 2 for name in decisions), state()
        mark = len(decisions["bob"])
        cat_mark = len(decisions["cat"]), len(qualities["cat"])

        def bobs() -> list[int]:
            """Bob's layer decisions since the loss began."""
            return [layer for layer, _ in decisions["bob"][mark:]]

        # the loss begins: to bob only
        downtracks = [s.downtrack for s in media.peer(ROOM, "bob").subscriptions
                      if s.downtrack is not None]
        assert len(downtracks) == 1
        downtracks[0].loss = DropEvery(EVERY)
        # his client's report shows it: at the next decision he goes one layer down
        await next_report("bob", lambda loss: loss >= loss_down)
        clock.advance(INTERVAL)
        first_down = clock()
        assert decisions["bob"][mark:] == [(1, first_down)], state()
        # the next report covers only lossy time: its interval's figures are bob's loss,
        # and the decision after it takes him one more layer down
        await next_report("bob", lambda loss: loss >= loss_down)
        clock.advance(INTERVAL)
        assert decisions["bob"][mark:] == [(1, first_down), (0, first_down + INTERVAL)], \
            state()
        lossy = monitor.get_quality("bob", ROOM)
        assert lossy is not None and lossy.receive_loss is not None, lossy
        assert lossy.receive_loss >= loss_down, lossy
        assert any(w.startswith("high packet loss") for w in lossy.warnings), lossy
        assert lossy.score <= 40, lossy  # 10 % loss or more costs 60 points
        # his own quality frame says so too (the room's report after the interval)
        await until(lambda: (bob.quality.get("bob", {}).get("receive_loss") or 0)
                    >= loss_down)
        # he really gets the low layer, and cat the top one (cat's switch falls back by
        # itself only while a layer stops arriving, so this is awaited, not read once)
        await until(lambda: forwarded("bob", 0) and forwarded("cat", 2))

        # the loss stops: once a clean report came, he climbs one layer per UP_AFTER
        downtracks[0].loss = None
        await next_report("bob", lambda loss: loss <= loss_hold)
        clock.advance(INTERVAL)
        clean_from = clock()  # the first decision on a clean link
        assert bobs() == [1, 0], state()
        while bobs() == [1, 0] and clock() - clean_from < UP_AFTER + 0.5:
            clock.advance(INTERVAL)
        assert decisions["bob"][mark + 2:] == [(1, clean_from + UP_AFTER)], state()
        await until(lambda: forwarded("bob", 1))
        up = clock()
        while bobs() == [1, 0, 1] and clock() - up < UP_AFTER + 0.5:
            clock.advance(INTERVAL)
        assert decisions["bob"][mark + 3:] == [(2, up + UP_AFTER)], state()
        await until(lambda: forwarded("bob", 2) and forwarded("cat", 2))
        # and his figures are clean again
        await next_report("bob", lambda loss: loss <= loss_hold)
        clock.advance(INTERVAL)
        clean = monitor.get_quality("bob", ROOM)
        assert clean is not None and clean.receive_loss is not None, clean
        assert clean.receive_loss <= loss_hold, clean
        assert not any(w.startswith("high packet loss") for w in clean.warnings), clean
        # cat kept the top layer all along, as far as the server decided, and his own
        # figures never showed the loss
        assert decisions["cat"][cat_mark[0]:] == [], state()
        assert all((q.receive_loss or 0) < loss_down for q in qualities["cat"][cat_mark[1]:]), \
            qualities["cat"]
        assert bobs() == [1, 0, 1, 2], state()
        print(f"decoded widths: {state()}", flush=True)
    finally:
        stop_listening()
        adaptation.driver.on_change = None
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        for watcher in watchers.values():
            await watcher.stop()
