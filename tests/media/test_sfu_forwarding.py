"""The SFU's server-side peers forward real aiortc media between real aiortc clients."""

from __future__ import annotations

import logging

import pytest

from rtchub.media import aiortc_adapter as adapter
from rtchub.media.sfu import SubscriptionState
from tests.media.sfu_support import PictureTrack, next_frame, room
from tests.voice.audio import ToneTrack, dominant_frequency, mono_samples

pytestmark = pytest.mark.webrtc


async def test_two_publishers_each_receive_the_others_video_and_audio() -> None:
    await adapter.check_assumptions()
    async with room() as r:
        alice, bob = await r.join("alice"), await r.join("bob")
        alice.publish(PictureTrack(160, 96, seed=1))
        alice.publish(ToneTrack(440))
        bob.publish(PictureTrack(128, 64, seed=2))
        bob.publish(ToneTrack(880))
        await alice.negotiate()
        await bob.negotiate()
        await r.until(lambda: len(r.published) == 4)
        for subscriber, publisher in ((alice, bob), (bob, alice)):
            for track in r.tracks_of(publisher):
                subscriber.peer.subscribe(track)
        await r.until(lambda: all(len(c.received) == 2 for c in (alice, bob)))
        await r.until(lambda: all(s.state is SubscriptionState.ACTIVE
                                  for c in (alice, bob) for s in c.peer.subscriptions))
        sizes = {"alice": (128, 64), "bob": (160, 96)}
        tones = {"alice": 880, "bob": 440}
        for client in (alice, bob):
            video = next(t for t in client.received.values() if t.kind == "video")
            audio = next(t for t in client.received.values() if t.kind == "audio")
            frame = await next_frame(video)
            assert (frame.width, frame.height) == sizes[client.name]
            heard: list[float] = []
            while len(heard) < 48000 // 2:
                heard += mono_samples(await next_frame(audio))
            assert abs(dominant_frequency(heard[-9600:], 48000) - tones[client.name]) <= 20
        # every RTP packet took the SFU's path (aiortc never parsed, let alone decoded one)
        for client in (alice, bob):
            assert client.peer.rtp_received > 0
            assert client.peer.rtp_unroutable == 0
        assert r.stats.packets_forwarded > 0
        # aiortc's transport statistics still count what the SFU's wire moved
        report = await alice.peer.pc.getStats()
        transport = next(v for v in report.values() if v.type == "transport")
        assert transport.packetsSent >= alice.peer.rtp_sent > 0
        assert transport.packetsReceived >= alice.peer.rtp_received > 0
        assert all(c.peer.connection_state == "connected" for c in (alice, bob))


@pytest.mark.parametrize("codec", ["video/VP8", "video/H264"])
async def test_three_participants_decode_everyone_elses_video(
        codec: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aiortc")
    async with room() as r:
        clients = [await r.join(name) for name in ("ann", "ben", "cid")]
        sizes = {"ann": (96, 64), "ben": (128, 96), "cid": (160, 128)}
        for seed, client in enumerate(clients):
            client.publish(PictureTrack(*sizes[client.name], seed=seed), codec)
            client.publish(ToneTrack(300 + 200 * seed))
            await client.negotiate()
        await r.until(lambda: len(r.published) == 6)
        for client in clients:
            for track in r.published:
                if track.publisher_id != client.name:
                    client.peer.subscribe(track)
        await r.until(lambda: all(len(c.received) == 4 for c in clients))
        for client in clients:
            for track in r.published:
                if track.publisher_id == client.name or track.kind != "video":
                    continue
                remote = client.track_from(track)
                assert remote is not None, f"{client.name} has no track for {track}"
                for _ in range(10):
                    frame = await next_frame(remote)
                    assert (frame.width, frame.height) == sizes[track.publisher_id]
        assert track.codecs[0].lower() == codec.lower() or track.kind == "audio"
        decode_errors = [r.getMessage() for r in caplog.records if "decode" in r.getMessage()]
        assert decode_errors == []
