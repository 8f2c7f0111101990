from __future__ import annotations

from tests.e2e.browser import Browser


async def test_two(browser: Browser) -> None:
    a = await browser.open("alice")
    b = await browser.open("bob")
    await a.join("r1")
    await b.join("r1")
    try:
        await a.wait_connected("bob")
        await b.wait_connected("alice")
        await a.wait_frames("bob")
        await b.wait_frames("alice")
        print(await a.inbound("bob"), await a.inbound("bob", "audio"))
        await a.screenshot("spike")
    finally:
        print(a.console, b.console)
