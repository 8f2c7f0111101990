"""The /match page in headless Chromium: two strangers meet, see each other, chat, part.

Run inside a loopback-only namespace (scripts/test does):
``unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh .venv/bin/python -m pytest ...``
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from rtchub.features.match.routes import MATCH
from tests.e2e.browser import Contexts
from tests.support import Running, running

# one Chromium for the suite (tests/conftest.py), so the test runs in the session's loop
pytestmark = [pytest.mark.browser, pytest.mark.webrtc, pytest.mark.asyncio(loop_scope="session")]

ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
TIMEOUT_MS = 20_000

DECODED = """() => {
  const pc = window.rtchubMatch.pc;
  if (!pc) return false;
  return pc.getStats().then((stats) => {
    for (const s of stats.values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video' && s.framesDecoded > 0) return true;
    }
    return false;
  });
}"""


@pytest.fixture
def browser(chromium_contexts: Contexts) -> Contexts:
    """The suite's shared Chromium (tests/conftest.py): this test's contexts close after it."""
    return chromium_contexts


@pytest_asyncio.fixture(loop_scope="session")
async def server() -> AsyncIterator[Running]:
    """An rtchub server on a free loopback port, in the session's loop as the test is."""
    async with running() as srv:
        yield srv


async def open_page(browser: Any, url: str, name: str) -> Any:
    context = await browser.new_context(viewport={"width": 1180, "height": 760})
    await context.grant_permissions(["camera", "microphone"])
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    await page.goto(f"{url}/match")
    await page.fill("#name", name)
    return page


async def test_two_strangers_meet_chat_and_part(server: Running, browser: Any) -> None:
    ann = await open_page(browser, server.url, "Ann")
    bob = await open_page(browser, server.url, "Bob")

    await ann.click("#start")
    await ann.wait_for_selector("body[data-state='waiting']")
    await bob.click("#start")
    await ann.wait_for_selector("body[data-state='matched']")
    await bob.wait_for_selector("body[data-state='matched']")
    assert await ann.text_content("#remote-name") == "Bob"
    assert await bob.text_content("#remote-name") == "Ann"
    # the page opens a WebSocket first: both are on the fast path (features/match/eio.py)
    assert len(server.server.app[MATCH].fast.sessions) == 2
    thumb = await ann.get_attribute("#remote-thumb", "src")
    assert thumb is not None and thumb.startswith("data:image/jpeg;base64,")

    # each side decodes the other's camera
    await ann.wait_for_function(DECODED, polling=200)
    await bob.wait_for_function(DECODED, polling=200)

    await ann.fill("#chat-input", "hello stranger")
    await ann.click("#send")
    await bob.wait_for_selector("#messages li:has-text('hello stranger')")
    await ann.wait_for_selector("#messages li.mine:has-text('hello stranger')")
    await bob.fill("#chat-input", "hi Ann!")
    await bob.press("#chat-input", "Enter")
    await ann.wait_for_selector("#messages li:has-text('hi Ann!')")

    # let the remote video paint a frame, then keep a picture of the call
    await ann.wait_for_function(
        "() => document.getElementById('remote-video').videoWidth > 0", polling=100)
    ARTIFACTS.mkdir(exist_ok=True)
    await ann.screenshot(path=str(ARTIFACTS / "match-call.png"))

    await ann.click("#next")
    await bob.wait_for_selector("body[data-state='left']")
    assert "Ann left" in (await bob.text_content("#status") or "")
    await ann.wait_for_selector("body[data-state='waiting']")

    # Next queued Ann again (after the request-room rate limit, if it applied):
    # a newcomer meets her
    cat = await open_page(browser, server.url, "Cat")
    await cat.click("#start")
    await cat.wait_for_selector("body[data-state='matched']")
    await ann.wait_for_selector("body[data-state='matched']")
    assert await cat.text_content("#remote-name") == "Ann"
    assert await ann.text_content("#remote-name") == "Cat"
    status = await (await ann.request.get(f"{server.url}/api/status")).json()
    assert status["queue"]["size"] == 0
    assert status["rooms"] == {"active": 1, "total": 2}
    assert ann.errors == [] and bob.errors == [] and cat.errors == []
