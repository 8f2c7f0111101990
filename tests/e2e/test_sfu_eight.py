"""Eight Chromium pages in one SFU room: each decodes the seven others' video and hears
their audio (issue 10, "Proven by": headless Chromium with 2, 4 and 8 participants).

Eight encoders and 56 decoders in one Chromium on a shared two-core machine: the server
caps video at 320x180 and 10 fps (``CALL_VIDEO_MAX_WIDTH/HEIGHT/FPS``, docs/calls.md), so
the browser app scales every layer of its simulcast camera down to that, and video at
150 kbit/s (``CALL_VIDEO_MAX_BITRATE``: less to encode, forward and decode); with seven
cameras on screen each page asks for ``low`` (layer ``q``), which is all the server
forwards it. The fake cameras make 10 frames a second, and pages other than the one
photographed get a small viewport (less to composite). No page may have joined again
(a broken connection) by the end.

Everything is read from each page's ``getStats()`` of its one connection with the server,
attributed to a participant through the ids of the tracks in their stream. Playwright's
``wait_for_function`` does not await a promise, so the predicate keeps one ``getStats()``
in flight in the page and judges the last finished one, polled every 250 ms.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from rtchub.config import CallSettings
from tests.e2e.browser import CHROMIUM_ARGS, Browser, Participant, chromium
from tests.e2e.sfu import join_sfu
from tests.support import running

pytestmark = pytest.mark.asyncio(loop_scope="session")

NAMES = ("ann", "ben", "cat", "dan", "eve", "fay", "gus", "hal")
CAPS = CallSettings(video_max_width=320, video_max_height=180, video_max_fps=10,
                    video_max_bitrate=150_000)
SMALL = (480, 270)
# joining eight, then ICE, DTLS and the first keyframe of 56 subscriptions under load
MEDIA_MS = 90_000
# the fake microphone beeps about once a second; frames arrive at 10 fps
MORE_FRAMES = 10

# {id: {frames, packets, samples, energy}} for each other participant, from the last
# finished getStats(); a new one is started whenever none is in flight
JS_SAMPLE = """() => {
  const w = window.__eight || (window.__eight = { busy: false, last: null });
  if (!w.busy && state.sfu && state.sfu.pc) {
    w.busy = true;
    const pc = state.sfu.pc;
    pc.getStats().then((report) => {
      const out = {};
      for (const [id, p] of state.peers) {
        if (!p.stream || p.pc !== pc || pc.connectionState !== 'connected') continue;
        const ids = new Set(p.stream.getTracks().map((t) => t.id));
        const got = { frames: 0, video: 0, audio: 0, packets: 0, samples: 0, energy: 0 };
        report.forEach((r) => {
          if (r.type !== 'inbound-rtp' || !ids.has(r.trackIdentifier)) return;
          if (r.kind === 'video') { got.video += 1; got.frames += r.framesDecoded || 0; }
          if (r.kind === 'audio') {
            got.audio += 1;
            got.packets += r.packetsReceived || 0;
            got.samples += r.totalSamplesReceived || 0;
            got.energy += r.totalAudioEnergy || 0;
          }
        });
        out[id] = got;
      }
      w.last = out;
    }).finally(() => { w.busy = false; });
  }
  return w.last;
}"""

# true once every one of `others` has one video stream with more frames decoded than
# `floor[id].frames` and one audio stream with more samples than `floor[id].samples`
# and some energy: media flows from each of them now
JS_FLOWING = """([others, floor]) => {
  const last = (""" + JS_SAMPLE + """)();
  if (!last) return false;
  return others.every((id) => {
    const got = last[id];
    const base = floor[id] || { frames: 0, samples: 0 };
    return got && got.video === 1 && got.audio === 1 && got.frames > base.frames
      && got.samples > base.samples && got.energy > 0;
  }) && last;
}"""

JS_TILES = """() => {
  const grid = document.querySelector('#grid').getBoundingClientRect();
  return [...document.querySelectorAll('#grid .tile')].map((t) => {
    const r = t.getBoundingClientRect();
    const v = t.querySelector('video');
    return { peer: t.dataset.peer || null, self: t.dataset.self === 'true',
             x: r.x - grid.x, y: r.y - grid.y, w: r.width, h: r.height,
             gw: grid.width, gh: grid.height, shown: !!v && v.videoWidth > 0 };
  });
}"""


# the fake cameras make 10 frames a second (20 by default): no frame is captured and
# scaled only to be dropped by the 10 fps cap
SLOW_CAMERA_ARGS = [a.replace("device-count=3", "device-count=3,fps=10") for a in CHROMIUM_ARGS]


@pytest_asyncio.fixture(loop_scope="session")
async def capped() -> AsyncIterator[Browser]:
    """A Chromium of its own (10 fps cameras) on a server whose SFU peers gather on
    loopback and whose video is capped at 320x180, 10 fps."""
    async with running(node_ips=("127.0.0.1",), calls=CAPS) as srv, \
            chromium(srv.url, args=SLOW_CAMERA_ARGS) as session:
        yield session


# what a page is at, for a failure's message
JS_WHERE = """() => ({
  signaling: state.sfu.pc && state.sfu.pc.signalingState,
  connection: state.sfu.pc && state.sfu.pc.connectionState,
  serverOffers: state.sfu.serverOffers, offersSent: state.sfu.offersSent,
  rejoins: state.sfu.rejoins, peers: state.peers.size,
  last: window.__eight && window.__eight.last,
})"""


async def flowing(person: Participant, floor: dict[str, Any]) -> dict[str, Any]:
    """Wait until every other participant's video and audio reach ``person`` beyond
    ``floor`` (their counts at some earlier moment); returns the counts then."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    others = [n for n in NAMES if n != person.name]
    try:
        handle = await person.page.wait_for_function(
            JS_FLOWING, arg=[others, floor], polling=250, timeout=MEDIA_MS)
    except PlaywrightTimeout:
        where = await person.eval(JS_WHERE)
        raise AssertionError(f"{person.name} after {MEDIA_MS} ms: {where}, wanted more "
                             f"than {floor}; console: {person.console_errors()}") from None
    got = await handle.json_value()
    assert isinstance(got, dict)
    return got


# its own waits: eight joins (20 s each at most), then three waits of MEDIA_MS
@pytest.mark.timeout(8 * 20 + 3 * MEDIA_MS // 1000 + 60)
async def test_eight_people_each_decode_and_hear_the_seven_others(capped: Browser) -> None:
    people = [await capped.open(name, "?topology=sfu",
                                viewport=(1280, 720) if name == "ann" else SMALL)
              for name in NAMES]
    for person in people:  # one after the other, as people come in
        await join_sfu(person, "sfu-eight")
    # video decoded and audio received from all seven, on every page
    first = await asyncio.gather(*(flowing(p, {}) for p in people))

    # ann's page: eight tiles, each showing video, inside the stage and apart
    ann = people[0]
    await ann.wait("() => document.querySelectorAll('#grid .tile').length === 8"
                   " && [...document.querySelectorAll('#grid video')]"
                   ".every((v) => v.videoWidth > 0)", timeout=MEDIA_MS)
    tiles = await ann.eval(JS_TILES)
    assert sorted(t["peer"] for t in tiles if not t["self"]) == sorted(NAMES[1:])
    for t in tiles:
        assert t["shown"], t
        assert t["x"] >= -0.5 and t["y"] >= -0.5, t
        assert t["x"] + t["w"] <= t["gw"] + 0.5 and t["y"] + t["h"] <= t["gh"] + 0.5, t
        assert t["w"] >= 200 and t["h"] >= 110, t
    for i, a in enumerate(tiles):
        for b in tiles[i + 1:]:
            apart = (a["x"] + a["w"] <= b["x"] + 0.5 or b["x"] + b["w"] <= a["x"] + 0.5
                     or a["y"] + a["h"] <= b["y"] + 0.5 or b["y"] + b["h"] <= a["y"] + 0.5)
            assert apart, (a, b)
    await ann.screenshot("sfu-eight")

    # and still coming: every count grows past where it was
    floors = [{peer: {"frames": got["frames"] + MORE_FRAMES, "samples": got["samples"]}
               for peer, got in counts.items()} for counts in first]
    await asyncio.gather(*(flowing(p, f) for p, f in zip(people, floors, strict=True)))
    for person in people:
        assert await person.eval("() => state.peers.size") == 7
        assert await person.eval("() => new Set([...state.peers.values()]"
                                 ".map((p) => p.pc)).size") == 1
        # one connection all along: none broke and was joined again
        assert await person.eval("() => state.sfu.rejoins") == 0, person.name
