"""One peer connection per participant, renegotiated as tracks and subscriptions change."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCRtpTransceiver

from rtchub.errors import SignalingTimeout
from rtchub.media.sfu import PublishedTrack, SfuMediaConfig, SubscriptionState
from tests.media.sfu_support import LOOPBACK, Client, PictureTrack, Room, next_frame, room
from tests.voice.audio import ToneTrack

pytestmark = pytest.mark.webrtc


def section(client: Client, mid: str | None) -> RTCRtpTransceiver:
    return next(t for t in client.pc.getTransceivers() if t.mid == mid)


async def publishing(r: Room, name: str, *tracks: object) -> Client:
    client = await r.join(name)
    for track in tracks:
        client.publish(track)  # type: ignore[arg-type]
    await client.negotiate()
    await r.until(lambda: len(r.tracks_of(client)) == len(tracks))
    return client


async def test_unsubscribing_leaves_a_section_the_next_subscription_reuses() -> None:
    async with room() as r:
        alice = await publishing(r, "alice", PictureTrack(96, 64, seed=1))
        carol = await publishing(r, "carol", PictureTrack(160, 96, seed=3))
        bob = await publishing(r, "bob", ToneTrack(440))
        first = bob.peer.subscribe(r.tracks_of(alice)[0])
        await r.until(lambda: first.state is SubscriptionState.ACTIVE)
        await r.until(lambda: bob.track_from(first.track) is not None)
        remote = bob.track_from(first.track)
        assert (await next_frame(remote)).width == 96
        sections = len(bob.pc.getTransceivers())

        bob.peer.unsubscribe(first)
        assert first.state is SubscriptionState.ENDED
        await r.until(lambda: section(bob, first.mid).currentDirection == "inactive")
        assert first.downtrack is not None and not first.downtrack.active
        assert r.tracks_of(alice)[0].subscriptions == []

        second = bob.peer.subscribe(r.tracks_of(carol)[0])
        await r.until(lambda: second.state is SubscriptionState.ACTIVE)
        assert second.mid == first.mid  # the inactive section came back to life
        assert len(bob.pc.getTransceivers()) == sections
        await r.until(lambda: section(bob, second.mid).currentDirection == "recvonly")
        # the same receiver now decodes carol's pictures (a keyframe first)
        for _ in range(60):
            frame = await next_frame(remote)
            if frame.width == 160:
                break
        assert (frame.width, frame.height) == (160, 96)


async def test_a_track_the_publisher_stops_ends_its_subscriptions() -> None:
    async with room() as r:
        alice = await r.join("alice")
        video = alice.publish(PictureTrack(96, 64))
        alice.publish(ToneTrack(440))
        await alice.negotiate()
        await r.until(lambda: len(r.tracks_of(alice)) == 2)
        bob = await publishing(r, "bob", ToneTrack(880))
        subs = [bob.peer.subscribe(t) for t in r.tracks_of(alice)]
        await r.until(lambda: all(s.state is SubscriptionState.ACTIVE for s in subs))
        ended: list[PublishedTrack] = []
        video_track = next(t for t in r.tracks_of(alice) if t.kind == "video")
        video_track.on_ended.append(ended.append)

        video.direction = "inactive"  # the browser's removeTrack
        await alice.negotiate()
        await r.until(lambda: video_track.ended)
        assert ended == [video_track]
        video_sub = next(s for s in subs if s.track is video_track)
        audio_sub = next(s for s in subs if s.track is not video_track)
        assert video_sub.state is SubscriptionState.ENDED
        assert audio_sub.state is SubscriptionState.ACTIVE
        await r.until(lambda: section(bob, video_sub.mid).currentDirection == "inactive")
        assert [t.kind for t in r.tracks_of(alice)] == ["audio"]
        # the audio keeps coming
        assert (await next_frame(bob.track_from(audio_sub.track))).sample_rate == 48000


async def test_a_track_published_later_is_subscribed_on_the_same_connection() -> None:
    async with room() as r:
        alice = await publishing(r, "alice", ToneTrack(440))
        bob = await publishing(r, "bob", ToneTrack(880))
        alice.publish(PictureTrack(128, 96))
        await alice.negotiate()
        await r.until(lambda: len(r.tracks_of(alice)) == 2)
        video = next(t for t in r.tracks_of(alice) if t.kind == "video")
        sub = bob.peer.subscribe(video)
        await r.until(lambda: sub.state is SubscriptionState.ACTIVE)
        await r.until(lambda: bob.track_from(video) is not None)
        assert (await next_frame(bob.track_from(video))).width == 128
        assert alice.pc.connectionState == bob.pc.connectionState == "connected"


async def test_glare_the_server_offer_wins_and_the_client_offers_again() -> None:
    async with room() as r:
        alice = await publishing(r, "alice", PictureTrack(96, 64))
        bob = await r.join("bob")
        bob.publish(PictureTrack(128, 64, seed=2))
        voice = bob.publish(ToneTrack(880))
        await bob.negotiate()
        await r.until(lambda: len(r.tracks_of(bob)) == 2)
        bob.hold = asyncio.Event()
        sub = bob.peer.subscribe(r.tracks_of(alice)[0])
        await r.until(lambda: bob.server_offers == 1)
        assert bob.peer.signaling_state == "have-local-offer"

        # bob stops its microphone and offers while the server's offer waits. (An aiortc
        # client cannot answer with a transceiver it has not negotiated yet, so it stops a
        # track here rather than adding one, which a browser would do just as well.)
        voice.direction = "inactive"
        offering = asyncio.ensure_future(bob.negotiate())
        await r.until(lambda: bob.offers_ignored == 1)
        assert not offering.done()
        bob.hold.set()  # bob rolls back (it never applied its offer), answers, offers again
        await asyncio.wait_for(offering, 10)
        assert bob.offers_ignored == 1
        await r.until(lambda: [t.kind for t in r.tracks_of(bob)] == ["video"])
        await r.until(lambda: sub.state is SubscriptionState.ACTIVE)
        assert (await next_frame(bob.track_from(sub.track))).width == 96


async def test_a_client_that_never_answers_fails_with_signaling_timeout() -> None:
    config = SfuMediaConfig(node_ips=LOOPBACK, signaling_timeout=0.5)
    async with room(config) as r:
        alice = await publishing(r, "alice", PictureTrack(96, 64))
        bob = await publishing(r, "bob", ToneTrack(880))
        bob.hold = asyncio.Event()  # never set: bob never answers
        sub = bob.peer.subscribe(r.tracks_of(alice)[0])
        await r.until(lambda: bool(bob.failures))
        assert isinstance(bob.failures[0], SignalingTimeout)
        await r.until(lambda: bob.peer.connection_state == "closed")
        assert sub.state is SubscriptionState.ENDED
        assert r.tracks_of(bob) == []
        assert r.tracks_of(alice)[0].subscriptions == []
