"""Headless Chromium publishes its camera and microphone to a server-side SFU peer and
receives an aiortc participant's forwarded tracks on the same peer connection.

The page is a minimal polite peer (perfect negotiation's polite side) signalled
over a test-only WebSocket; the call feature's real wire protocol is not part
of the media layer.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from rtchub.media.sfu import PublishedTrack, SfuPeer, SubscriptionState
from tests.e2e.browser import Contexts
from tests.media.sfu_support import PictureTrack, Room, next_frame, room
from tests.voice.audio import ToneTrack, mono_samples

# one Chromium for the suite (tests/conftest.py), so the tests run in the session's loop
pytestmark = [pytest.mark.browser, pytest.mark.webrtc, pytest.mark.asyncio(loop_scope="session")]

PAGE = """<!doctype html><meta charset="utf-8"><title>sfu</title><body><script type="module">
const ws = new WebSocket(`ws://${location.host}/ws`);
const pc = new RTCPeerConnection({ iceServers: [] });
window.pc = pc;
window.remote = [];
window.log = [];
window.errors = [];
let hold = false;
const held = [];
const send = (msg) => ws.send(JSON.stringify(msg));
pc.onicecandidate = ({ candidate }) =>
  send({ type: "candidate", candidate: candidate ? candidate.candidate : null });
pc.ontrack = (event) => {
  window.remote.push({ kind: event.track.kind, mid: event.transceiver.mid,
                       stream: event.streams[0] ? event.streams[0].id : null });
  const el = document.createElement(event.track.kind);
  el.autoplay = true; el.muted = true;
  el.srcObject = new MediaStream([event.track]);
  document.body.append(el);
};
// perfect negotiation, the polite side: offer when needed, and when the server's
// offer crosses ours, roll ours back (setRemoteDescription does it) and answer
pc.onnegotiationneeded = async () => {
  await pc.setLocalDescription();
  window.offers = [...(window.offers || []), pc.localDescription.sdp];
  send({ type: "offer", sdp: pc.localDescription.sdp });
};
async function handle(msg) {
  if (msg.type === "answer") {
    await pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
  } else if (msg.type === "offer") {
    if (hold) { held.push(msg); return; }
    await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
    await pc.setLocalDescription();
    send({ type: "answer", sdp: pc.localDescription.sdp });
  }
}
window.hold = (on) => {
  hold = on;
  if (!on) held.splice(0).reduce((p, msg) => p.then(() => handle(msg)), Promise.resolve());
};
ws.onmessage = ({ data }) => {
  const msg = JSON.parse(data);
  window.log.push(msg.type);
  handle(msg).catch((e) => window.errors.push(`${msg.type}: ${e}`));
};
window.addEventListener("unhandledrejection", (e) => window.errors.push(String(e.reason)));
ws.onopen = async () => {
  const stream = await navigator.mediaDevices.getUserMedia(
    { audio: true, video: { width: 320, height: 240 } });
  for (const track of stream.getTracks()) {
    pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
  }
};
</script></body>"""

JS_INBOUND = """async (kind) => {
  const out = { framesDecoded: 0, frameWidth: 0, packetsReceived: 0, energy: 0 };
  (await window.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === kind) {
      out.framesDecoded += r.framesDecoded || 0;
      out.frameWidth = Math.max(out.frameWidth, r.frameWidth || 0);
      out.packetsReceived += r.packetsReceived || 0;
      out.energy += r.totalAudioEnergy || 0;
    }
  });
  return out;
}"""


@contextlib.asynccontextmanager
async def page_server(r: Room, peers: list[SfuPeer]) -> AsyncIterator[str]:
    """Serves the page and bridges its WebSocket to a new SfuPeer named "browser"."""

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=1 << 20)
        await ws.prepare(request)

        async def on_offer(sdp: str) -> None:
            await ws.send_json({"type": "offer", "sdp": sdp})

        def published(track: PublishedTrack) -> None:
            r.published.append(track)
            r.changes.notify()

        peer = SfuPeer("browser", r.config, on_offer, stats=r.stats)
        peer.on_track_published = published
        peer.on_track_unpublished = lambda track: r.changes.notify()
        peer.on_connection_state_change = lambda state: r.changes.notify()
        peers.append(peer)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                if data["type"] == "offer":
                    answer = await peer.accept_offer(data["sdp"])
                    await ws.send_json({"type": "ignored"} if answer is None
                                       else {"type": "answer", "sdp": answer})
                elif data["type"] == "answer":
                    await peer.accept_answer(data["sdp"])
                elif data["type"] == "candidate":
                    await peer.add_ice_candidate(data["candidate"])
        finally:
            await peer.close()
        return ws

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/ws", ws_handler)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


@pytest.fixture
def browser(chromium_contexts: Contexts) -> Contexts:
    """The suite's shared Chromium (tests/conftest.py): this test's contexts close after it."""
    return chromium_contexts


async def test_chromium_publishes_to_and_receives_from_the_sfu(
        browser: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aiortc")
    async with room() as r:
        ann = await r.join("ann")
        ann.publish(PictureTrack(160, 96, seed=7))
        ann.publish(ToneTrack(660))
        await ann.negotiate()
        await r.until(lambda: len(r.tracks_of(ann)) == 2)
        peers: list[SfuPeer] = []
        async with page_server(r, peers) as url:
            page = await browser.new_page()
            await page.goto(url)
            await r.until(lambda: len([t for t in r.published
                                       if t.publisher_id == "browser"]) == 2, timeout=20)
            chromium = peers[0]
            # each receives the other's camera and microphone, on the one connection
            theirs = [chromium.subscribe(t) for t in r.tracks_of(ann)]
            mine = [ann.peer.subscribe(t) for t in r.published if t.publisher_id == "browser"]
            await r.until(lambda: all(s.state is SubscriptionState.ACTIVE
                                      for s in theirs + mine), timeout=20)
            await page.wait_for_function(
                "window.pc.connectionState === 'connected' && window.remote.length === 2",
                polling=250, timeout=20000)

            # the aiortc participant decodes Chromium's fake camera and hears its beep
            video = next(s.track for s in mine if s.track.kind == "video")
            audio = next(s.track for s in mine if s.track.kind == "audio")
            await r.until(lambda: ann.track_from(video) is not None
                          and ann.track_from(audio) is not None)
            frame = await next_frame(ann.track_from(video), 20)
            assert frame.width > 0 and frame.height > 0
            heard: list[float] = []
            while max((abs(x) for x in heard), default=0.0) < 0.05 and len(heard) < 48000 * 5:
                heard += mono_samples(await next_frame(ann.track_from(audio)))
            assert max(abs(x) for x in heard) >= 0.05, "only silence from Chromium"

            # Chromium decodes the forwarded video at its size and plays the audio
            await page.wait_for_function(
                f"({JS_INBOUND})('video').then(s => s.framesDecoded > 20 && "
                "s.frameWidth === 160)", polling=250, timeout=20000)
            await page.wait_for_function(
                f"({JS_INBOUND})('audio').then(s => s.packetsReceived > 50)",
                polling=250, timeout=20000)
            remote = await page.evaluate("window.remote")
            assert {t["stream"] for t in remote} == {r.tracks_of(ann)[0].stream_id}
            # Chromium's bandwidth estimate for ann's video came back as REMB
            downtrack = next(s.downtrack for s in theirs if s.track.kind == "video")
            assert downtrack is not None
            await r.until(lambda: downtrack.estimate is not None, timeout=20)
            assert chromium.rtp_unroutable == 0
            assert await page.evaluate("window.errors") == []
            await page.close()
            # the page is gone: its tracks end, and with them ann's subscriptions
            await r.until(lambda: all(s.state is SubscriptionState.ENDED for s in mine),
                          timeout=20)
            assert chromium.closed
        assert [m.getMessage() for m in caplog.records if "decode" in m.getMessage()] == []


async def test_chromium_rolls_back_on_glare_and_its_stopped_track_ends(browser: Any) -> None:
    async with room() as r:
        ann = await r.join("ann")
        ann.publish(PictureTrack(160, 96, seed=8))
        await ann.negotiate()
        await r.until(lambda: len(r.tracks_of(ann)) == 1)
        peers: list[SfuPeer] = []
        async with page_server(r, peers) as url:
            page = await browser.new_page()
            await page.goto(url)
            await r.until(lambda: len([t for t in r.published
                                       if t.publisher_id == "browser"]) == 2, timeout=20)
            chromium = peers[0]
            camera = next(t for t in r.published
                          if t.publisher_id == "browser" and t.kind == "video")
            watching_camera = ann.peer.subscribe(camera)
            await r.until(lambda: watching_camera.state is SubscriptionState.ACTIVE, timeout=20)

            await page.evaluate("window.hold(true)")  # the server's next offer waits
            watching_ann = chromium.subscribe(r.tracks_of(ann)[0])
            await page.wait_for_function("window.log.includes('offer')", polling=250,
                                         timeout=20000)
            # Chromium stops its camera and offers while the server's offer waits. (Not the
            # microphone: stopping the section that carries the BUNDLE transport makes
            # Chromium tear the transport down, which aiortc cannot follow; docs/sfu-media.md)
            await page.evaluate("""window.pc.getTransceivers()
                .find((t) => t.sender.track && t.sender.track.kind === 'video').stop()""")
            await page.wait_for_function("window.log.includes('ignored')", polling=250,
                                         timeout=20000)
            assert not camera.ended
            await page.evaluate("window.hold(false)")  # roll back, answer, offer again

            await r.until(lambda: camera.ended, timeout=20)
            assert watching_camera.state is SubscriptionState.ENDED
            await r.until(lambda: watching_ann.state is SubscriptionState.ACTIVE, timeout=20)
            await page.wait_for_function(
                f"({JS_INBOUND})('video').then(s => s.framesDecoded > 10 && "
                "s.frameWidth === 160)", polling=250, timeout=20000)
            microphone = next(t for t in r.published
                              if t.publisher_id == "browser" and t.kind == "audio")
            assert not microphone.ended
            assert chromium.signaling_state == "stable"
            assert chromium.connection_state == "connected"
            assert await page.evaluate("window.errors") == []
            offers = await page.evaluate("window.offers")
            assert "m=video 0 " in offers[-1]  # the stopped section, rejected
            # a server offer after that keeps the section rejected, and Chromium takes it
            answers = (await page.evaluate("window.log")).count("offer")
            chromium.unsubscribe(watching_ann)
            await page.wait_for_function(
                f"window.log.filter((t) => t === 'offer').length > {answers} && "
                "window.pc.signalingState === 'stable' && window.pc.getTransceivers()"
                ".some((t) => t.receiver.track.kind === 'video' && "
                "t.currentDirection === 'inactive')", polling=250, timeout=20000)
            assert await page.evaluate("window.errors") == []
            assert chromium.connection_state == "connected"
            await page.close()
