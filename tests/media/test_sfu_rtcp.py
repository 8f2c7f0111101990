"""The SFU's synchronous RTCP path, driven by real aiortc clients' RTCP.

Every SRTCP datagram a client sends the server is unprotected and handled in the
socket callback (``SrtpWire(rtcp=True)``, ``RtcpDispatch``), never by aiortc's
reader task: NACKs are answered, PLIs go upstream, REMBs are combined, receiver
reports reach the quality meter, and aiortc's ``getStats`` keeps its round-trip
times and remote statistics on both sides.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiortc.rtp import RtcpRrPacket
from aiortc.stats import RTCRemoteInboundRtpStreamStats, RTCRemoteOutboundRtpStreamStats

from rtchub.media import aiortc_adapter as adapter
from rtchub.media.sfu import SfuMediaConfig, SubscriptionState
from rtchub.media.sfu.loss import DropEvery
from rtchub.media.sfu.quality import PeerMeter
from tests.media.sfu_support import LOOPBACK, Client, PictureTrack, Room, next_frame, room
from tests.media.test_sfu_feedback import Upstream, pair
from tests.support import TIMEOUT, FakeClock
from tests.voice.audio import ToneTrack

pytestmark = pytest.mark.webrtc


async def subscribed(r: Room, publisher: Client, subscriber: Client) -> Any:
    """``subscriber`` receives ``publisher``'s video, a frame of it decoded."""
    sub = subscriber.peer.subscribe(r.tracks_of(publisher)[0])
    await r.until(lambda: sub.state is SubscriptionState.ACTIVE)
    await next_frame(subscriber.track_from(sub.track))
    assert sub.downtrack is not None
    return sub


async def test_nack_pli_and_remb_from_a_subscriber_are_handled_on_the_wire() -> None:
    clock = FakeClock()  # the keyframe throttle lets one request through per tick
    async with room(clock=clock) as r:
        alice, bob = await pair(r, PictureTrack(160, 120, seed=2))
        upstream = Upstream(r, alice)
        sub = await subscribed(r, alice, bob)
        receiver = next(t.receiver for t in bob.pc.getTransceivers() if t.mid == sub.mid)
        # a NACK for two packets bob got: answered from the server's cache
        got: list[int] = []

        def arrived(packet: Any) -> None:
            got.append(packet.sequence_number)
            r.changes.notify()

        adapter.watch_receiver(receiver, arrived)
        await r.until(lambda: len(got) >= 10)
        hits, rtcp = r.stats.nack_hits, bob.peer.rtcp_received
        await adapter.send_nack(receiver, sub.downtrack.ssrc, got[-3:-1])
        await r.until(lambda: r.stats.nack_hits >= hits + 2)
        assert bob.peer.rtcp_received > rtcp  # taken by the SFU's path, not aiortc's
        # a PLI from the subscriber goes upstream (the throttle's next tick)
        clock.advance(1.0)
        plis = upstream.plis
        await adapter.request_keyframe(receiver, sub.downtrack.ssrc)
        await r.until(lambda: upstream.plis == plis + 1)
        # bob's receive-side estimator sends REMB: it becomes his estimate for the track
        await r.until(lambda: sub.downtrack.estimate is not None)


async def test_two_subscribers_estimates_are_combined_upstream() -> None:
    config = SfuMediaConfig(node_ips=LOOPBACK, video_max_bitrate=20_000_000)
    # on a clock that stands still no estimate goes stale, however slow the machine
    async with room(config, clock=FakeClock()) as r:
        alice, bob = await pair(r, PictureTrack(160, 120, seed=3))
        carol = await r.join("carol")
        carol.publish(ToneTrack(440))
        await carol.negotiate()
        subs = [await subscribed(r, alice, bob), await subscribed(r, alice, carol)]
        await r.until(lambda: all(s.downtrack.estimate is not None for s in subs))
        estimates = [s.downtrack.estimate for s in subs]
        # what alice is told: the least of her subscribers' estimates, within the config
        expected = max(config.video_min_bitrate, min(config.video_max_bitrate, *estimates))
        assert alice.peer.send_remb() == expected


async def test_round_trip_times_and_remote_statistics_stay_in_get_stats() -> None:
    async with room() as r:
        alice, bob = await pair(r, PictureTrack(160, 120, seed=4))
        sub = await subscribed(r, alice, bob)
        loop = asyncio.get_running_loop()
        # the server's round trip to bob: a report block of bob's echoing the server's SR
        echoed: asyncio.Future[float] = loop.create_future()

        def seen(blocks: list[adapter.ReportBlock], infos: list[adapter.SenderInfo]) -> None:
            for block in blocks:
                if block.ssrc == sub.downtrack.ssrc and block.rtt is not None \
                        and not echoed.done():
                    echoed.set_result(block.rtt)

        assert adapter.watch_reports(bob.peer.pc, seen) is not None
        rtt = await asyncio.wait_for(echoed, TIMEOUT * 2)
        assert 0 <= rtt < 1
        stats = list((await bob.peer.pc.getStats()).values())
        remote_in = [s for s in stats if isinstance(s, RTCRemoteInboundRtpStreamStats)]
        assert any(s.kind == "video" and s.roundTripTime is not None for s in remote_in)
        # alice's sender reports reach the server's receiver of her track: the LSR its
        # receiver reports echo (so alice has a round trip too), and its remote statistics
        answered: asyncio.Future[None] = loop.create_future()

        def told(packet: Any) -> None:
            if isinstance(packet, RtcpRrPacket) and any(b.lsr for b in packet.reports) \
                    and not answered.done():
                answered.set_result(None)

        sender = next(t.sender for t in alice.pc.getTransceivers() if t.kind == "video")
        adapter.watch_sender_rtcp(sender, told)
        await asyncio.wait_for(answered, TIMEOUT * 2)
        server_side = list((await alice.peer.pc.getStats()).values())
        assert any(isinstance(s, RTCRemoteOutboundRtpStreamStats) and s.kind == "video"
                   and s.packetsSent > 0 for s in server_side)
        client_side = list((await alice.pc.getStats()).values())
        assert any(isinstance(s, RTCRemoteInboundRtpStreamStats) and s.kind == "video"
                   and s.roundTripTime is not None for s in client_side)


async def test_receiver_report_loss_reaches_the_quality_meter() -> None:
    async with room() as r:
        alice, bob = await pair(r, PictureTrack(160, 120, seed=6))
        sub = await subscribed(r, alice, bob)
        meter = PeerMeter(bob.peer, 0.0)
        assert meter.watch()
        # clean first: a receiver report of bob's says he gets (about) everything
        await r.until(lambda: (loss := meter.recent()[0]) is not None and loss < 2)
        sub.downtrack.loss = DropEvery(4)  # a quarter of the copies to bob never leave
        await r.until(lambda: (meter.recent()[0] or 0) > 5)
        # and a round-trip time (ms), once a report of bob's echoes a server SR
        await r.until(lambda: meter.recent()[1] is not None)


async def test_a_datagram_too_long_for_srtp_is_dropped_and_the_connection_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    async with room() as r:
        alice, bob = await pair(r, PictureTrack(160, 120, seed=7))
        sub = await subscribed(r, alice, bob)
        # straight from bob's socket to the server's: longer than libsrtp's buffer
        nominated = bob.pc.getTransceivers()[0].receiver.transport.transport._connection \
            ._nominated[1]
        remote = (nominated.remote_candidate.host, nominated.remote_candidate.port)
        for head in (b"\x80\xc9", b"\x80\x60"):  # as RTCP, as RTP
            nominated.protocol.transport.sendto(head + bytes(2000), remote)
        # bob's next RTCP, behind them on the same socket, is still handled
        hits = r.stats.nack_hits
        got: list[int] = []

        def arrived(packet: Any) -> None:
            got.append(packet.sequence_number)
            r.changes.notify()

        receiver = next(t.receiver for t in bob.pc.getTransceivers() if t.mid == sub.mid)
        adapter.watch_receiver(receiver, arrived)
        await r.until(lambda: len(got) >= 3)
        await adapter.send_nack(receiver, sub.downtrack.ssrc, got[-2:-1])
        await r.until(lambda: r.stats.nack_hits > hits)
        assert bob.peer.connection_state == "connected"
        # dropped quietly, not raised into the event loop's handler
        assert [m.getMessage() for m in caplog.records if m.levelno >= logging.ERROR] == []
