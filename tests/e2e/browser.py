"""Headless Chromium driving the rtchub browser app, for the end-to-end tests.

Debian's ``/usr/bin/chromium`` is launched by Playwright (``executable_path``)
with fake camera, microphone and permission prompts, loopback ICE allowed and
background networking off, so a call between pages uses only 127.0.0.1. Every
participant gets its own browser context (its own storage, like another person
on another machine). Helpers wait on what the page reports — ``state``,
``RTCPeerConnection.connectionState``, ``getStats()``, the DOM — under a
timeout; nothing sleeps.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("RTCHUB_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WAIT_MS = 20_000

CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--auto-select-desktop-capture-source=Entire screen",
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-features=MediaRouter,OptimizationHints,Translate",
]


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return (f"Chromium not found at {CHROMIUM} "
                "(apt-get install chromium, or set RTCHUB_CHROMIUM)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (scripts/setup test)"
    return None


# JavaScript run in the page: each takes one argument and reads the app's globals.
JS_CONNECTED = """(ids) => ids.every((id) => {
  const p = state.peers.get(id);
  return p && p.pc.connectionState === 'connected';
})"""

JS_INBOUND = """async ([id, kind]) => {
  const p = state.peers.get(id);
  if (!p) return null;
  const out = {};
  (await p.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === kind) Object.assign(out, {
      framesDecoded: r.framesDecoded || 0, frameWidth: r.frameWidth || 0,
      frameHeight: r.frameHeight || 0, totalAudioEnergy: r.totalAudioEnergy || 0,
      packetsReceived: r.packetsReceived || 0, audioLevel: r.audioLevel || 0,
    });
  });
  return out;
}"""

JS_FRAMES_ABOVE = """async ([id, floor]) => {
  const p = state.peers.get(id);
  if (!p || p.pc.connectionState !== 'connected') return false;
  let frames = 0;
  (await p.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') frames = r.framesDecoded || 0;
  });
  return frames > floor;
}"""

JS_AUDIO_ENERGY = """async (id) => {
  const p = state.peers.get(id);
  if (!p) return false;
  let energy = 0;
  (await p.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio') energy = r.totalAudioEnergy || 0;
  });
  return energy > 0;
}"""


@dataclass
class Participant:
    """One person in a call: their Playwright page and the name they joined with."""

    name: str
    page: Any
    context: Any
    console: list[str] = field(default_factory=list)

    async def join(self, room: str) -> None:
        """Join through the lobby form, the way a person does."""
        await self.page.fill("#room-input", room)
        await self.page.fill("#name-input", self.name)
        await self.page.click("#join-btn")
        await self.wait("() => state.roomState === 'joined' || state.roomState === 'calling'")

    async def wait(self, js: str, arg: Any = None, timeout: float = WAIT_MS) -> Any:
        """Wait until ``js`` (a function of ``arg``) returns something truthy."""
        handle = await self.page.wait_for_function(js, arg=arg, timeout=timeout, polling=100)
        return await handle.json_value()

    async def wait_async(self, js: str, arg: Any = None, timeout: float = WAIT_MS) -> Any:
        """Like :meth:`wait` for an async ``js`` (getStats): polled in the page under a deadline."""
        runner = f"""async ([arg, timeout]) => {{
          const pred = {js};
          const end = performance.now() + timeout;
          for (;;) {{
            const value = await pred(arg);
            if (value) return value;
            if (performance.now() > end) throw new Error('timed out after ' + timeout + ' ms');
            await new Promise((resolve) => setTimeout(resolve, 100));
          }}
        }}"""
        return await self.page.evaluate(runner, [arg, timeout])

    async def eval(self, js: str, arg: Any = None) -> Any:
        return await self.page.evaluate(js, arg)

    async def wait_connected(self, *peers: str) -> None:
        await self.wait(JS_CONNECTED, list(peers))

    async def inbound(self, peer: str, kind: str = "video") -> dict[str, Any]:
        value = await self.eval(JS_INBOUND, [peer, kind])
        assert isinstance(value, dict), f"{self.name} has no call with {peer}"
        return value

    async def wait_frames(self, peer: str, more_than: int = 10) -> int:
        """Wait until this page has decoded more than ``more_than`` video frames from ``peer``."""
        await self.wait_async(JS_FRAMES_ABOVE, [peer, more_than])
        return int((await self.inbound(peer))["framesDecoded"])

    async def wait_decoding(self, peer: str) -> None:
        """Video from ``peer`` is being decoded now: the count grows past its current value."""
        start = int((await self.inbound(peer)).get("framesDecoded", 0))
        await self.wait_frames(peer, start + 5)

    async def wait_audio(self, peer: str) -> None:
        await self.wait_async(JS_AUDIO_ENERGY, peer)

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path))
        return path


@dataclass
class Browser:
    """A launched Chromium that opens participants on one server."""

    browser: Any
    base_url: str
    people: list[Participant] = field(default_factory=list)

    async def open(self, name: str, query: str = "", permissions: bool = True,
                   viewport: tuple[int, int] = (1280, 720)) -> Participant:
        """A new participant (own context) with the app loaded."""
        context = await self.browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]},
            permissions=["camera", "microphone"] if permissions else [],
            accept_downloads=True)
        page = await context.new_page()
        person = Participant(name, page, context)
        page.on("console", lambda msg: person.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda err: person.console.append(f"pageerror: {err}"))
        await page.goto(f"{self.base_url}/{query}")
        await page.wait_for_function("() => document.documentElement.dataset.ready === 'true'",
                                     timeout=WAIT_MS)
        self.people.append(person)
        return person


@asynccontextmanager
async def chromium(base_url: str, **launch: Any) -> AsyncIterator[Browser]:
    """Launch Chromium for a server at ``base_url``; closed afterwards."""
    from playwright.async_api import async_playwright

    args = launch.pop("args", CHROMIUM_ARGS)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=args, **launch)
        session = Browser(browser, base_url)
        try:
            yield session
            # an uncaught exception in the app fails the test that caused it
            errors = [f"{p.name}: {line}" for p in session.people for line in p.console
                      if line.startswith("pageerror")]
            assert not errors, "\n".join(errors)
        finally:
            await browser.close()
