"""rtchub's pages as one product: one header, one stylesheet, a favicon and no 404 anywhere."""

from __future__ import annotations

import pytest

from tests.e2e.browser import LAN_HOST, Browser, Participant
from tests.support import Running

pytestmark = pytest.mark.asyncio(loop_scope="session")

PAGES = {"/": "/", "/match": "/match", "/voice.html": "/voice.html"}

JS_LOOK = """() => ({
  brand: document.querySelector('.topbar .brand').textContent.trim(),
  brandHref: document.querySelector('.topbar .brand').getAttribute('href'),
  nav: [...document.querySelectorAll('.topbar .nav a')].map((a) => a.getAttribute('href')),
  current: [...document.querySelectorAll('.topbar .nav a[aria-current="page"]')]
    .map((a) => a.getAttribute('href')),
  icon: document.querySelector('link[rel="icon"]').href,
  sheets: [...document.styleSheets].map((s) => new URL(s.href).pathname),
  background: getComputedStyle(document.body).backgroundColor,
  font: getComputedStyle(document.body).fontFamily,
  header: getComputedStyle(document.querySelector('.topbar')).backgroundColor,
})"""

JS_LOOKS_DISABLED = """([on, off]) => {
  const a = getComputedStyle(document.querySelector(on));
  const b = getComputedStyle(document.querySelector(off));
  return {
    enabled: a.backgroundColor, disabled: b.backgroundColor,
    cursor: b.cursor, disabledText: b.color, enabledText: a.color,
  };
}"""


def clean(person: Participant) -> None:
    """Nothing on the page failed to load, and the console says so too."""
    assert person.failed == [], person.failed
    assert not [line for line in person.console if "Failed to load resource" in line]


async def test_every_page_has_the_same_header_look_and_icon(browser: Browser,
                                                            app_server: Running) -> None:
    looks = {}
    page = await browser.page("look", "/voice.html")
    for size in ((1280, 720), (390, 844)):
        await page.page.set_viewport_size({"width": size[0], "height": size[1]})
        for path, current in PAGES.items():
            await page.page.goto(f"{app_server.url}{path}")
            look = await page.eval(JS_LOOK)
            assert look["brand"] == "rtchub" and look["brandHref"] == "/"
            assert look["nav"] == ["/", "/match", "/voice.html"]
            assert look["current"] == [current]
            assert look["icon"].endswith("/favicon.svg")
            assert look["sheets"][0] == "/ui.css"
            # the favicon really loads
            status = await page.eval("async (u) => (await fetch(u)).status", look["icon"])
            assert status == 200
            looks[(path, size)] = {k: look[k] for k in ("background", "font", "header")}
    # pages that name no icon (the MP3 waiting page, a browser's own guess) get one too
    ico = await page.eval("""async () => { const r = await fetch('/favicon.ico');
      return [r.status, r.headers.get('content-type')]; }""")
    assert ico == [200, "image/x-icon"]
    clean(page)
    assert len({tuple(v.values()) for v in looks.values()}) == 1, looks


async def test_disabled_buttons_look_disabled(browser: Browser) -> None:
    match = await browser.page("match", "/match")
    await match.wait("() => document.querySelector('#next').disabled"
                     " && !document.querySelector('#start').disabled")
    # Start (enabled, primary) and Stop (disabled, danger) against Next (disabled, neutral)
    look = await match.eval(JS_LOOKS_DISABLED, ["#start", "#next"])
    assert look["enabled"] != look["disabled"] and look["cursor"] == "not-allowed"
    stop = await match.eval(JS_LOOKS_DISABLED, ["#start", "#stop"])
    assert stop["disabled"] == look["disabled"] and stop["disabledText"] == look["disabledText"]
    app = await browser.open("lobby")
    join = await app.eval(JS_LOOKS_DISABLED, ["#room-random", "#join-btn"])
    assert join["disabled"] == look["disabled"] and join["cursor"] == "not-allowed"


async def test_a_page_that_is_not_secure_says_how_to_fix_it(browser: Browser,
                                                            app_server: Running) -> None:
    # http://lan.rtchub.test:PORT is plain http at an address that is not localhost
    lan = f"http://{LAN_HOST}:{app_server.port}"
    for size, name in (((1280, 720), "lobby-insecure"), ((390, 844), "lobby-insecure-phone")):
        page = await browser.page("lan", "/", viewport=size, base_url=lan)
        await page.wait("() => document.documentElement.dataset.ready === 'true'")
        assert await page.eval("() => isSecureContext") is False
        text = await page.wait("() => document.querySelector('#preview').dataset.state"
                               " === 'insecure'"
                               " && document.querySelector('#preview-msg').innerText")
        for words in ("https://", "TLS_CERT_FILE", "TLS_KEY_FILE", "localhost"):
            assert words in text
        await page.screenshot(name)
        clean(page)
    # joining still works: the others can be seen and heard
    await page.page.fill("#room-input", "lan")
    await page.page.click("#join-btn")
    await page.wait("() => state.roomState === 'joined'")
    assert await page.eval("() => state.localStream") is None
    notice = await page.wait("() => document.querySelector('#notice').dataset.code === 'insecure'"
                             " && document.querySelector('#notice .t').textContent")
    assert "HTTPS" in notice and "localhost" in notice
