"""Where the tiles go: 1 to 9 people on a desktop and on a 390 px phone, upright and sideways."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.browser import Browser, Participant

pytestmark = pytest.mark.asyncio(loop_scope="session")

PHONE = (390, 844)
PHONE_SIDEWAYS = (844, 390)

# the grid of app.layout.js for 1..9 tiles in stages the app really has
JS_GRIDS = """async (stages) => {
  const { fitTiles } = await import('/app.layout.js');
  return stages.map(([w, h, gap]) =>
    Array.from({ length: 9 }, (_, i) => fitTiles(i + 1, w, h, gap)));
}"""

JS_BOX = """(sel) => {
  const el = document.querySelector(sel);
  if (!el) return null;
  const r = el.getBoundingClientRect();
  return { x: r.x, y: r.y, w: r.width, h: r.height };
}"""

JS_STAGE = """() => {
  const g = document.querySelector('#grid');
  return [g.clientWidth, g.clientHeight];
}"""


async def test_grids_for_one_to_nine_tiles_fill_the_stage(browser: Browser) -> None:
    page = await browser.open("layout")
    stages = [(1252, 564, 12), (374, 700, 8), (832, 290, 6), (1900, 960, 12)]
    grids = await page.eval(JS_GRIDS, [list(s) for s in stages])
    for (width, height, gap), by_count in zip(stages, grids, strict=True):
        tall = height > width
        for n, g in enumerate(by_count, start=1):
            where = f"{n} tiles in {width}x{height}"
            assert g["cols"] * g["rows"] >= n and (g["cols"] - 1) * g["rows"] < n, where
            assert g["cols"] * g["w"] + (g["cols"] - 1) * gap <= width + 0.5, where
            assert g["rows"] * g["h"] + (g["rows"] - 1) * gap <= height + 0.5, where
            shape = g["w"] / g["h"]
            assert (0.74 if tall else 1.32) <= shape <= 1.79, (where, shape)
            # large tiles: together they cover more than half of the stage
            assert n * g["w"] * g["h"] >= 0.5 * width * height, where
    desk = {n: (g["cols"], g["rows"]) for n, g in enumerate(grids[0], start=1)}
    assert desk[4] == (2, 2) and desk[6] == (3, 2) and desk[9] == (3, 3)
    phone = {n: g["cols"] for n, g in enumerate(grids[1], start=1)}
    assert phone[3] == 1 and phone[6] == 2 and phone[9] == 2


async def call_of_two(browser: Browser, viewport: tuple[int, int] = (1280, 720),
                      ) -> tuple[Participant, Participant]:
    """alice (at ``viewport``) and bob in a connected call, alice decoding bob."""
    alice = await browser.open("alice", viewport=viewport)
    bob = await browser.open("bob")
    await alice.join("pair")
    await bob.join("pair")
    await alice.wait_connected("bob")
    await alice.wait_frames("bob", 3)
    return alice, bob


async def check_one_to_one(alice: Participant) -> None:
    """The other person fills the stage, uncropped; you are a small picture inside it."""
    await alice.wait("() => document.querySelector('#grid').dataset.layout === 'pip'")
    grid = await alice.eval(JS_BOX, "#grid")
    remote = await alice.eval(JS_BOX, '#grid .tile[data-peer="bob"]')
    me = await alice.eval(JS_BOX, '#grid .tile[data-self="true"]')
    assert abs(remote["w"] - grid["w"]) < 2 and abs(remote["h"] - grid["h"]) < 2
    assert me["w"] * me["h"] < 0.12 * grid["w"] * grid["h"]
    assert grid["x"] <= me["x"] and me["x"] + me["w"] <= grid["x"] + grid["w"] + 1
    assert grid["y"] <= me["y"] and me["y"] + me["h"] <= grid["y"] + grid["h"] + 1
    # the picture is shown whole, or cut by 15% at most where that fills the stage
    shown = await alice.eval("""async () => {
      const { coverShare } = await import('/app.ui.js');
      const v = document.querySelector('#grid .tile[data-peer="bob"] video');
      const fit = getComputedStyle(v).objectFit;
      if (fit === 'contain') return 1;
      return coverShare(v.videoWidth, v.videoHeight, v.clientWidth, v.clientHeight);
    }""")
    assert shown >= 0.85


async def test_one_to_one_shows_the_other_person_large_and_you_small(browser: Browser) -> None:
    alice, _ = await call_of_two(browser)
    await check_one_to_one(alice)
    await alice.screenshot("call-two")

    await alice.page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    await check_one_to_one(alice)
    # the remote picture uses the phone's width: no band of empty screen under it
    grid = await alice.eval(JS_BOX, "#grid")
    assert grid["h"] > 0.75 * PHONE[1] - 130
    # the People count sits on the button's corner, not over its icon
    count = await alice.eval(JS_BOX, "#people-count")
    icon = await alice.eval(JS_BOX, "#btn-people .i svg")
    overlap_w = min(count["x"] + count["w"], icon["x"] + icon["w"]) - max(count["x"], icon["x"])
    overlap_h = min(count["y"] + count["h"], icon["y"] + icon["h"]) - max(count["y"], icon["y"])
    assert overlap_w <= 0 or overlap_h <= 0 or overlap_w * overlap_h < 0.2 * icon["w"] * icon["h"]
    await alice.screenshot("call-two-phone")
    # chat is one tap away and its input is on screen
    await alice.page.click("#btn-chat")
    box = await alice.eval(JS_BOX, "#chat-input")
    assert box["y"] + box["h"] <= PHONE[1] and box["w"] > 200
    await alice.screenshot("call-two-phone-chat")
    await alice.page.click("#btn-chat")

    await alice.page.set_viewport_size({"width": PHONE_SIDEWAYS[0], "height": PHONE_SIDEWAYS[1]})
    await check_one_to_one(alice)
    controls = await alice.eval(JS_BOX, "#controls")
    assert controls["y"] + controls["h"] <= PHONE_SIDEWAYS[1]
    assert (await alice.eval(JS_BOX, "#grid"))["h"] > 0.6 * PHONE_SIDEWAYS[1]
    await alice.screenshot("call-two-phone-sideways")


async def test_four_people_share_the_stage_evenly(browser: Browser) -> None:
    # a star (only ann calls) keeps this light: ann's page is the one being looked at
    ann, *others = await asyncio.gather(
        *(browser.open(name, "?autocall=0") for name in ("ann", "ben", "cat", "dan")))
    await asyncio.gather(*(person.join("four") for person in (ann, *others)))
    await ann.wait("() => state.members.length === 4")
    await ann.eval("() => { for (const id of ['ben', 'cat', 'dan']) callPeer(id); }")
    await ann.wait_connected("ben", "cat", "dan")
    for other in others:
        await ann.wait_frames(other.name, 3)
    for viewport, cols, name in (((1280, 720), 2, "call-four"), (PHONE, 1, "call-four-phone")):
        await ann.page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
        await ann.wait("(cols) => {"
                       " const g = document.querySelector('#grid');"
                       " return g.dataset.layout === 'grid' && g.style.getPropertyValue('--cols')"
                       " === String(cols); }", cols)
        width, height = await ann.eval(JS_STAGE)
        boxes = [await ann.eval(JS_BOX, f'#grid .tile[data-peer="{who}"]')
                 for who in ("ann", "ben", "cat", "dan")]
        assert len({(round(b["w"]), round(b["h"])) for b in boxes}) == 1  # one size for all
        assert sum(b["w"] * b["h"] for b in boxes) >= 0.5 * width * height
        await ann.screenshot(name)
