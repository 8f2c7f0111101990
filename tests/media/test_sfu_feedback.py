"""Feedback through the SFU: NACK answered with RTX, PLI upstream, REMB capped, audio levels."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiortc import AudioStreamTrack
from aiortc.rtp import RTCP_PSFB_APP, RTCP_PSFB_PLI, RtcpPsfbPacket, unpack_remb_fci

from rtchub.media import aiortc_adapter as adapter
from rtchub.media.sfu import ActiveSpeakerDetector, SfuMediaConfig, SubscriptionState
from rtchub.media.sfu.loss import DropEvery
from tests.media.sfu_support import LOOPBACK, Client, PictureTrack, Room, next_frame, room
from tests.support import FakeClock
from tests.voice.audio import ToneTrack

pytestmark = pytest.mark.webrtc


class Upstream:
    """What a publishing client's sender is told (PLI and REMB), as it arrives."""

    def __init__(self, r: Room, client: Client, kind: str = "video") -> None:
        self.plis = 0
        self.rembs: list[tuple[int, list[int]]] = []
        self._room = r
        sender = next(t.sender for t in client.pc.getTransceivers() if t.kind == kind)
        adapter.watch_sender_rtcp(sender, self._seen)

    def _seen(self, packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
            self.plis += 1
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            bitrate, ssrcs = unpack_remb_fci(packet.fci)
            self.rembs.append((bitrate, ssrcs))
        self._room.changes.notify()


async def pair(r: Room, video: Any, codec: str | None = None) -> tuple[Client, Client]:
    alice = await r.join("alice")
    alice.publish(video, codec)
    await alice.negotiate()
    bob = await r.join("bob")
    bob.publish(ToneTrack(880))
    await bob.negotiate()
    await r.until(lambda: len(r.tracks_of(alice)) == 1 and len(r.tracks_of(bob)) == 1)
    # connected both ways: what the server sends upstream now reaches the publisher
    await r.until(lambda: alice.peer.connection_state == bob.peer.connection_state
                  == "connected")
    return alice, bob


async def test_lost_packets_are_resent_as_rtx_and_the_video_still_decodes(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aiortc")
    async with room() as r:
        alice, bob = await pair(r, PictureTrack(320, 240, seed=4))
        sub = bob.peer.subscribe(r.tracks_of(alice)[0])
        await r.until(lambda: sub.state is SubscriptionState.ACTIVE)
        assert sub.downtrack is not None
        received: list[int] = []
        receiver = next(t.receiver for t in bob.pc.getTransceivers() if t.mid == sub.mid)
        adapter.watch_receiver(receiver, lambda p: received.append(p.payload_type))
        sub.downtrack.loss = DropEvery(7)  # one packet in seven never leaves the server
        await r.until(lambda: r.stats.retransmitted >= 10)
        assert r.stats.nack_hits >= 10
        remote = bob.track_from(sub.track)
        for _ in range(30):
            frame = await next_frame(remote)
            assert (frame.width, frame.height) == (320, 240)
        assert len(set(received)) == 2  # the media and the RTX payload type arrived
        assert [m for m in caplog.records if "decode" in m.getMessage()] == []


async def test_a_subscription_asks_for_a_keyframe_and_subscriber_plis_go_upstream() -> None:
    clock = FakeClock()  # the keyframe throttle lets one request through per tick
    async with room(clock=clock) as r:
        alice, bob = await pair(r, PictureTrack(96, 64))
        upstream = Upstream(r, alice)
        sub = bob.peer.subscribe(r.tracks_of(alice)[0])
        await r.until(lambda: upstream.plis == 1)  # the PLI on subscribe
        await r.until(lambda: sub.state is SubscriptionState.ACTIVE)
        await next_frame(bob.track_from(sub.track))
        receiver = next(t.receiver for t in bob.pc.getTransceivers() if t.mid == sub.mid)
        assert sub.downtrack is not None
        # within the throttle interval, the subscriber's PLI is folded into the one sent
        await adapter.request_keyframe(receiver, sub.downtrack.ssrc)
        await r.until(lambda: r.stats.keyframe_requests_in == 1)
        assert sub.track.uplink.keyframes_combined >= 1
        clock.advance(1.0)
        # later, the next one goes upstream
        await adapter.request_keyframe(receiver, sub.downtrack.ssrc)
        await r.until(lambda: upstream.plis == 2)
        assert r.stats.keyframe_requests_in == 2


@pytest.mark.parametrize("cap", [300_000, 20_000_000])
async def test_remb_upstream_is_the_subscribers_estimate_capped_by_the_config(cap: int) -> None:
    # aiortc's receive-side estimator says about 1-2 Mbps on loopback: above the low
    # cap, below the high one
    config = SfuMediaConfig(node_ips=LOOPBACK, video_max_bitrate=cap, remb_interval=0.2)
    async with room(config) as r:
        alice, bob = await pair(r, PictureTrack(320, 240, seed=5))
        upstream = Upstream(r, alice)
        await r.until(lambda: len(upstream.rembs) >= 1)
        # nobody subscribed yet: the cap holds
        video = r.tracks_of(alice)[0]
        assert upstream.rembs[-1] == (cap, [video.uplink.layers[0].ssrc])
        sub = bob.peer.subscribe(video)
        # bob's aiortc receiver estimates from the abs-send-time the SFU writes
        await r.until(lambda: sub.downtrack is not None and sub.downtrack.estimate is not None)
        assert sub.downtrack is not None and sub.downtrack.estimate is not None
        if cap < sub.downtrack.estimate:
            count = len(upstream.rembs)
            await r.until(lambda: len(upstream.rembs) >= count + 3)
            assert all(bitrate == cap for bitrate, _ in upstream.rembs)
        else:
            # the subscriber's estimate, not the cap, reaches the publisher
            await r.until(lambda: upstream.rembs[-1][0] != cap)
            assert config.video_min_bitrate <= upstream.rembs[-1][0] < cap


async def test_audio_levels_of_published_audio_make_an_active_speaker() -> None:
    async with room() as r:
        loud = await r.join("loud")
        loud.publish(ToneTrack(440, amplitude=0.5))
        await loud.negotiate()
        quiet = await r.join("quiet")
        quiet.publish(AudioStreamTrack())  # aiortc's silence
        await quiet.negotiate()
        await r.until(lambda: len(r.published) == 2)
        levels: dict[str, list[int]] = {"loud": [], "quiet": []}
        speakers: list[str | None] = []
        clock = [0.0]

        def spoke(who: str | None) -> None:
            speakers.append(who)
            r.changes.notify()

        detector: ActiveSpeakerDetector[str] = ActiveSpeakerDetector(spoke)
        for track in r.published:
            def heard(level: int, voice: bool, who: str = track.publisher_id) -> None:
                levels[who].append(level)
                clock[0] += 0.02
                detector.observe(who, level, clock[0])
                r.changes.notify()

            track.on_audio_level = heard
        await r.until(lambda: len(levels["loud"]) >= 50 and len(levels["quiet"]) >= 50)
        assert max(levels["loud"][-20:]) <= 10  # a half-scale sine: about -9 dBov
        assert min(levels["quiet"][-20:]) == 127  # digital silence
        assert speakers == ["loud"]
