"""Seed 002's HTTP side: /stream/*, the STREAM_ADDR listener, /health and /metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from rtchub.config import ListenAddress
from rtchub.features.voice.service import VoiceService
from rtchub.media.mp3 import Mp3Listener
from tests.support import TIMEOUT, Running, WsClient, running
from tests.voice.voiceclients import eventually, mp3_frequency, read_mp3, start_sender


@pytest.fixture
async def voice() -> AsyncIterator[Running]:
    async with running(node_ips=("127.0.0.1",),
                       stream_addr=ListenAddress("127.0.0.2", 0)) as srv:
        yield srv


def service(srv: Running) -> VoiceService:
    return srv.voice


def stream_url(srv: Running) -> str:
    return f"http://127.0.0.2:{srv.server.port(1)}"


async def test_no_stream(voice: Running) -> None:
    async with aiohttp.ClientSession() as http:
        for base in (voice.url, stream_url(voice)):
            async with http.get(f"{base}/stream/status") as resp:
                assert await resp.json() == {"active_streams": []}
            async with http.get(f"{base}/stream/latest.mp3") as resp:
                assert resp.status == 200
                assert resp.content_type == "text/html"
                page = await resp.text()
                # polls status with a back-off from 1 s to 10 s, reloads when a stream is live
                assert 'fetch("status"' in page and "location.reload()" in page
                assert "delay = 1000" in page and "10000" in page
            async with http.get(f"{base}/stream/stream_nope.mp3") as resp:
                assert (resp.status, await resp.text()) == (404, "Stream not found")
            async with http.get(f"{base}/stream/whatever") as resp:
                assert resp.status == 404


async def test_stream_listener_serves_only_streams(voice: Running) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/health", "/", "/healthz"):
            async with http.get(f"{stream_url(voice)}{path}") as resp:
                assert resp.status == 404, path
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(f"{stream_url(voice)}/ws")


@pytest.mark.webrtc
async def test_mp3_on_the_stream_listener(voice: Running) -> None:
    sender = await start_sender(voice.ws_url, 660)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{stream_url(voice)}/stream/status") as resp:
                assert await resp.json() == {"active_streams": [sender.stream_id]}
            data, _ = await read_mp3(http, f"{stream_url(voice)}/stream/{sender.stream_id}.mp3",
                                     8000)
            assert mp3_frequency(data) == (660.0, 44100)
    finally:
        await sender.close()


@pytest.mark.webrtc
async def test_health_and_json_metrics(voice: Running) -> None:
    svc = voice.broadcasts
    sender = await start_sender(voice.ws_url, 440)
    other = await WsClient.connect(voice.ws_url)
    try:
        await eventually(voice.hub, lambda: svc.media.bytes_in > 0)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{voice.url}/health") as resp:
                body = await resp.json()
                assert resp.status == 200
                assert body["status"] == "healthy"
                assert body["webrtc_available"] is True
                assert body["audio_server_running"] is True
                assert body["active_streams"] == 1
                assert body["connected_clients"] == 2
                assert isinstance(body["uptime_seconds"], int)
            async with http.get(f"{voice.url}/metrics",
                                headers={"Accept": "application/json"}) as resp:
                metrics = await resp.json()
                assert set(metrics) == {"uptime_seconds", "active_connections",
                                        "active_streams", "total_audio_bytes",
                                        "webrtc_available"}
                assert metrics["active_streams"] == 1
                assert metrics["active_connections"] == 2
                assert metrics["total_audio_bytes"] > 0
            async with http.get(f"{voice.url}/metrics") as resp:
                text = await resp.text()
                assert "rtchub_voice_streams 1.0" in text
                assert 'rtchub_media_packets_total{stage="received"}' in text
            svc.webrtc_available = False  # what start-up sets when the adapter check fails
            async with http.get(f"{voice.url}/health") as resp:
                assert resp.status == 500
                assert (await resp.json())["status"] == "unhealthy"
    finally:
        await other.close()
        await sender.close()


@pytest.mark.webrtc
async def test_mp3_listener_limit() -> None:
    async with running(node_ips=("127.0.0.1",), mp3_max_listeners=1) as srv:
        sender = await start_sender(srv.ws_url, 440)
        try:
            async with aiohttp.ClientSession() as http, \
                    http.get(f"{srv.url}/stream/latest.mp3") as first:
                assert first.status == 200
                async with http.get(f"{srv.url}/stream/latest.mp3") as second:
                    assert second.status == 503
                    assert (await second.json())["code"] == "capacity"
        finally:
            await sender.close()


async def test_slow_listener_is_dropped_without_slowing_others() -> None:
    slow, fast = Mp3Listener(limit=3), Mp3Listener(limit=3)
    for i in range(3):
        assert slow.offer(bytes([i]))
        assert fast.offer(bytes([i]))
        assert await fast.read() == bytes([i])
    assert not slow.offer(b"x")  # a fourth chunk overflows: dropped
    assert slow.dropped and slow.ended
    assert await slow.read() is None
    assert fast.offer(b"y")
    assert await fast.read() == b"y"


@pytest.mark.webrtc
async def test_shutdown_ends_open_mp3_responses_quickly() -> None:
    async with running(node_ips=("127.0.0.1",), shutdown_timeout=30.0) as srv:
        sender = await start_sender(srv.ws_url, 440)
        http = aiohttp.ClientSession()
        resp = await http.get(f"{srv.url}/stream/latest.mp3")
        await asyncio.wait_for(resp.content.readexactly(1000), TIMEOUT)
        await sender.ws.close()
        await sender.pc.close()
        started = time.monotonic()
    # leaving `running` stopped the server: the open MP3 response did not hold it for 30 s
    assert time.monotonic() - started < 10
    resp.close()
    await http.close()
