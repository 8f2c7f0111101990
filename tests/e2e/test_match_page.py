"""/match in the app's look: a call at desktop and 390 px, a blocked camera, partner pictures."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser import Browser, Participant
from tests.support import Running

pytestmark = pytest.mark.asyncio(loop_scope="session")

PHONE = (390, 844)

JS_DECODED = """() => {
  const pc = window.rtchubMatch.pc;
  if (!pc) return false;
  return pc.getStats().then((stats) => {
    for (const s of stats.values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video' && s.framesDecoded > 0) return true;
    }
    return false;
  });
}"""

JS_BOX = """(sel) => {
  const r = document.querySelector(sel).getBoundingClientRect();
  return { x: r.x, y: r.y, w: r.width, h: r.height };
}"""


async def stranger(browser: Browser, name: str, viewport: tuple[int, int] = (1280, 720),
                   permissions: bool = True) -> Participant:
    """/match opened in a context of its own, with ``name`` typed in."""
    person = await browser.page(name, "/match", viewport=viewport, permissions=permissions)
    await person.page.fill("#name", name)
    return person


async def test_two_strangers_at_desktop_and_on_a_phone(browser: Browser) -> None:
    ann = await stranger(browser, "Ann")
    bob = await stranger(browser, "Bob", viewport=PHONE)
    await ann.page.click("#start")
    await ann.wait("() => document.body.dataset.state === 'waiting'")
    await bob.page.click("#start")
    for person in (ann, bob):
        await person.wait("() => document.body.dataset.state === 'matched'")
        await person.page.wait_for_function(JS_DECODED, polling=200)
        await person.wait("() => document.getElementById('remote-video').videoWidth > 0")
    await bob.page.fill("#chat-input", "hi from my phone")
    await bob.page.press("#chat-input", "Enter")
    await ann.wait("() => [...document.querySelectorAll('#messages li')]"
                   ".some((li) => li.textContent.includes('hi from my phone'))")

    # on the phone: the whole stranger is on screen, uncropped, and so is the chat input
    video = await bob.eval(JS_BOX, "#remote-video")
    assert video["x"] >= 0 and video["x"] + video["w"] <= PHONE[0]
    assert video["y"] >= 0 and video["y"] + video["h"] <= PHONE[1]
    fit = await bob.eval("() => getComputedStyle(document.getElementById('remote-video'))"
                         ".objectFit")
    assert fit == "contain"
    chat = await bob.eval(JS_BOX, "#chat-input")
    assert chat["y"] + chat["h"] <= PHONE[1] and chat["w"] > 200
    assert await bob.eval("() => document.scrollingElement.scrollHeight <= innerHeight + 1")
    await ann.screenshot("match-desktop")
    await bob.screenshot("match-phone")
    for person in (ann, bob):
        assert person.failed == [] and person.console_errors() == []


async def test_a_blocked_camera_is_explained(app_server: Running, strict_chromium: Any) -> None:
    browser = Browser(strict_chromium, app_server.url)
    try:
        for size, shot in (((1280, 720), "match-blocked"), (PHONE, "match-blocked-phone")):
            dan = await stranger(browser, "Dan", viewport=size, permissions=False)
            await dan.wait("() => !document.getElementById('camera-problem').hidden")
            title = await dan.eval("() => document.getElementById('camera-problem-title')"
                                   ".textContent")
            assert "blocked" in title
            text = await dan.eval("() => document.getElementById('camera-problem').innerText")
            assert "address bar" in text and "Try again" in text
            await dan.page.click("#start")
            await dan.wait("() => document.body.dataset.state === 'error'")
            assert "Camera unavailable" in await dan.eval(
                "() => document.getElementById('status').textContent")
            await dan.screenshot(shot)
    finally:
        await browser.close()


async def test_only_inline_images_are_shown_for_a_partner(browser: Browser) -> None:
    page = await browser.page("Eve", "/match")
    await page.wait("() => window.rtchubMatch && window.rtchubMatch.showPartner")
    requested: list[str] = []
    page.page.on("request", lambda r: requested.append(r.url))
    pixel = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4"
             "2mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
    cases = [
        (pixel, True),
        ("data:image/jpeg;base64,/9j/4AAQ", True),
        ("https://tracker.example/pixel.png", False),
        ("http://127.0.0.1:9/x.png", False),
        ("javascript:alert(1)", False),
        ("data:text/html;base64,PHNjcmlwdD4=", False),
        (" data:image/png;base64,AAAA", False),
        ("", False),
    ]
    for image, shown in cases:
        state = await page.eval("""(image) => {
          rtchubMatch.showPartner({ userName: 'Zoe', socket: 'x', userImage: image });
          const thumb = document.getElementById('remote-thumb');
          const avatar = document.getElementById('remote-avatar');
          return { thumb: !thumb.hidden, src: thumb.getAttribute('src'), avatar: !avatar.hidden,
                   initial: avatar.textContent };
        }""", image)
        assert state["thumb"] is shown, image
        assert state["avatar"] is not shown, image
        if shown:
            assert state["src"] == image
        else:
            assert state["src"] is None and state["initial"] == "Z"
    assert not [u for u in requested if "tracker.example" in u or u.startswith("http://127.0.0.1:9")]
    # a number or an object from a partner is no picture either
    for odd in ("12", "{}", "null"):
        assert await page.eval(f"() => rtchubMatch.safeImage({odd})") is False
