"""Screen share by replaceTrack and recording to a playable WebM, in headless Chromium."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

from tests.e2e.browser import ARTIFACTS, Browser, Participant

pytestmark = pytest.mark.asyncio(loop_scope="session")

JS_SENT_VIDEO = """(id) => {
  const t = state.peers.get(id).pc.getTransceivers()
    .find((x) => x.receiver.track.kind === 'video');
  return t.sender.track ? t.sender.track.id : null;
}"""


async def pair(browser: Browser, room: str) -> tuple[Participant, Participant]:
    alice, bob = await browser.open_all("alice", "bob")
    await alice.join(room)
    await bob.join(room)
    await alice.wait_connected("bob")
    await bob.wait_connected("alice")
    await bob.wait_frames("alice")
    await alice.wait_frames("bob")
    return alice, bob


JS_RECEIVED = """(id) => {
  const r = state.peers.get(id).pc.getReceivers().find((x) => x.track.kind === 'video');
  return r.track.id;
}"""

JS_FPS_BELOW = """async ([id, most]) => {
  let fps = 0;
  (await state.peers.get(id).pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') fps = r.framesPerSecond || 0;
  });
  return fps > 0 && fps <= most && fps;
}"""

# the colour at the centre of the picture bob's page shows for a peer
JS_CENTER_PIXEL = """(id) => {
  const v = document.querySelector(`#grid .tile[data-peer="${id}"] video`);
  if (!v || !v.videoWidth) return null;
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0);
  return [...g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data.slice(0, 3)];
}"""

JS_MAGENTA = """(id) => {
  const px = (""" + JS_CENTER_PIXEL + """)(id);
  return px && px[0] > 180 && px[1] < 90 && px[2] > 180;
}"""

JS_CANVAS_SHARE = """async () => {
  const c = document.createElement('canvas');
  c.width = 640; c.height = 480;
  const g = c.getContext('2d');
  const paint = () => { g.fillStyle = '#ff00ff'; g.fillRect(0, 0, 640, 480);
    g.fillStyle = '#000'; g.fillText(String(performance.now()), 10, 20); };
  paint();
  window.__paint = setInterval(paint, 50);
  return rtchub.useScreenStream(c.captureStream(15));
}"""


async def test_screen_share_replaces_the_outgoing_track(browser: Browser) -> None:
    alice, bob = await pair(browser, "share")
    camera = await alice.eval("() => state.localStream.getVideoTracks()[0].id")
    assert await alice.eval(JS_SENT_VIDEO, "bob") == camera
    offers = await alice.eval("() => state.peers.get('bob').negotiations")
    received = await bob.eval(JS_RECEIVED, "alice")

    # a real click (a user gesture) on the button: getDisplayMedia, auto-accepted
    # by --auto-select-desktop-capture-source; Chromium's fake screen is 1280x720 at 15 fps
    await alice.page.click("#btn-screen")
    await alice.wait("() => state.usingScreen && state.screenStream !== null")
    screen = await alice.eval("() => state.screenStream.getVideoTracks()[0]"
                              ".getSettings().deviceId")
    assert screen.startswith("screen:")
    screen_id = await alice.eval("() => state.screenStream.getVideoTracks()[0].id")
    assert screen_id != camera
    assert await alice.eval(JS_SENT_VIDEO, "bob") == screen_id
    await bob.wait("(id) => state.peers.get(id).remote.sharing", "alice")
    # bob now decodes the screen's 15 fps (the camera runs at 30) on the same receiver track
    await bob.wait_async(JS_FPS_BELOW, ["alice", 17])
    await bob.wait_decoding("alice")
    assert await bob.eval(JS_RECEIVED, "alice") == received
    await alice.screenshot("screen-share")

    await alice.page.click("#btn-screen")
    await alice.wait("() => !state.usingScreen")
    assert await alice.eval(JS_SENT_VIDEO, "bob") == camera
    await bob.wait("(id) => !state.peers.get(id).remote.sharing", "alice")

    # content check: share a magenta canvas through the same replaceTrack path and
    # see it arrive in bob's <video>, then the camera come back when the share ends
    assert await bob.eval(JS_MAGENTA, "alice") is False
    assert await alice.eval(JS_CANVAS_SHARE) is True
    await bob.wait(JS_MAGENTA, "alice")
    await alice.eval("() => { state.screenStream.getVideoTracks()[0].stop(); "
                     "state.screenStream.getVideoTracks()[0].dispatchEvent(new Event('ended')); }")
    await alice.wait("() => !state.usingScreen")
    await bob.wait(f"(id) => !({JS_MAGENTA})(id)", "alice")
    await bob.wait_decoding("alice")
    # four track swaps, not one new offer or answer
    assert await alice.eval("() => state.peers.get('bob').negotiations") == offers
    assert await bob.eval(JS_RECEIVED, "alice") == received


async def test_recording_downloads_a_playable_webm(browser: Browser) -> None:
    alice, _ = await pair(browser, "rec")
    await alice.page.click("#btn-record")
    await alice.wait("() => state.recorder && state.recorder.state === 'recording'")
    await alice.wait("() => state.recordedChunks.length >= 3")
    async with alice.page.expect_download() as info:
        await alice.page.click("#btn-record")
    download = await info.value
    assert download.suggested_filename.startswith("rtchub-rec-")
    assert download.suggested_filename.endswith(".webm")
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "recording.webm"
    await download.save_as(str(path))
    assert await alice.eval("() => state.recorder") is None

    with av.open(str(path)) as container:
        kinds = sorted(s.type for s in container.streams)
        assert kinds == ["audio", "video"]
        video = container.streams.video[0]
        frames = [f for f in container.decode(video)]
    assert len(frames) >= 5, f"only {len(frames)} frames decoded"
    assert (frames[-1].width, frames[-1].height) == (1280, 720)
    first_pts, last_pts, base = frames[0].pts, frames[-1].pts, video.time_base
    assert first_pts is not None and last_pts is not None and base is not None
    span = (last_pts - first_pts) * Fraction(base)
    assert span > Fraction(1, 4), f"recording spans only {float(span):.2f}s"
    # the picture is the call grid, not a blank canvas: pixels differ across the frame
    gray = bytes(frames[-1].reformat(format="gray").planes[0])
    assert max(gray) - min(gray) > 50
