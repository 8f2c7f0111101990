"""Time from page load to a connected call, two headless Chromium pages.

Each run opens two fresh pages on an rtchub server at the same moment; each
page joins the same room as soon as the app has loaded. The page reports, on
its own clock (``performance.now()``, zero at navigation start), when its
RTCPeerConnection became ``connected`` and when it decoded the first video
frame from the other page. Run it in a loopback-only namespace::

    unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh \\
        .venv/bin/python -m benchmarks.browser_connect --runs 10
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from typing import Any

from tests.e2e.browser import Browser, chromium
from tests.support import running

JS_MARKS = """async ([room, me, other]) => {
  const marks = { appReady: performance.now() };
  connect(room, me);
  for (;;) {
    const p = state.peers.get(other);
    if (!marks.media && state.localStream) marks.media = performance.now();
    if (!marks.joined && state.resumeToken) marks.joined = performance.now();
    if (p && !marks.connected && p.pc.connectionState === 'connected') {
      marks.connected = performance.now();
    }
    if (p && marks.connected) {
      let frames = 0;
      (await p.pc.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video') frames = r.framesDecoded || 0;
      });
      if (frames > 0) { marks.firstFrame = performance.now(); return marks; }
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}"""


async def one_run(browser: Browser, run: int) -> list[dict[str, float]]:
    room = f"bench-{run}"
    pages = await asyncio.gather(browser.open("a"), browser.open("b"))
    marks: list[dict[str, Any]] = await asyncio.gather(
        pages[0].eval(JS_MARKS, [room, "a", "b"]), pages[1].eval(JS_MARKS, [room, "b", "a"]))
    for p in pages:
        await p.context.close()
    return marks


LABELS = {
    "appReady": "app loaded, connect() called",
    "media": "camera and microphone open",
    "joined": "joined (resume token)",
    "connected": "connectionState connected",
    "firstFrame": "first video frame decoded",
}


def summary(name: str, values: list[float]) -> str:
    values = sorted(values)
    p90 = values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]
    return (f"{name:<28} median {statistics.median(values):7.1f} ms   p90 {p90:7.1f} ms   "
            f"min {values[0]:7.1f} ms   max {values[-1]:7.1f} ms")


async def main(runs: int) -> None:
    series: dict[str, list[float]] = {}
    async with running() as srv, chromium(srv.url) as browser:
        await one_run(browser, -1)  # warm-up: browser caches, codecs
        for run in range(runs):
            for marks in await one_run(browser, run):
                for key, value in marks.items():
                    series.setdefault(key, []).append(value)
                series.setdefault("callSetup", []).append(marks["connected"] - marks["appReady"])
    print(f"{runs} runs x 2 pages, page load (navigation start) to:")
    for key, label in LABELS.items():
        print(summary(label, series[key]))
    print("from connect() (app code only, without page load and harness round trips) to:")
    print(summary("connectionState connected", series["callSetup"]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    asyncio.run(main(parser.parse_args().runs))
