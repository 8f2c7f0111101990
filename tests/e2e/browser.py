"""Headless Chromium driving rtchub's pages, for the end-to-end tests.

Debian's ``/usr/bin/chromium`` is launched by Playwright (``executable_path``)
with fake cameras (three) and microphones, loopback ICE allowed and background
networking off, so a call between pages uses only 127.0.0.1. The name
``lan.rtchub.test`` resolves to 127.0.0.1 inside the browser: a page opened
through it is a plain-http page at an address that is not localhost, i.e. not a
secure context (the voice tour's LAN case), without leaving loopback.

One browser serves many tests (tests/e2e/conftest.py); every participant gets its
own browser context (its own storage, like another person on another machine),
closed when the test ends. Helpers wait on what the page reports (``state``,
``connectionState``, ``getStats()``, the DOM) under a timeout; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ARTIFACTS", "CHROMIUM", "CHROMIUM_ARGS", "LAN_HOST", "STRICT_ARGS", "WAIT_MS", "Browser",
    "Contexts", "Participant", "chromium", "chromium_missing", "launch",
]

CHROMIUM = os.environ.get("RTCHUB_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WAIT_MS = 20_000
LAN_HOST = "lan.rtchub.test"

# three fake cameras: fake_device_0 (I420), fake_device_1 (Y16, a depth format that
# WebRTC cannot encode: a track from it sends nothing) and fake_device_2 (MJPEG)
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream=device-count=3",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--auto-select-desktop-capture-source=Entire screen",
    "--autoplay-policy=no-user-gesture-required",
    f"--host-resolver-rules=MAP {LAN_HOST} 127.0.0.1",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-features=MediaRouter,OptimizationHints,Translate",
]
# without the fake permission UI: a context that was not granted camera and microphone
# is refused them, as a person who clicked "Block" is
STRICT_ARGS = [a for a in CHROMIUM_ARGS if a != "--use-fake-ui-for-media-stream"]


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
    """One person: their Playwright page, the name they use, what their page logged."""

    name: str
    page: Any
    context: Any
    console: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

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
        """Evaluate ``js`` in the page."""
        return await self.page.evaluate(js, arg)

    async def wait_connected(self, *peers: str) -> None:
        """Every call with ``peers`` is connected."""
        await self.wait(JS_CONNECTED, list(peers))

    async def inbound(self, peer: str, kind: str = "video") -> dict[str, Any]:
        """The inbound-rtp figures of ``kind`` from ``peer``."""
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
        """Audio from ``peer`` is played out (its energy is above zero)."""
        await self.wait_async(JS_AUDIO_ENERGY, peer)

    def console_errors(self) -> list[str]:
        """What the page reported as errors (console.error, uncaught exceptions)."""
        return [line for line in self.console if line.startswith(("error:", "pageerror:"))]

    async def screenshot(self, name: str) -> Path:
        """Save a PNG of the page to test-artifacts/NAME.png."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path))
        return path


def _watch(person: Participant) -> None:
    def on_response(response: Any) -> None:
        if response.status >= 400:
            person.failed.append(f"{response.status} {response.url}")

    page = person.page
    page.on("console", lambda msg: person.console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda err: person.console.append(f"pageerror: {err}"))
    page.on("response", on_response)


@dataclass
class Browser:
    """A Chromium (shared or own) that opens participants on one server."""

    browser: Any
    base_url: str
    people: list[Participant] = field(default_factory=list)

    async def page(self, name: str, path: str = "/", permissions: bool = True,
                   viewport: tuple[int, int] = (1280, 720), base_url: str | None = None,
                   beside: Participant | None = None) -> Participant:
        """A new participant on ``path``, loaded (not waited for): in a context of its own,
        or in the context of ``beside`` (two tabs of one browser profile)."""
        if beside is not None:
            context = beside.context
        else:
            context = await self.browser.new_context(
                viewport={"width": viewport[0], "height": viewport[1]},
                permissions=["camera", "microphone"] if permissions else [],
                accept_downloads=True)
        person = Participant(name, await context.new_page(), context)
        _watch(person)
        self.people.append(person)
        await person.page.goto(f"{base_url or self.base_url}{path}")
        return person

    async def open(self, name: str, query: str = "", permissions: bool = True,
                   viewport: tuple[int, int] = (1280, 720),
                   beside: Participant | None = None) -> Participant:
        """A new participant with the call app loaded (see :meth:`page`)."""
        person = await self.page(name, f"/{query}", permissions, viewport, beside=beside)
        await person.page.wait_for_function(
            "() => document.documentElement.dataset.ready === 'true'", timeout=WAIT_MS)
        return person

    async def open_all(self, *names: str, query: str = "") -> list[Participant]:
        """Several participants with the app loaded, opened at the same time."""
        return list(await asyncio.gather(*(self.open(name, query) for name in names)))

    async def close(self) -> None:
        """Close every context; an uncaught exception in a page fails the test that caused it."""
        closed: list[Any] = []
        for person in self.people:
            if person.context not in closed:
                closed.append(person.context)
                await person.context.close()
        errors = [f"{p.name}: {line}" for p in self.people for line in p.console
                  if line.startswith("pageerror")]
        self.people.clear()
        assert not errors, "\n".join(errors)


@dataclass
class Contexts:
    """The browser contexts one test opens in the shared Chromium, all closed when it ends.

    It stands in for a Playwright ``Browser`` in tests written against one
    (``new_context``, ``new_page``): a page from :meth:`new_page` gets a context of its
    own, as ``Browser.new_page`` gives it, so nothing a test leaves open (pages, calls,
    storage) reaches the next test.
    """

    browser: Any
    opened: list[Any] = field(default_factory=list)

    async def new_context(self, **options: Any) -> Any:
        """A new context (Playwright's ``Browser.new_context`` options), closed at the end."""
        context = await self.browser.new_context(**options)
        self.opened.append(context)
        return context

    async def new_page(self, **options: Any) -> Any:
        """A page in a new context of its own."""
        return await (await self.new_context(**options)).new_page()

    async def close(self) -> None:
        """Close every context this test opened (closing one twice is harmless)."""
        while self.opened:
            await self.opened.pop().close()


async def launch(pw: Any, args: list[str] | None = None) -> Any:
    """Launch Debian's Chromium through Playwright."""
    return await pw.chromium.launch(executable_path=CHROMIUM,
                                    args=CHROMIUM_ARGS if args is None else args)


@asynccontextmanager
async def chromium(base_url: str, **launch_options: Any) -> AsyncIterator[Browser]:
    """Launch a Chromium of its own for a server at ``base_url``; closed afterwards."""
    from playwright.async_api import async_playwright

    args = launch_options.pop("args", CHROMIUM_ARGS)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=args, **launch_options)
        session = Browser(browser, base_url)
        try:
            yield session
            await session.close()
        finally:
            await browser.close()
