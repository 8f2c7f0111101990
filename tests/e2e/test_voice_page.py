"""The voice page: nothing live, going live, listening, the end; not secure; microphone blocked.

The page uses the server's rtchub additions to seed 002 when they are there (a
broadcast's name, when it started, its listeners) and does without them otherwise;
the server's greeting says which (``available_streams`` with ``details``), and the
test expects what that server can give.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.e2e.browser import LAN_HOST, Browser, Participant
from tests.e2e.conftest import Sessions
from tests.support import Running, WsClient, running

pytestmark = pytest.mark.asyncio(loop_scope="session")

PHONE = (390, 844)
JS_OPEN = "() => window.voice && window.voice.state === 'open'"


def level_above(meter: str, floor: float = 0.05) -> str:
    """JavaScript: the meter ``meter`` (an element id) reads above ``floor``."""
    return f"() => Number(document.getElementById('{meter}').dataset.level) > {floor}"


async def voice_page(browser: Browser, name: str, viewport: tuple[int, int] = (1280, 720),
                     **kw: Any) -> Participant:
    """/voice.html opened and connected to the server."""
    page = await browser.page(name, "/voice.html", viewport=viewport, **kw)
    await page.wait(JS_OPEN)
    return page


async def test_go_live_listen_and_the_end(sessions: Sessions) -> None:
    async with running(node_ips=("127.0.0.1",)) as srv, sessions(srv.url) as browser:
        watcher = await WsClient.connect(srv.ws_url)
        try:
            assert watcher.greeting is not None
            extended = "details" in watcher.greeting
            listener = await voice_page(browser, "listener")
            # nothing live: said in words, with the MP3 address for plain players
            empty = await listener.eval("() => document.getElementById('no-streams')")
            assert empty is not None
            assert await listener.eval("() => !document.getElementById('no-streams').hidden")
            assert await listener.eval("() => document.getElementById('latest-mp3').value") \
                == f"{srv.url}/stream/latest.mp3"
            await listener.screenshot("voice-empty")

            sender = await voice_page(browser, "sender", viewport=PHONE)
            await sender.page.fill("#stream-name", "Kitchen radio")
            await sender.page.click("#send")
            live = await watcher.expect("stream_available", timeout=15)
            stream = live["stream_id"]
            await sender.wait("() => window.voice.sending.status === 'live'")
            assert await sender.eval("() => window.voice.state") == "connected"
            assert await sender.eval("() => !document.getElementById('live-mark').hidden")
            assert await sender.eval("() => document.getElementById('send-state').textContent") \
                == "You are live"
            await sender.wait(level_above("send-meter"))  # Chromium's fake microphone beeps
            assert await sender.eval("() => document.getElementById('own-mp3').value") \
                == f"{srv.url}/stream/{stream}.mp3"

            # the listener sees it by name (or as unnamed) and how long it has been live
            title = "Kitchen radio" if extended else "Unnamed broadcast"
            row = f'#stream-list li[data-stream="{stream}"]'
            await listener.wait(f"() => document.querySelector('{row} .name')"
                                f"?.textContent === '{title}'")
            meta = await listener.eval(f"() => document.querySelector('{row} .meta').textContent")
            assert meta.startswith("live")
            await listener.page.click(f'{row} button[data-listen="{stream}"]')
            await listener.wait("() => window.voice.listening.status === 'playing'")
            assert await listener.eval("() => document.getElementById('player-state')"
                                       ".textContent") == "Playing"
            await listener.wait(level_above("play-meter"))  # what it hears is not silence
            assert await listener.eval("() => !document.getElementById('player').paused")
            if extended:  # the sender is told who listens
                await sender.wait("() => document.getElementById('listeners').dataset.count"
                                  " === '1'")
            await listener.screenshot("voice-listening")
            await sender.screenshot("voice-live-phone")

            await sender.page.click("#stop")
            ended = await watcher.expect("stream_ended", timeout=15)
            assert ended["stream_id"] == stream
            await sender.wait("() => window.voice.sending.status === 'idle'")
            await listener.wait("() => window.voice.listening.status === 'idle'"
                                " && !document.getElementById('no-streams').hidden")
            said = await listener.eval("() => document.getElementById('listen-problem').innerText")
            assert "ended" in said
            await listener.screenshot("voice-ended")
            for page in (listener, sender):
                assert page.failed == [] and page.console_errors() == []
        finally:
            await watcher.close()


async def test_not_secure_and_a_blocked_microphone_say_what_to_do(
        browser: Browser, app_server: Running, strict_chromium: Any) -> None:
    lan = f"http://{LAN_HOST}:{app_server.port}"
    for size, shot in (((1280, 720), "voice-insecure"), (PHONE, "voice-insecure-phone")):
        page = await voice_page(browser, "lan", viewport=size, base_url=lan)
        assert await page.eval("() => isSecureContext") is False
        text = await page.wait("() => !document.getElementById('send-problem').hidden"
                               " && document.getElementById('send-problem').innerText")
        for words in ("secure page", "https://", "TLS_CERT_FILE", "TLS_KEY_FILE", "localhost"):
            assert words in text
        assert lan in text  # the address it was opened at
        assert await page.eval("() => document.getElementById('send').disabled") is True
        await page.screenshot(shot)

    strict = Browser(strict_chromium, app_server.url)
    try:
        dan = await voice_page(strict, "dan", permissions=False)
        await dan.page.click("#send")
        said = await dan.wait("() => !document.getElementById('send-problem').hidden"
                              " && document.getElementById('send-problem').innerText")
        assert "blocked" in said and "address bar" in said
        assert await dan.eval("() => window.voice.sending.status") == "idle"
        await dan.screenshot("voice-mic-blocked")
        # nothing was started on the server for a microphone that never opened
        async with aiohttp.ClientSession() as http, \
                http.get(f"{app_server.url}/stream/status") as resp:
            assert (await resp.json())["active_streams"] == []
    finally:
        await strict.close()
