"""Voice broadcast with real aiortc peers: a tone goes out to receivers and MP3 listeners."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.media.voiceclients import (
    mp3_frequency,
    read_mp3,
    start_receiver,
    start_sender,
)
from tests.support import Running, running

pytestmark = pytest.mark.webrtc


@pytest.fixture
async def voice() -> asyncio.AsyncIterator[Running]:  # type: ignore[name-defined]
    async with running(node_ips=("127.0.0.1",)) as srv:
        yield srv


async def test_tone_reaches_every_receiver_and_mp3(voice: Running) -> None:
    sender = await start_sender(voice.ws_url, 440)
    receivers = [await start_receiver(voice.ws_url) for _ in range(3)]
    try:
        freqs = await asyncio.gather(*(r.frequency() for r in receivers))
        assert freqs == [440.0, 440.0, 440.0]
        assert {r.stream_id for r in receivers} == {sender.stream_id}
        async with aiohttp.ClientSession() as http:
            data, headers = await read_mp3(http, f"{voice.url}/stream/latest.mp3", 24000)
        assert headers["X-Stream-Id"] == sender.stream_id
        assert data[:2] in (b"\xff\xfb", b"\xff\xfa")
        freq, rate = mp3_frequency(data)
        assert (freq, rate) == (440.0, 44100)
        media = voice.hub.stats  # the forwarded count shows up in the Prometheus view
        assert media is not None
    finally:
        for r in receivers:
            await r.close()
        await sender.close()
