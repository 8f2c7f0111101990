"""CALL_VIDEO_MAX_WIDTH/HEIGHT/FPS with a real Chromium publisher: the server's answer asks
for VP8 ``max-fs``/``max-fr`` (RFC 7741), which Chromium does not apply by itself, and the
browser app caps its sender to them; what a subscriber decodes fits (docs/calls.md)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from rtchub.config import CallSettings
from tests.e2e.browser import Browser
from tests.e2e.conftest import Sessions
from tests.e2e.sfu import join_sfu, sees_video
from tests.support import running

pytestmark = pytest.mark.asyncio(loop_scope="session")

# [width, height] of the video ``id`` sends, as this page decodes it (null before any)
JS_DECODED = """async (id) => {
  const p = state.peers.get(id);
  if (!p || !p.stream) return null;
  const ids = new Set(p.stream.getVideoTracks().map((t) => t.id));
  let out = null;
  (await p.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && ids.has(r.trackIdentifier) && r.frameWidth)
      out = [r.frameWidth, r.frameHeight];
  });
  return out;
}"""

JS_CAMERA_ENCODING = """() => {
  const t = state.sfu.pc.getTransceivers().find((x) => x.sender.track
    && x.sender.track.kind === 'video');
  const e = t.sender.getParameters().encodings[0];
  return [e.maxFramerate || null, e.scaleResolutionDownBy || 1];
}"""


@pytest_asyncio.fixture(loop_scope="session")
async def capped(sessions: Sessions) -> AsyncIterator[Browser]:
    """The shared Chromium on a server that allows at most 320x180 at 10 fps."""
    calls = CallSettings(video_max_width=320, video_max_height=180, video_max_fps=10)
    async with running(node_ips=("127.0.0.1",), calls=calls) as srv, \
            sessions(srv.url) as session:
        yield session


async def test_a_chromium_publisher_sends_within_the_configured_frame_size_and_rate(
        capped: Browser) -> None:
    ann = await capped.open("ann", "?topology=sfu")
    ben = await capped.open("ben", "?topology=sfu")
    await join_sfu(ann, "limits")
    await join_sfu(ben, "limits")
    await sees_video(ben, "ann")
    answer = await ann.eval("() => state.sfu.pc.remoteDescription.sdp")
    assert "max-fr=10;max-fs=240" in answer  # 20 x 12 macroblocks
    max_fps, scale = await ann.eval(JS_CAMERA_ENCODING)
    assert max_fps == 10 and scale > 1
    await sees_video(ben, "ann")  # frames sent after the cap
    width, height = await ben.wait_async(JS_DECODED, "ann")
    assert math.ceil(width / 16) * math.ceil(height / 16) <= 240, (width, height)
    assert width <= 16 * math.sqrt(8 * 240) and height <= 16 * math.sqrt(8 * 240)
    camera = await ann.eval("() => state.localStream.getVideoTracks()[0].getSettings()")
    assert camera["width"] * camera["height"] > 240 * 256  # the camera itself is larger
