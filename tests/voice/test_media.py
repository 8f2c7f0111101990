"""Voice broadcast with real aiortc peers: a tone goes out to receivers and MP3 listeners."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest

from rtchub.features.voice.events import AUDIENCE
from rtchub.media import aiortc_adapter
from tests.support import TIMEOUT, Running, WsClient, running
from tests.voice.voiceclients import (
    eventually,
    mp3_frequency,
    read_mp3,
    start_receiver,
    start_sender,
)

pytestmark = pytest.mark.webrtc


@pytest.fixture
async def voice() -> AsyncIterator[Running]:
    async with running(node_ips=("127.0.0.1",)) as srv:
        yield srv



async def test_tone_reaches_every_receiver_and_mp3(voice: Running) -> None:
    sender = await start_sender(voice.ws_url, 440)
    receivers = [await start_receiver(voice.ws_url) for _ in range(3)]
    try:
        freqs = await asyncio.gather(*(r.frequency() for r in receivers))
        assert freqs == [440.0, 440.0, 440.0]
        assert {r.stream_id for r in receivers} == {sender.stream_id}
        mp3 = voice.broadcasts.mp3(sender.stream_id)
        assert mp3 is not None
        assert not mp3.encoding  # nothing is encoded without a listener
        async with aiohttp.ClientSession() as http:
            data, headers = await read_mp3(http, f"{voice.url}/stream/latest.mp3", 8000)
            assert headers["X-Stream-Id"] == sender.stream_id
            assert data[:2] in (b"\xff\xfb", b"\xff\xfa")
            assert mp3_frequency(data) == (440.0, 44100)
            data, _ = await read_mp3(http, f"{voice.url}/stream/{sender.stream_id}.mp3", 8000)
            assert mp3_frequency(data)[0] == 440.0
        await eventually(voice.hub, lambda: not mp3.encoding)
        media = voice.broadcasts.media
        assert media.packets_forwarded >= 3 * 10
        assert media.bytes_in > 0
    finally:
        for r in receivers:
            await r.close()
        await sender.close()


async def test_switching_streams(voice: Running) -> None:
    low = await start_sender(voice.ws_url, 440)
    high = await start_sender(voice.ws_url, 880)
    receiver = await start_receiver(voice.ws_url)  # latest: the 880 Hz stream
    try:
        assert receiver.stream_id == high.stream_id
        assert await receiver.frequency() == 880.0
        again = await start_receiver(voice.ws_url, low.stream_id, ws=receiver.ws)
        assert again.stream_id == low.stream_id
        assert await again.frequency() == 440.0
        await eventually(voice.hub, lambda: voice.broadcasts.receivers() == 1)
        await again.pc.close()
    finally:
        await receiver.close()
        await low.close()
        await high.close()


async def test_stop_stream_keeps_the_websocket(voice: Running) -> None:
    sender = await start_sender(voice.ws_url, 440)
    receiver = await start_receiver(voice.ws_url)
    svc = voice.broadcasts
    try:
        await eventually(voice.hub, lambda: svc.receivers() == 1)
        await receiver.ws.send({"type": "stop_stream"})
        await receiver.ws.send({"type": "get_available_streams"})
        assert (await receiver.ws.expect("available_streams"))["streams"] == [sender.stream_id]
        assert svc.receivers() == 0
        # the sender heard how many listen (later changes come at most once a second)
        count = await sender.ws.expect("stream_listeners")
        assert (count["stream_id"], count["webrtc"], count["mp3"]) == (sender.stream_id, 1, 0)
        await eventually(voice.hub, lambda: svc.peers.open_peers == 1)  # only the sender's is left
        # the sender stops: everyone hears stream_ended, the WebSocket stays open
        await sender.ws.send({"type": "stop_stream"})
        for ws in (sender.ws, receiver.ws):
            while (msg := await ws.recv())["type"] == "stream_listeners":
                pass  # the count after the receiver left, if it fell due meanwhile
            assert msg == {"type": "stream_ended", "stream_id": sender.stream_id}
        assert voice.voice.streams.ids() == []
        await eventually(voice.hub, lambda: svc.peers.open_peers == 0)
        await sender.ws.send({"type": "get_available_streams"})
        assert (await sender.ws.expect("available_streams"))["streams"] == []
    finally:
        await receiver.close()
        await sender.close()


async def test_sender_disconnect_ends_stream_for_all(voice: Running) -> None:
    sender = await start_sender(voice.ws_url, 440)
    receiver = await start_receiver(voice.ws_url)
    bystander = await WsClient.connect(voice.ws_url)
    svc = voice.broadcasts
    async with (aiohttp.ClientSession() as http,
                http.get(f"{voice.url}/stream/latest.mp3") as resp):
        await asyncio.wait_for(resp.content.readexactly(1000), TIMEOUT)
        await sender.ws.close()
        for ws in (receiver.ws, bystander):
            assert (await ws.expect("stream_ended"))["stream_id"] == sender.stream_id
        rest = await asyncio.wait_for(resp.content.read(), TIMEOUT)  # ends, not hangs
        assert resp.content.at_eof(), len(rest)
    # the receiver's peer was freed too
    await eventually(voice.hub, lambda: svc.peers.open_peers == 0)
    assert svc.receivers() == 0 and svc.mp3_listeners() == 0
    await receiver.close()
    await bystander.close()
    await sender.pc.close()


async def test_receiver_disconnect_frees_everything(voice: Running) -> None:
    sender = await start_sender(voice.ws_url, 440)
    receiver = await start_receiver(voice.ws_url)
    svc = voice.broadcasts
    try:
        await eventually(voice.hub, lambda: svc.receivers() == 1)
        assert svc.peers.open_peers == 2
        await receiver.close()
        await eventually(voice.hub, lambda: svc.receivers() == 0 and svc.peers.open_peers == 1)
        assert voice.voice.streams.ids() == [sender.stream_id]
    finally:
        await sender.close()


async def test_feedback_nack_answered_from_cache_and_pli_throttled(voice: Running) -> None:
    sender = await start_sender(voice.ws_url, 440)
    receiver = await start_receiver(voice.ws_url)
    svc = voice.broadcasts
    media = svc.media
    try:
        await receiver.frequency(0.1)
        rtp_receiver = receiver.pc.getTransceivers()[0].receiver
        ssrc = rtp_receiver.getSynchronizationSources()[0].source
        got = list(receiver.seqs)
        assert len(got) > 5
        # consecutive numbers: the forwarded stream has no gaps
        assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(got))
        hits, misses = media.nack_hits, media.nack_misses
        never_sent = (got[-1] + 30000) % 65536
        await aiortc_adapter.send_nack(rtp_receiver, ssrc, [got[-3], got[-2]])
        await aiortc_adapter.send_nack(rtp_receiver, ssrc, [never_sent])
        await eventually(voice.hub,
                         lambda: media.nack_hits + media.nack_misses == hits + misses + 3)
        assert (media.nack_hits - hits, media.nack_misses - misses) == (2, 1)
        # audio negotiates no RTX, and a plain resend would die as an SRTP replay
        assert media.retransmitted == 0
        # keyframe requests: every one is counted, bursts are combined upstream
        uplink = svc.uplink(sender.stream_id)
        assert uplink is not None
        for _ in range(3):
            await aiortc_adapter.request_keyframe(rtp_receiver, ssrc)
        await eventually(voice.hub, lambda: media.keyframe_requests_in == 3)
        # the join may have sent one (if media already flowed); the burst adds at most one
        assert media.keyframe_requests + uplink.keyframes_combined >= 3
        assert 1 <= media.keyframe_requests <= 2
    finally:
        await receiver.close()
        await sender.close()


async def test_no_leaks_over_many_cycles(voice: Running) -> None:
    svc = voice.broadcasts
    tasks_before = len(voice.hub.tasks)  # long-lived service tasks (the pairing janitor)
    fds_before = len(os.listdir("/proc/self/fd"))
    sender = await start_sender(voice.ws_url, 440)
    for _ in range(8):
        receiver = await start_receiver(voice.ws_url)
        await receiver.close()
    await sender.close()
    await eventually(voice.hub, lambda: not voice.hub.connections)
    await eventually(voice.hub, lambda: svc.peers.open_peers == 0 and svc.peer_connections == 0)
    assert voice.voice.streams.ids() == [] and voice.voice.audience == 0 and svc.receivers() == 0
    await eventually(voice.hub, lambda: len(voice.hub.tasks) == tasks_before)
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 2


async def test_sender_reports_match_what_was_forwarded(voice: Running) -> None:
    sender = await start_sender(voice.ws_url, 440)
    receiver = await start_receiver(voice.ws_url)
    svc = voice.broadcasts
    try:
        await receiver.frequency(0.1)

        async def sender_report() -> object:
            while True:
                stats = await receiver.pc.getStats()
                for s in stats.values():
                    if s.type == "remote-outbound-rtp" and s.packetsSent > 0:
                        return s
                await receiver.track.recv()  # paced by the media itself: one frame, 20 ms

        report: object = await asyncio.wait_for(sender_report(), TIMEOUT)
        sent = report.packetsSent  # type: ignore[attr-defined]
        octets = report.bytesSent  # type: ignore[attr-defined]
        uplink = svc.uplink(sender.stream_id)
        assert uplink is not None
        (downtrack,) = uplink.downtracks
        # the report counts forwarded packets (aiortc alone would report 0: it sent none)
        assert 0 < sent <= downtrack.packets_sent
        assert octets > sent * 10  # Opus payloads, not empty packets
        assert len(receiver.seqs) >= sent - 5
    finally:
        await receiver.close()
        await sender.close()


async def test_many_voice_connections_leave_nothing_behind(voice: Running) -> None:
    svc = voice.broadcasts
    tasks_before = len(voice.hub.tasks)
    for i in range(200):
        ws = await WsClient.connect(voice.ws_url if i % 2 else voice.ws_url + "/voice")
        await ws.send({"type": "start_sending"})
        await ws.expect("sender_ready")
        if i % 3 == 0:
            await ws.send({"type": "start_receiving"})
            assert (await ws.expect("error"))["message"] == "No audio stream available"
        await ws.close()
    await eventually(voice.hub, lambda: not voice.hub.connections)
    assert voice.voice.audience == 0 and voice.hub.courier.subscribers(AUDIENCE) == 0
    await eventually(voice.hub,
                     lambda: len(voice.hub.tasks) == tasks_before and svc.peers.open_peers == 0)
