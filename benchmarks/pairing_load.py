"""Pairing (seed 004) under load: codes minted and redeemed per second, and the A/B relay
at 1,000 live pairs against rooms' relay at 1,000 rooms of two, in one run.

Run by hand (never in the test suite); all traffic stays on loopback::

    .venv/bin/python benchmarks/pairing_load.py --pin --pairs 1000 --duration 5 --rounds 2

Starts ``rtchub serve`` once (pinned to CPU 0 with ``--pin``; the generator, this process
with uvloop and picows clients, on CPU 1) with the pairing limits off (mints and redeems
per IP and per minute, 8-digit codes so that the code space does not fill), then:

* **codes**: ``--http`` concurrent HTTP/1.1 keep-alive clients each loop
  ``POST /rendezvous/code`` then ``POST /rendezvous/redeem``; reported: code pairs
  (mint + redeem) per second, the server's CPU per code (both requests) and codes per
  server core (1e6 / CPU per code);
* **relay**: ``--pairs`` pairs (minted, redeemed, sides A and B connected at
  ``/ws?appID=..&side=A|B``, both told ``room_full``) and as many rooms of two on ``/ws``
  (joined), then a closed loop with one ~200-byte ``offer`` in flight per pair (a side
  sends only after it received), pairs and rooms alternating per round; reported:
  relayed frames/s, the server's CPU per frame and frames per server core.

Every figure comes with the generator's CPU and the load average (``/proc/loadavg``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import picows
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.signaling.run import cpu_seconds, free_port, wait_listening  # noqa: E402

SDP = "v=0 " + "x" * 150
LIMITS_OFF = {"PAIR_MINTS_PER_MIN": "0", "PAIR_MAX_PER_IP": "0", "PAIR_CODE_DIGITS": "8",
              "PAIR_REDEEM_BUDGET_PER_MIN": "0", "PAIR_REDEEM_FAILURES_PER_MIN": "0",
              "HTTP_RATE_PER_MIN": "0", "MAX_CONNS_PER_IP": "0", "WS_MSG_RATE": "0",
              "LOG_LEVEL": "warning"}


def loadavg() -> str:
    """The 1-minute load average."""
    return Path("/proc/loadavg").read_text().split()[0]


class Side(picows.WSListener):
    """One WebSocket client: answers every relayed offer with one of its own."""

    def __init__(self, counter: list[int], ready: asyncio.Future[None], ready_type: bytes,
                 reply: Callable[[], bytes]) -> None:
        self.counter = counter
        self.ready = ready
        self.ready_type = ready_type
        self.reply = reply
        self.transport: picows.WSTransport | None = None
        self.running = True

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type is not picows.WSMsgType.TEXT:
            return
        data = frame.get_payload_as_bytes()
        if data.startswith(b'{"type":"offer"'):
            self.counter[0] += 1
            if self.running:
                transport.send(picows.WSMsgType.TEXT, self.reply())
        elif self.ready_type in data and not self.ready.done():
            self.ready.set_result(None)


async def connect(url: str, counter: list[int], ready_type: bytes, reply: Callable[[], bytes]
                  ) -> Side:
    """Open one client and wait for its ready frame (``room_full`` / ``joined``)."""
    ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    _, listener = await picows.ws_connect(
        lambda: Side(counter, ready, ready_type, reply), url)
    assert isinstance(listener, Side)
    return listener


async def codes_phase(base: str, concurrency: int, duration: float, pid: int
                      ) -> dict[str, Any]:
    """Mint and redeem codes from ``concurrency`` keep-alive clients for ``duration`` s."""
    done = [0]
    stop = time.monotonic() + duration

    async def client(http: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop:
            async with http.post(f"{base}/rendezvous/code") as r:
                code = (await r.json())["code"]
            async with http.post(f"{base}/rendezvous/redeem",
                                 data=orjson.dumps({"code": code})) as r:
                assert r.status == 200, await r.text()
            done[0] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        load0, cpu0, gen0, t0 = loadavg(), cpu_seconds(pid), time.process_time(), time.monotonic()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        wall = time.monotonic() - t0
        cpu, gen = cpu_seconds(pid) - cpu0, time.process_time() - gen0
    return {"per_s": done[0] / wall, "cpu_us": cpu / done[0] * 1e6, "server_cores": cpu / wall,
            "gen_cores": gen / wall, "load": f"{load0}-{loadavg()}"}


async def pairs_up(base: str, ws: str, n: int) -> tuple[list[Side], list[int]]:
    """``n`` pairs, both sides connected and told ``room_full``."""
    counter = [0]
    sides: list[Side] = []
    async with aiohttp.ClientSession() as http:
        for i in range(n):
            async with http.post(f"{base}/rendezvous/code") as r:
                app_id = (await r.json())["appID"]
            for side in ("A", "B"):
                sides.append(await connect(
                    f"{ws}/ws?appID={app_id}&side={side}", counter, b'"room_full"',
                    lambda: orjson.dumps({"type": "offer", "sdp": {"type": "offer",
                                                                    "sdp": SDP}})))
            if i % 100 == 99:
                await asyncio.gather(*(s.ready for s in sides))
    await asyncio.wait_for(asyncio.gather(*(s.ready for s in sides)), 60)
    return sides, counter


async def rooms_up(ws: str, n: int) -> tuple[list[Side], list[int]]:
    """``n`` rooms of two on /ws, both members joined."""
    counter = [0]
    sides: list[Side] = []
    for i in range(n):
        for me, peer in (("a", "b"), ("b", "a")):
            frame = orjson.dumps({"type": "offer", "to": f"{peer}{i}",
                                  "sdp": {"type": "offer", "sdp": SDP}})
            side = await connect(f"{ws}/ws", counter, b'"joined"',
                                 lambda frame=frame: frame)   # type: ignore[misc]
            assert side.transport is not None
            side.transport.send(picows.WSMsgType.TEXT, orjson.dumps(
                {"type": "join", "room": f"r{i}", "from": f"{me}{i}"}))
            sides.append(side)
    await asyncio.wait_for(asyncio.gather(*(s.ready for s in sides)), 60)
    return sides, counter


async def relay_phase(sides: list[Side], counter: list[int], duration: float, pid: int
                      ) -> dict[str, Any]:
    """Closed loop: the first side of every pair sends one offer; count the relayed frames
    over ``duration`` s (after a 1 s warm-up); then let the frames in flight land."""
    for s in sides:
        s.running = True
    for s in sides[::2]:
        assert s.transport is not None
        s.transport.send(picows.WSMsgType.TEXT, s.reply())
    await asyncio.sleep(1.0)
    load0, n0, cpu0, gen0, t0 = (loadavg(), counter[0], cpu_seconds(pid), time.process_time(),
                                 time.monotonic())
    await asyncio.sleep(duration)
    wall = time.monotonic() - t0
    frames, cpu, gen = counter[0] - n0, cpu_seconds(pid) - cpu0, time.process_time() - gen0
    for s in sides:
        s.running = False
    await asyncio.sleep(0.5)
    return {"per_s": frames / wall, "cpu_us": cpu / frames * 1e6, "server_cores": cpu / wall,
            "gen_cores": gen / wall, "gen_us": gen / frames * 1e6,
            "load": f"{load0}-{loadavg()}"}


async def main(args: argparse.Namespace, port: int, server: subprocess.Popen[bytes]
               ) -> None:
    """Run the phases against the server on ``port``, print the tables."""
    base, ws = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    print(f"load average at the start {loadavg()}", file=sys.stderr)
    codes = [await codes_phase(base, args.http, args.duration, server.pid)
             for _ in range(args.rounds)]
    for r in codes:
        print(f"codes: {r}", file=sys.stderr)
    pair_sides, pair_count = await pairs_up(base, ws, args.pairs)
    room_sides, room_count = await rooms_up(ws, args.pairs)
    results: dict[str, list[dict[str, Any]]] = {"pairing": [], "rooms": []}
    for _ in range(args.rounds):
        for name, sides, count in (("pairing", pair_sides, pair_count),
                                   ("rooms", room_sides, room_count)):
            r = await relay_phase(sides, count, args.duration, server.pid)
            results[name].append(r)
            print(f"{name}: {r}", file=sys.stderr)
    for s in pair_sides + room_sides:
        if s.transport is not None:
            s.transport.disconnect()
    best = max(codes, key=lambda r: r["per_s"])
    print(f"\nserver pinned: {args.pin}; {args.http} HTTP clients; {args.pairs} pairs and "
          f"{args.pairs} rooms of two; {args.duration:g} s per phase, best of "
          f"{args.rounds}\n")
    print("| measurement | value |\n|---|---|")
    print(f"| codes minted + redeemed per second | {best['per_s']:,.0f} |")
    print(f"| server CPU per code (mint + redeem, µs, best round) | "
          f"{min(r['cpu_us'] for r in codes):,.0f} |")
    print(f"| codes per server core (1e6 / CPU per code) | "
          f"{1e6 / min(r['cpu_us'] for r in codes):,.0f} |")
    print(f"| server / generator load (cores) | {best['server_cores']:.2f} / "
          f"{best['gen_cores']:.2f} |")
    print(f"| load average | {best['load']} |\n")
    print("| relay, one frame in flight per pair | pairing | rooms | ratio |\n"
          "|---|---|---|---|")
    p = max(results["pairing"], key=lambda r: r["per_s"])
    q = max(results["rooms"], key=lambda r: r["per_s"])
    pc = min(r["cpu_us"] for r in results["pairing"])
    qc = min(r["cpu_us"] for r in results["rooms"])
    print(f"| relayed frames/s | {p['per_s']:,.0f} | {q['per_s']:,.0f} | "
          f"{p['per_s'] / q['per_s']:.2f} |")
    print(f"| server CPU per frame (µs, best round) | {pc:.1f} | {qc:.1f} | "
          f"{pc / qc:.2f} |")
    print(f"| frames per server core | {1e6 / pc:,.0f} | {1e6 / qc:,.0f} | "
          f"{qc / pc:.2f} |")
    print(f"| server / generator load (cores) | {p['server_cores']:.2f} / "
          f"{p['gen_cores']:.2f} | {q['server_cores']:.2f} / {q['gen_cores']:.2f} | |")
    print(f"| generator CPU per frame (µs) | {p['gen_us']:.1f} | {q['gen_us']:.1f} | |")
    print(f"| load average | {p['load']} | {q['load']} | |")


def run(args: argparse.Namespace) -> None:
    """Start the server (pinned to CPU 0, this process to CPU 1 with --pin), run, stop."""
    port = free_port()
    pin = ["taskset", "-c", "0"] if args.pin else []
    if args.pin:
        os.sched_setaffinity(0, {1})
    server = subprocess.Popen(
        [*pin, sys.executable, "-m", "rtchub", "serve", "--addr", f"127.0.0.1:{port}",
         "--stream-addr", "", "--max-rooms", str(args.pairs * 2)],
        env=dict(os.environ, **LIMITS_OFF), stdout=subprocess.DEVNULL)
    try:
        wait_listening(port, server)
        uvloop.run(main(args, port, server))
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--http", type=int, default=16, help="concurrent HTTP clients")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pin", action="store_true",
                        help="server on CPU 0, this generator on CPU 1 (taskset)")
    run(parser.parse_args())
