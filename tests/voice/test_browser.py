"""Headless Chromium sends its fake microphone; an aiortc receiver and an MP3 listener hear it."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.e2e.browser import Contexts
from tests.support import TIMEOUT, Running, WsClient, running
from tests.voice.audio import mono_samples
from tests.voice.voiceclients import read_mp3, start_receiver, start_sender

# one Chromium for the suite (tests/conftest.py; each test opens pages in contexts of its
# own, closed after it), so the tests share the session's event loop
pytestmark = [pytest.mark.browser, pytest.mark.webrtc, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture
def browser(chromium_contexts: Contexts) -> Contexts:
    """The suite's shared Chromium: this test's contexts close after it."""
    return chromium_contexts


def loudness(samples: list[float]) -> float:
    return max((abs(x) for x in samples), default=0.0)


async def test_browser_sender_reaches_aiortc_receiver_and_mp3(browser: Any) -> None:
    async with running(node_ips=("127.0.0.1",)) as srv:
        await browser_session(srv, browser)


async def browser_session(srv: Running, browser: Any) -> None:
    watcher = await WsClient.connect(srv.ws_url)
    page = await browser.new_page()
    try:
        await page.goto(f"{srv.url}/voice.html")
        await page.wait_for_function("window.voice && window.voice.state === 'open'",
                                     timeout=TIMEOUT * 1000)
        await page.click("#send")
        live = await watcher.expect("stream_available", timeout=15)
        await page.wait_for_function("window.voice.state === 'connected'", timeout=15000)
        receiver = await start_receiver(srv.ws_url)
        try:
            assert receiver.stream_id == live["stream_id"]
            # Chromium's fake microphone beeps: the receiver must hear sound, not silence
            heard: list[float] = []
            while loudness(heard) < 0.05 and len(heard) < 48000 * 4:
                frame: Any = await asyncio.wait_for(receiver.track.recv(), TIMEOUT)
                heard += mono_samples(frame)
            assert loudness(heard) >= 0.05, "the receiver heard only silence"
        finally:
            await receiver.close()
        async with aiohttp.ClientSession() as http:
            data, headers = await read_mp3(http, f"{srv.url}/stream/latest.mp3", 4000)
            assert headers["X-Stream-Id"] == live["stream_id"]
            assert data[:2] in (b"\xff\xfb", b"\xff\xfa")
        await page.close()
        ended = await watcher.expect("stream_ended", timeout=15)
        assert ended["stream_id"] == live["stream_id"]
    finally:
        await watcher.close()


# Seed 002's browser sender, as its API reference prints it: the offer goes out right
# after setLocalDescription, before any candidate is gathered, and nothing is trickled.
SEED_SENDER = """
(url) => new Promise((resolve) => {
  const ws = new WebSocket(url);
  ws.onopen = async () => {
    ws.send(JSON.stringify({ type: "start_sending" }));
  };
  ws.onmessage = async (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "sender_ready") {
      const pc = new RTCPeerConnection({ iceServers: [] });
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      stream.getTracks().forEach((track) => pc.addTrack(track, stream));
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      ws.send(JSON.stringify({ type: "webrtc_offer",
        offer: { sdp: pc.localDescription.sdp, type: pc.localDescription.type } }));
      window.senderPC = pc;
    }
    if (msg.type === "webrtc_answer") {
      await window.senderPC.setRemoteDescription(new RTCSessionDescription(msg.answer));
      window.senderPC.onconnectionstatechange = () => {
        if (window.senderPC.connectionState === "connected") resolve("connected");
      };
    }
  };
})
"""


async def test_seed_snippet_sender_without_candidates_in_its_offer(browser: Any) -> None:
    async with running(node_ips=("127.0.0.1",)) as srv:
        page = await browser.new_page()
        try:
            await page.goto(f"{srv.url}/voice.html")
            state = await asyncio.wait_for(page.evaluate(SEED_SENDER, srv.ws_url), 20)
            assert state == "connected"
            receiver = await start_receiver(srv.ws_url)
            try:
                heard: list[float] = []
                while loudness(heard) < 0.05 and len(heard) < 48000 * 4:
                    frame: Any = await asyncio.wait_for(receiver.track.recv(), TIMEOUT)
                    heard += mono_samples(frame)
                assert loudness(heard) >= 0.05, "the receiver heard only silence"
            finally:
                await receiver.close()
        finally:
            await page.close()


# Seed 002's browser receiver (with its `JSON.dumps` typo fixed to JSON.stringify).
SEED_RECEIVER = """
(url) => new Promise((resolve) => {
  const ws = new WebSocket(url);
  let asked = false;
  ws.onmessage = async (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "available_streams" && !asked) {
      asked = true;
      ws.send(JSON.stringify({ type: "start_receiving" }));
    }
    if (msg.type === "webrtc_offer") {
      const pc = new RTCPeerConnection({ iceServers: [] });
      pc.ontrack = (event) => {
        const audio = new Audio();
        audio.srcObject = event.streams[0] || new MediaStream([event.track]);
        audio.play().catch(() => {});
      };
      await pc.setRemoteDescription(new RTCSessionDescription(msg.offer));
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      ws.send(JSON.stringify({ type: "webrtc_answer",
        answer: { sdp: pc.localDescription.sdp, type: pc.localDescription.type } }));
      const poll = async () => {
        const stats = await pc.getStats();
        for (const s of stats.values()) {
          if (s.type === "inbound-rtp" && s.kind === "audio" && s.packetsReceived > 25) {
            return resolve({ packets: s.packetsReceived, energy: s.totalAudioEnergy || 0 });
          }
        }
        setTimeout(poll, 100);
      };
      poll();
    }
  };
})
"""


async def test_seed_snippet_receiver_in_chromium(browser: Any) -> None:
    async with running(node_ips=("127.0.0.1",)) as srv:
        sender = await start_sender(srv.ws_url, 440)
        context = await browser.new_context()
        await context.grant_permissions(["microphone"])  # lets Chromium use loopback ICE
        page = await context.new_page()
        try:
            await page.goto(f"{srv.url}/voice.html")
            got = await asyncio.wait_for(page.evaluate(SEED_RECEIVER, srv.ws_url), 20)
            assert got["packets"] > 25
            assert got["energy"] > 0  # the tone, decoded by Chromium: not silence
        finally:
            await context.close()
            await sender.close()
