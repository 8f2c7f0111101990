"""The browser app publishes its camera as three simulcast layers in an SFU room (q/h/f
of the fake camera's 1280x720) and asks for the quality its layout shows: alone with one
other camera, high (the full 1280-wide layer); the server forwards it that layer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from rtchub.features.calls.routes import CALL_MEDIA
from tests.e2e.browser import Browser
from tests.e2e.conftest import Sessions
from tests.e2e.sfu import join_sfu, sees_video
from tests.support import Running, running

pytestmark = pytest.mark.asyncio(loop_scope="session")

# the widest frame decoded of participant `id`'s camera
JS_WIDTH = """async (id) => {
  const p = state.peers.get(id);
  if (!p || !p.stream) return 0;
  const ids = new Set(p.stream.getVideoTracks().map((t) => t.id));
  let width = 0;
  (await p.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && ids.has(r.trackIdentifier)) width = r.frameWidth || 0;
  });
  return width;
}"""


@pytest_asyncio.fixture(loop_scope="session")
async def served(sessions: Sessions) -> AsyncIterator[tuple[Running, Browser]]:
    """A server whose SFU peers gather on loopback, and the shared Chromium on it."""
    async with running(node_ips=("127.0.0.1",)) as srv, sessions(srv.url) as session:
        yield srv, session


async def test_the_camera_goes_out_as_three_layers_and_the_layout_asks_high(
        served: tuple[Running, Browser]) -> None:
    srv, browser = served
    ann = await browser.open("ann", "?topology=sfu")
    ben = await browser.open("ben")
    await join_sfu(ann, "simulcast")
    await join_sfu(ben, "simulcast")
    await sees_video(ben, "ann")
    media: Any = srv.server.app[CALL_MEDIA]
    track_id = await ben.eval(
        """() => [...state.sfu.tracks.values()].find(
             (t) => t.publisher === 'ann' && t.source === 'camera').track_id""")
    # ben shows one camera: he asks for high; once Chromium's estimate allows all three
    # layers, he decodes the full one
    await ben.wait(f"() => state.sfu.qualities.get('{track_id}') === 'high'")
    await ben.wait_async(f"async () => (await ({JS_WIDTH})('ann')) === 1280",
                         timeout=60_000)
    downtrack = media.downtrack("simulcast", "ben", track_id)
    assert downtrack is not None and downtrack.layers.ceiling == 2
    assert downtrack.layers.current == 2
    uplink = downtrack.uplink
    assert [layer.rid for layer in uplink.layers] == ["q", "h", "f"]
    assert all(layer.ssrc is not None for layer in uplink.layers)
    # ann's screen share would go out as one layer (app.sfu.quality.js); her camera's
    # encodings are the three the app asked for
    rids = await ann.eval(
        "() => state.sfu.senders.video.getParameters().encodings.map((e) => e.rid)")
    assert rids == ["q", "h", "f"]
