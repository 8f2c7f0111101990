"""The Python API on a running server: rooms, peers, the router and seed 003's errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from rtchub.calls import (
    AudioConfig,
    CallsConfig,
    CallsExtension,
    CodecNotSupported,
    InvalidQuality,
    InvalidSDP,
    NotInRoom,
    PeerAlreadyExists,
    PeerNotFound,
    RoomFull,
    RoomNotFound,
    ServerPeer,
    SessionDescription,
    SFUNotEnabled,
    SignalingFailed,
    SignalingTimeout,
    TrackNotFound,
    Unauthorized,
    VideoConfig,
    gather_on,
)
from rtchub.config import ConfigError
from rtchub.features.calls.routes import CALLS
from rtchub.features.calls.rules import Topology
from tests.media.sfu_support import PictureTrack, next_frame
from tests.support import TIMEOUT, FakeClock, Running, make_config, running

pytestmark = pytest.mark.webrtc


@asynccontextmanager
async def extension(**config: Any) -> AsyncIterator[tuple[Running, CallsExtension]]:
    async with running(make_config(node_ips=("127.0.0.1",))) as srv:
        yield srv, CallsExtension(srv.server.app, CallsConfig(**config))


class Client:
    """A participant's client: an aiortc peer driven through the API's ServerPeer."""

    def __init__(self, peer: ServerPeer) -> None:
        self.peer = peer
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tracks: asyncio.Queue[Any] = asyncio.Queue()
        self.pc.on("track", self.tracks.put_nowait)

    async def offer(self) -> None:
        gather_on(self.pc, "127.0.0.1")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.peer.set_remote_description(
            SessionDescription("offer", self.pc.localDescription.sdp))
        answer = await self.peer.create_answer()
        await self.peer.set_local_description(answer)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))

    async def answer_server(self) -> None:
        offer = await self.peer.create_offer()
        await self.peer.set_local_description(offer)
        await self.pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
        gather_on(self.pc, "127.0.0.1")
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.peer.set_remote_description(
            SessionDescription("answer", self.pc.localDescription.sdp))


async def test_the_router_subscribes_and_the_server_offers() -> None:
    async with extension(signaling_timeout=TIMEOUT * 2) as (_srv, ext):
        room = ext.create_call_room("r", topology="sfu")
        alice_peer = await room.join_call("alice")
        assert isinstance(alice_peer, ServerPeer)
        alice = Client(alice_peer)
        cam = PictureTrack(160, 120)
        bob: Client | None = None
        try:
            alice.pc.addTransceiver(cam, direction="sendonly")
            await alice.offer()
            # bob joins once alice has negotiated (see the report: subscriptions noted
            # before a participant's first offer never reach the media plane)
            bob_peer = await room.join_call("bob")
            assert isinstance(bob_peer, ServerPeer)
            bob = Client(bob_peer)
            bob.pc.addTransceiver("audio", direction="recvonly")
            await bob.offer()
            await bob.answer_server()          # the server offers alice's camera
            received = await asyncio.wait_for(bob.tracks.get(), TIMEOUT)
            frame = await next_frame(received)
            assert (frame.width, frame.height) == (160, 120)
            [info] = room.router.get_available_tracks()
            assert (info.publisher, info.kind, info.source) == ("alice", "video", "camera")
            assert room.router.get_receivers(info.track_id) == ["bob"]
            assert [t.direction for t in bob_peer.get_tracks()] == ["send"]
            assert [t.direction for t in alice_peer.get_tracks()] == ["recv"]
            room.router.set_quality(info.track_id, "bob", "low")
            assert room.router.get_quality(info.track_id, "bob") == "low"
            with pytest.raises(InvalidQuality):
                room.router.set_quality(info.track_id, "bob", "ultra")
            stats = await bob_peer.get_stats()
            assert stats["packets_sent"] > 0 and stats["tracks_subscribed"] == 1
            room.router.unsubscribe_from_track("bob", info.track_id)
            assert room.router.get_receivers(info.track_id) == []
            with pytest.raises(TrackNotFound):
                await bob_peer.remove_track(info.track_id)
            with pytest.raises(TrackNotFound):
                room.router.subscribe_to_track("bob", "alice", "no-such-track")
            with pytest.raises(TrackNotFound):
                room.router.subscribe_to_track("bob", "carol", info.track_id)
            room.start_screen_share("alice", info.track_id)
            [info] = room.router.get_available_tracks()
            assert info.source == "screen"
            assert [p.screen_sharing for p in room.get_participants()] == [True, False]
            room.stop_screen_share("alice")
        finally:
            cam.stop()
            await alice.pc.close()
            if bob is not None:
                await bob.pc.close()
            await ext.delete_call_room("r")
        with pytest.raises(RoomNotFound):
            ext.get_call_room("r")


async def test_create_offer_times_out_on_the_hubs_clock() -> None:
    clock = FakeClock()
    async with running(make_config(node_ips=("127.0.0.1",)), clock=clock) as srv:
        ext = CallsExtension(srv.server.app, CallsConfig(signaling_timeout=30))
        peer = await ext.create_call_room("r", topology="sfu").join_call("alice")
        waiting = asyncio.get_running_loop().create_task(peer.create_offer())
        await asyncio.sleep(0)  # the task runs up to its wait: its timer is set
        clock.advance(29.9)
        await asyncio.sleep(0)
        assert not waiting.done()
        clock.advance(0.2)  # 30 s of the hub's clock, milliseconds of real time
        with pytest.raises(SignalingTimeout):
            await asyncio.wait_for(waiting, TIMEOUT)
        await ext.get_call_room("r").leave("alice")


async def test_seed_003s_sentinel_errors_in_python() -> None:
    async with extension(signaling_timeout=0.05) as (srv, ext):
        with pytest.raises(RoomNotFound):
            ext.get_call_room("nope")
        small = ext.create_call_room("small", max_members=1, topology="sfu")
        assert (small.name, small.topology, small.max_members) == ("small", "sfu", 1)
        peer = await small.join_call("alice")
        with pytest.raises(PeerAlreadyExists):
            await small.join_call("alice")
        with pytest.raises(RoomFull):
            await small.join_call("bob")
        with pytest.raises(PeerNotFound):
            small.get_peer("bob")
        with pytest.raises(InvalidSDP):
            SessionDescription("offer", "hello")
        with pytest.raises(SignalingFailed):
            await peer.create_answer()
        with pytest.raises(SignalingTimeout):
            await peer.create_offer()  # nothing changed: the server has nothing to offer
        with pytest.raises(InvalidSDP):
            await peer.set_local_description(SessionDescription("answer", "v=0\r\n"))
        await small.leave("alice")
        with pytest.raises(NotInRoom):
            await small.leave("alice")
        mesh = ext.create_call_room("mesh")
        assert mesh.topology == "mesh"
        with pytest.raises(SFUNotEnabled):
            mesh.router.subscribe_to_track("a", "b", "t")
        with pytest.raises(SFUNotEnabled):
            ext.get_sfu_router("mesh").set_quality("t", "a", "low")
        with pytest.raises(SFUNotEnabled):
            await ext.recorder.start("mesh")
        # auth required and no secret: nobody gets in over the wire
        calls = srv.server.app[CALLS]
        with pytest.raises(Unauthorized, match="no token secret"):
            calls.authorize("small", Topology.SFU, None, "eve")


async def test_a_client_offering_no_allowed_codec_gets_codec_not_supported() -> None:
    async with extension(video=VideoConfig(codecs=("H264",)),
                         audio=AudioConfig(enabled=False)) as (_srv, ext):
        room = ext.create_call_room("h264", topology="sfu")
        peer = await room.join_call("alice")
        assert isinstance(peer, ServerPeer)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        cam = PictureTrack(160, 120)
        try:
            transceiver = pc.addTransceiver(cam, direction="sendonly")
            transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities(
                "video").codecs if c.mimeType == "video/VP8"])
            gather_on(pc, "127.0.0.1")
            await pc.setLocalDescription(await pc.createOffer())
            with pytest.raises(CodecNotSupported):
                await peer.set_remote_description(
                    SessionDescription("offer", pc.localDescription.sdp))
        finally:
            cam.stop()
            await pc.close()


@pytest.mark.parametrize("config,message", [
    ({"video": VideoConfig(min_bitrate=3_000_000)},
     "video.min_bitrate=3000000 is above video.max_bitrate=2500000"),
    ({"video": VideoConfig(codecs=())}, "video.codecs is empty while video.enabled is on"),
    ({"audio": AudioConfig(codecs=("aac",))}, "audio.codecs='aac': expected"),
    ({"video": VideoConfig(codecs=("VP9",))}, "('VP9' is not one)"),
    ({"topology": "mcu"}, "topology: expected 'mesh' or 'sfu'"),
    ({"token_secret": "short"}, "token_secret: expected at least 32 bytes"),
    ({"stun_servers": ("http://stun.example",)}, "stun_servers: expected stun: or stuns:"),
    ({"require_auth": False, "token_secret": "x" * 32}, "require_auth is False"),
    ({"signaling_timeout": 0}, "signaling_timeout=0"),
])
def test_invalid_configuration_is_refused_with_one_line(config: dict[str, Any],
                                                        message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        CallsConfig(**config)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_defaults_follow_seed_003() -> None:
    config = CallsConfig()
    assert config.require_auth and not config.allow_guests
    assert config.topology is Topology.MESH
    assert config.audio == AudioConfig(True, ("opus",), 128_000)
    assert config.video == VideoConfig(True, ("VP8", "H264"), 100_000, 2_500_000, 1920, 1080,
                                       30)
    assert config.signaling_timeout == 30.0
