"""The voice dialect's signaling: greetings, seed 002's errors, order and bad input."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCRtpSender, RTCSessionDescription

from tests.support import FakeClock, Running, WsClient, running
from tests.voice.audio import ToneTrack
from tests.voice.voiceclients import client_pc, set_local, start_sender


@pytest.fixture
async def voice() -> AsyncIterator[Running]:
    async with running(node_ips=("127.0.0.1",)) as srv:
        yield srv


async def voice_ws(srv: Running) -> WsClient:
    return await WsClient.connect(srv.ws_url.replace("/ws", "/ws/voice"))


async def tone_offer() -> tuple[Any, str]:
    pc = client_pc()
    pc.addTrack(ToneTrack(440))
    return pc, await set_local(pc, offer=True)


def assert_error(msg: dict[str, Any], code: str, message: str | None = None) -> None:
    assert msg["type"] == "error", msg
    assert msg["code"] == code, msg
    assert msg["message"] == msg["error"]
    if message is not None:
        assert msg["message"] == message


async def test_greeting_and_stream_list_on_both_paths(voice: Running) -> None:
    a = await WsClient.connect(voice.ws_url)
    b = await voice_ws(voice)
    try:
        empty = {"type": "available_streams", "streams": [], "details": []}
        assert a.greeting == b.greeting == empty
        await b.send({"type": "get_available_streams"})
        assert await b.expect("available_streams") == empty
    finally:
        await a.close()
        await b.close()


async def test_no_stream_errors(voice: Running) -> None:
    ws = await voice_ws(voice)
    try:
        await ws.send({"type": "start_receiving"})
        assert_error(await ws.recv(), "no_stream", "No audio stream available")
        await ws.send({"type": "start_receiving", "stream_id": "stream_nope"})
        assert_error(await ws.recv(), "no_stream", "No audio stream available")
    finally:
        await ws.close()


async def test_stream_available_reaches_everyone_and_unknown_id_has_ended(voice: Running
                                                                         ) -> None:
    rooms_and_voice = await WsClient.connect(voice.ws_url)
    voice_only = await voice_ws(voice)
    rooms_only = await WsClient.connect(voice.ws_url.replace("/ws", "/ws/rooms"))
    sender = await start_sender(voice.ws_url, 440)
    try:
        for client in (rooms_and_voice, voice_only):
            assert (await client.expect("stream_available"))["stream_id"] == sender.stream_id
        assert await rooms_only.sync() == []  # the rooms-only endpoint hears nothing of voice
        await voice_only.send({"type": "start_receiving", "stream_id": "stream_gone"})
        assert_error(await voice_only.recv(), "stream_ended", "Stream ended")
        await voice_only.send({"type": "get_available_streams"})
        assert (await voice_only.expect("available_streams"))["streams"] == [sender.stream_id]
        late = await voice_ws(voice)
        assert late.greeting is not None
        assert late.greeting["streams"] == [sender.stream_id]
        await late.close()
    finally:
        await sender.close()
        for client in (rooms_and_voice, voice_only, rooms_only):
            await client.close()


async def test_messages_out_of_order(voice: Running) -> None:
    ws = await voice_ws(voice)
    pc, offer = await tone_offer()
    try:
        await ws.send({"type": "webrtc_offer", "offer": {"sdp": offer, "type": "offer"}})
        assert_error(await ws.recv(), "conflict")
        await ws.send({"type": "webrtc_answer", "answer": {"sdp": offer.replace(
            "a=setup:actpass", "a=setup:active"), "type": "answer"}})
        assert_error(await ws.recv(), "conflict")
        # after a sender's offer, an answer is still out of order
        await ws.send({"type": "start_sending"})
        await ws.expect("sender_ready")
        await ws.send({"type": "webrtc_offer", "offer": {"sdp": offer, "type": "offer"}})
        await ws.expect("webrtc_answer")
        await ws.expect("stream_available")
        await ws.send({"type": "webrtc_offer", "offer": {"sdp": offer, "type": "offer"}})
        assert_error(await ws.recv(), "conflict")
    finally:
        await pc.close()
        await ws.close()


@pytest.mark.parametrize(("message", "code"), [
    ({"type": "webrtc_offer"}, "missing_field"),
    ({"type": "webrtc_offer", "offer": "v=0"}, "invalid_sdp"),
    ({"type": "webrtc_offer", "offer": {"sdp": "hello", "type": "offer"}}, "invalid_sdp"),
    ({"type": "webrtc_offer", "offer": {"sdp": "v=0\r\n", "type": "answer"}}, "invalid_sdp"),
    ({"type": "webrtc_offer", "offer": {"sdp": "v=0\r\nm=audio x\r\n", "type": "offer"}},
     "invalid_sdp"),
    ({"type": "start_receiving", "stream_id": 7}, "invalid_field"),
    ({"type": "ice_candidate", "candidate": 7}, "invalid_field"),
    ({"type": "join", "room": "r"}, "unknown_type"),
])
async def test_bad_input_gets_a_clear_error(voice: Running, message: dict[str, Any],
                                            code: str) -> None:
    ws = await voice_ws(voice)
    try:
        await ws.send({"type": "start_sending"})
        await ws.expect("sender_ready")
        await ws.send(message)
        assert_error(await ws.recv(), code)
        await ws.send({"type": "get_available_streams"})
        await ws.expect("available_streams")  # the connection is still fine
    finally:
        await ws.close()


async def test_offer_without_audio_is_refused(voice: Running) -> None:
    pc = client_pc()
    pc.createDataChannel("chat")
    sdp = await set_local(pc, offer=True)
    ws = await voice_ws(voice)
    try:
        await ws.send({"type": "start_sending"})
        await ws.expect("sender_ready")
        await ws.send({"type": "webrtc_offer", "offer": {"sdp": sdp, "type": "offer"}})
        assert_error(await ws.recv(), "codec_not_supported")
        assert len(voice.voice.streams) == 0
    finally:
        await pc.close()
        await ws.close()


async def test_local_ip_and_candidates_are_accepted(voice: Running) -> None:
    sender = await start_sender(voice.ws_url, 440)
    try:
        ws = sender.ws
        await ws.send({"type": "local_ip", "ip": "192.0.2.7"})
        await ws.send({"type": "ice_candidate", "candidate": {
            "candidate": "candidate:1 1 UDP 2130706431 127.0.0.1 54321 typ host",
            "sdpMid": "0", "sdpMLineIndex": 0}})
        await ws.send({"type": "ice_candidate", "candidate": None})
        assert await ws.sync() == []  # no error for any of them
        await ws.send({"type": "ice_candidate", "candidate": {"candidate": "nonsense"}})
        assert_error(await ws.recv(), "invalid_field")
    finally:
        await sender.close()


async def test_stream_limit() -> None:
    async with running(node_ips=("127.0.0.1",), voice_max_streams=1) as srv:
        first = await start_sender(srv.ws_url, 440)
        ws = await WsClient.connect(srv.ws_url)
        pc, offer = await tone_offer()
        try:
            await ws.send({"type": "start_sending"})
            await ws.expect("sender_ready")
            await ws.send({"type": "webrtc_offer", "offer": {"sdp": offer, "type": "offer"}})
            assert_error(await ws.recv(), "capacity")
        finally:
            await pc.close()
            await ws.close()
            await first.close()


async def test_unanswered_offer_expires() -> None:
    clock = FakeClock()
    async with running(clock=clock, node_ips=("127.0.0.1",)) as srv:
        sender = await start_sender(srv.ws_url, 440)
        ws = await WsClient.connect(srv.ws_url)
        try:
            await ws.send({"type": "start_receiving"})
            offer = await ws.expect("webrtc_offer")
            assert offer["stream_id"] == sender.stream_id
            clock.advance(srv.hub.config.limits.voice_answer_timeout - 0.01)
            assert await ws.sync() == []
            clock.advance(0.01)
            assert_error(await ws.recv(), "conflict")
            pc = client_pc()
            await pc.setRemoteDescription(RTCSessionDescription(**offer["offer"]))
            sdp = await set_local(pc, offer=False)
            await ws.send({"type": "webrtc_answer", "answer": {"sdp": sdp, "type": "answer"}})
            assert_error(await ws.recv(), "conflict")  # too late: the offer was withdrawn
            await pc.close()
        finally:
            await ws.close()
            await sender.close()


async def test_server_error_when_no_udp_port_is_free() -> None:
    held = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    held.bind(("127.0.0.1", 0))
    port = held.getsockname()[1]
    try:
        async with running(node_ips=("127.0.0.1",), udp_ports=(port, port)) as srv:
            ws = await WsClient.connect(srv.ws_url)
            pc, offer = await tone_offer()
            try:
                await ws.send({"type": "start_sending"})
                await ws.expect("sender_ready")
                await ws.send({"type": "webrtc_offer", "offer": {"sdp": offer,
                                                                 "type": "offer"}})
                msg = await ws.recv()
                assert_error(msg, "server_error")
                assert msg["message"].startswith("Server error: no ICE candidate")
                assert f"RTC_UDP_PORTS={port}-{port}" in msg["message"]
                assert srv.broadcasts.peers.open_peers == 0
            finally:
                await pc.close()
                await ws.close()
    finally:
        held.close()


async def test_offer_without_opus_is_refused(voice: Running) -> None:
    pc = client_pc()
    transceiver = pc.addTransceiver(ToneTrack(440), direction="sendonly")
    caps = RTCRtpSender.getCapabilities("audio")
    transceiver.setCodecPreferences([c for c in caps.codecs if c.mimeType == "audio/PCMU"])
    sdp = await set_local(pc, offer=True)
    ws = await voice_ws(voice)
    try:
        await ws.send({"type": "start_sending"})
        await ws.expect("sender_ready")
        await ws.send({"type": "webrtc_offer", "offer": {"sdp": sdp, "type": "offer"}})
        assert_error(await ws.recv(), "codec_not_supported")
        assert voice.broadcasts.peers.open_peers == 0
    finally:
        await pc.close()
        await ws.close()


async def test_answer_after_the_stream_ended_gets_stream_ended(voice: Running) -> None:
    sender = await start_sender(voice.ws_url, 440)
    ws = await voice_ws(voice)
    pc = client_pc()
    try:
        assert ws.greeting is not None
        assert ws.greeting["streams"] == [sender.stream_id]
        await ws.send({"type": "start_receiving", "stream_id": sender.stream_id})
        offer = await ws.expect("webrtc_offer")
        await sender.ws.send({"type": "stop_stream"})
        assert (await ws.expect("stream_ended"))["stream_id"] == sender.stream_id
        await pc.setRemoteDescription(RTCSessionDescription(**offer["offer"]))
        sdp = await set_local(pc, offer=False)
        await ws.send({"type": "webrtc_answer", "answer": {"sdp": sdp, "type": "answer"}})
        assert_error(await ws.recv(), "stream_ended", "Stream ended")
        await ws.send({"type": "webrtc_answer", "answer": {"sdp": sdp, "type": "answer"}})
        assert_error(await ws.recv(), "conflict")  # said once; later it is just out of order
    finally:
        await pc.close()
        await ws.close()
        await sender.close()
