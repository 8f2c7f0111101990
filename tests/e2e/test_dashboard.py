"""The dashboard in Chromium: sign in with the token, watch rooms appear as clients join."""

from __future__ import annotations

import pytest

from tests.calls.support import call
from tests.e2e.browser import ARTIFACTS
from tests.e2e.conftest import Sessions
from tests.match.support import SioClient
from tests.pairing.support import mint, side
from tests.support import WsClient
from tests.voice.voiceclients import start_sender

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOKEN = "dashboard-token-for-the-browser-test"

JS_ROOMS = "() => [...document.querySelectorAll('#rooms [data-room]')].map((r) => r.dataset.room)"
JS_SFU_READY = """() => {
  const room = document.querySelector('#rooms [data-room="daily"]');
  return room && room.querySelectorAll('.tracks tbody tr').length === 4
    && room.querySelectorAll('.person canvas.graph').length === 2;
}"""
JS_OTHERS = """() => document.querySelectorAll('#streams tbody tr').length === 1
  && document.querySelectorAll('#pairs tbody tr').length === 1
  && document.querySelectorAll('#match .queue li').length === 1"""


async def test_the_dashboard_shows_rooms_live(sessions: Sessions) -> None:
    async with call(dashboard_token=TOKEN) as c, sessions(c.srv.url) as browser:
        admin = await browser.page("admin", "/dashboard", permissions=False,
                                   viewport=(1280, 900))
        await admin.page.fill("input[name=token]", TOKEN)
        await admin.page.click("button[type=submit]")
        await admin.wait("() => document.querySelector('#rooms .empty') !== null")
        assert await admin.page.evaluate(JS_ROOMS) == []
        # a mesh room: two clients of the rooms protocol
        alice = await WsClient.connect(c.srv.ws_url + "/rooms")
        bob = await WsClient.connect(c.srv.ws_url + "/rooms")
        sender = await start_sender(c.srv.ws_url, 440)
        app_id = str((await mint(c.srv))["appID"])
        a, b = await side(c.srv, app_id, "A"), await side(c.srv, app_id, "B")
        seeker = await SioClient().connect(c.srv.url)
        try:
            assert (await alice.join("standup", "alice"))["type"] == "joined"
            assert (await bob.join("standup", "bob"))["type"] == "joined"
            await admin.wait("() => document.querySelector('[data-room=\"standup\"]') !== null")
            # an SFU room: two aiortc participants publishing camera and microphone
            await c.join("ann", "daily", display_name="Ann")
            await c.join("ben", "daily", display_name="Ben")
            await seeker.request("Zoe")
            await admin.wait(JS_SFU_READY)
            await admin.wait(JS_OTHERS)
            assert await admin.page.evaluate(JS_ROOMS) == ["daily", "standup"]
            badge = await admin.page.text_content('[data-room="daily"] .badge')
            assert badge == "SFU"
            assert await admin.page.text_content("#feed .t") != "Connecting…"
            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "dashboard.png"
            await admin.page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            # and rooms go away live too
            await alice.close()
            await bob.close()
            await admin.wait("() => document.querySelector('[data-room=\"standup\"]') === null")
        finally:
            for client in (alice, bob, a, b):
                await client.close()
            await sender.close()
            await seeker.close()
