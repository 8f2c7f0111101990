"""What the SFU's peers negotiate: allowed codecs only, caps in the answer, data channels."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender

from rtchub.errors import CodecNotSupported, InvalidSDP, SignalingFailed
from rtchub.media import aiortc_adapter as adapter
from rtchub.media.sfu import DataChannel, SfuMediaConfig, SubscriptionState
from rtchub.media.sfu.sdp import parse_sections
from tests.media.sfu_support import LOOPBACK, PictureTrack, Room, next_frame, room
from tests.voice.audio import ToneTrack

pytestmark = pytest.mark.webrtc


def collect(r: Room, into: list[Any]) -> Callable[[Any], None]:
    """A handler that appends what it gets to ``into`` and wakes the room's waiters."""

    def handler(item: Any) -> None:
        into.append(item)
        r.changes.notify()

    return handler


async def offer_of(*tracks_and_codecs: tuple[object, str]) -> tuple[RTCPeerConnection, str]:
    """A client's first offer with each track restricted to one codec."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for track, codec in tracks_and_codecs:
        transceiver = pc.addTransceiver(track, direction="sendonly")  # type: ignore[arg-type]
        caps = RTCRtpSender.getCapabilities(transceiver.kind).codecs
        transceiver.setCodecPreferences([c for c in caps if c.mimeType == codec])
    adapter.configure_ice(pc, LOOPBACK, None)
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def test_an_offer_with_no_allowed_codec_is_refused_and_the_peer_stays_usable() -> None:
    config = SfuMediaConfig(node_ips=LOOPBACK, video_codecs=("VP8",))
    async with room(config) as r:
        client = await r.join("carl")
        tone, picture = ToneTrack(440), PictureTrack(96, 64)
        r.tracks += [tone, picture]
        for tracks, named in (([(tone, "audio/PCMU")], "PCMU"),
                              ([(tone, "audio/opus"), (picture, "video/H264")], "H264")):
            pc, sdp = await offer_of(*tracks)
            try:
                with pytest.raises(CodecNotSupported, match=named) as caught:
                    await client.peer.accept_offer(sdp)
                assert caught.value.code == "codec_not_supported"
            finally:
                await pc.close()
        assert client.peer.signaling_state == "stable"
        assert r.published == []
        client.publish(PictureTrack(96, 64), "video/VP8")
        await client.negotiate()
        await r.until(lambda: len(r.published) == 1)
        assert r.published[0].codecs == ["video/VP8"]


@pytest.mark.parametrize("sdp", ["", "hello", "v=0\r\nm=audio x RTP/AVP 0\r\n",
                                 "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus\r\n"])
async def test_malformed_offers_are_invalid_sdp(sdp: str) -> None:
    async with room() as r:
        client = await r.join("dora")
        with pytest.raises(InvalidSDP):
            await client.peer.accept_offer(sdp)
        assert client.peer.signaling_state == "stable"


async def test_the_answer_caps_bitrates_and_lists_allowed_codecs_in_order() -> None:
    config = SfuMediaConfig(node_ips=LOOPBACK, video_codecs=("H264", "VP8"),
                            audio_max_bitrate=64_000, video_max_bitrate=800_000)
    async with room(config) as r:
        client = await r.join("erin")
        client.publish(ToneTrack(440))
        client.publish(PictureTrack(96, 64))  # aiortc offers VP8 first, then H264
        await client.negotiate()
        answer = client.last_answer
        audio, video = parse_sections(answer)
        assert "b=AS:64\r\nb=TIAS:64000" in answer
        assert "b=AS:800\r\nb=TIAS:800000" in answer
        assert audio.codecs[0].params["maxaveragebitrate"] == "64000"
        assert next(c.name for c in video.media_codecs) == "H264"
        assert {c.name for c in video.media_codecs} == {"H264", "VP8"}
        await r.until(lambda: len(r.published) == 2)
        assert next(t for t in r.published if t.kind == "video").codecs[0] == "video/H264"


async def test_data_channels_opened_by_either_side_carry_bytes_and_text() -> None:
    async with room() as r:
        client = await r.join("finn")
        client.publish(ToneTrack(440))
        from_client = client.pc.createDataChannel("chat")
        server_side: list[DataChannel] = []

        def arrived(channel: DataChannel) -> None:
            server_side.append(channel)
            r.changes.notify()

        client.peer.on_data_channel = arrived
        await client.negotiate()
        await r.until(lambda: len(server_side) == 1)
        chat = server_side[0]
        assert chat.label == "chat"
        got: list[bytes | str] = []
        chat.on_message = collect(r, got)
        from_client.on("open", r.changes.notify)
        await r.until(lambda: from_client.readyState == "open")
        from_client.send("hello server")
        from_client.send(b"\x00\x01")
        await r.until(lambda: len(got) == 2)
        assert got == ["hello server", b"\x00\x01"]
        echoed: list[bytes | str] = []
        from_client.on("message", collect(r, echoed))
        chat.send_text("hello client")
        chat.send(b"\xff")
        await r.until(lambda: len(echoed) == 2)
        assert echoed == ["hello client", b"\xff"]

        # the server opens one too (the SCTP association is up: no renegotiation)
        opened: list[Any] = []
        client.pc.on("datachannel", collect(r, opened))
        notes = client.peer.create_data_channel("notes")
        notes.on_open = r.changes.notify
        await r.until(lambda: len(opened) == 1 and notes.ready_state == "open")
        closed = asyncio.Event()
        notes.on_close = closed.set
        opened[0].close()
        await asyncio.wait_for(closed.wait(), 10)


async def test_a_server_opened_channel_on_a_media_only_peer_renegotiates() -> None:
    async with room() as r:
        client = await r.join("gail")
        client.publish(PictureTrack(96, 64))
        await client.negotiate()
        opened: list[Any] = []
        client.pc.on("datachannel", collect(r, opened))
        channel = client.peer.create_data_channel("events")
        channel.on_open = r.changes.notify
        await r.until(lambda: client.server_offers == 1)
        await r.until(lambda: channel.ready_state == "open" and len(opened) == 1)
        got: list[bytes | str] = []
        opened[0].on("message", collect(r, got))
        channel.send_text("ping")
        await r.until(lambda: got == ["ping"])
        # media kept flowing through the renegotiation
        other = await r.join("hank")
        other.publish(ToneTrack(880))
        await other.negotiate()
        sub = other.peer.subscribe(r.tracks_of(client)[0])
        await r.until(lambda: sub.state is SubscriptionState.ACTIVE)
        assert (await next_frame(other.track_from(sub.track))).width == 96


async def test_an_answer_without_an_outstanding_offer_is_refused() -> None:
    async with room() as r:
        client = await r.join("ivy")
        client.publish(ToneTrack(440))
        await client.negotiate()
        with pytest.raises(SignalingFailed, match="no offer"):
            await client.peer.accept_answer(client.pc.localDescription.sdp)


async def test_a_data_channel_first_then_media_on_the_same_transport() -> None:
    async with room() as r:
        client = await r.join("jay")
        channel = client.pc.createDataChannel("chat")
        channel.on("open", r.changes.notify)
        await client.negotiate()  # only the data channel: its section carries the bundle
        await r.until(lambda: channel.readyState == "open")
        client.publish(PictureTrack(96, 64))
        await client.negotiate()
        await r.until(lambda: len(r.tracks_of(client)) == 1)
        viewer = await r.join("kim")
        viewer.publish(ToneTrack(440))
        await viewer.negotiate()
        sub = viewer.peer.subscribe(r.tracks_of(client)[0])
        await r.until(lambda: sub.state is SubscriptionState.ACTIVE)
        assert (await next_frame(viewer.track_from(sub.track))).width == 96
        assert parse_sections(client.last_answer)[0].kind == "application"


async def test_a_malformed_trickled_candidate_is_invalid_sdp() -> None:
    async with room() as r:
        client = await r.join("lee")
        client.publish(ToneTrack(440))
        await client.negotiate()
        for bad in ("candidate:nonsense", "candidate:1 1 udp x 127.0.0.1 9 typ host"):
            with pytest.raises(InvalidSDP, match="not an ICE candidate"):
                await client.peer.add_ice_candidate(bad, "0", 0)
        await client.peer.add_ice_candidate(
            "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host", "0", 0)
        await client.peer.add_ice_candidate(None)  # end of candidates
        assert client.peer.connection_state in ("connecting", "connected")
