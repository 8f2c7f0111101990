"""Load test for Socket.IO matchmaking: many clients from several processes.

Starts ``rtchub serve`` (request-room rate limit off), connects ``--clients``
python-socketio clients spread over ``--procs`` worker processes (WebSocket
transport), then every client runs ``--rounds`` times: (wait a random part of
``--spread`` seconds,) emit ``request-room``, wait for ``match-done``, repeat (a
repeated request ends the current room: the "next" button). Reports matches per
second, the time from ``request-room`` to ``match-done`` (p50/p90/p99/max) for
both sides and for the side whose request found a partner waiting (the service
time), and the server's CPU time per match.

    .venv/bin/python benchmarks/match_load.py --clients 2000 --procs 4 --rounds 5
    .venv/bin/python benchmarks/match_load.py --clients 2000 --procs 4 --rounds 3 --spread 30

Run by hand; it is not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

import socketio

PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8"
         "z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_client(url: str, rounds: int, spread: float, index: int,
                     connected: asyncio.Queue[int], go: asyncio.Event,
                     latencies: list[tuple[str, float]]) -> None:
    sio = socketio.AsyncClient(reconnection=False)
    matched: asyncio.Queue[tuple[str, float]] = asyncio.Queue()

    async def on_match(data: Any) -> None:
        matched.put_nowait((data["roomId"], time.monotonic()))

    sio.on("match-done", on_match)
    await sio.connect(url, transports=["websocket"], wait_timeout=30)
    connected.put_nowait(index)
    await go.wait()
    try:
        pace = random.Random(index)
        for _ in range(rounds):
            if spread:
                await asyncio.sleep(pace.uniform(0, spread))
            started = time.monotonic()
            await sio.emit("request-room", {"name": f"user{index}", "roomId": None,
                                            "userImage": PIXEL})
            room, done = await asyncio.wait_for(matched.get(), 60)
            latencies.append((room, done - started))
    finally:
        await sio.disconnect()


async def worker_main(url: str, n: int, first: int, rounds: int, spread: float,
                      ready: MpEvent, go: MpEvent, results: Any) -> None:
    connected: asyncio.Queue[int] = asyncio.Queue()
    start = asyncio.Event()
    latencies: list[tuple[str, float]] = []
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(
            one_client(url, rounds, spread, first + i, connected, start, latencies)))
        if i % 50 == 49:
            await asyncio.sleep(0.01)     # do not flood accept() in one burst
    for _ in range(n):
        await asyncio.wait_for(connected.get(), 120)
    ready.set()
    await asyncio.get_running_loop().run_in_executor(None, go.wait)
    began = time.monotonic()
    start.set()
    await asyncio.gather(*tasks)
    results.put((began, time.monotonic(), latencies))


def worker(url: str, n: int, first: int, rounds: int, spread: float, ready: MpEvent,
           go: MpEvent, results: Any) -> None:
    asyncio.run(worker_main(url, n, first, rounds, spread, ready, go, results))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--spread", type=float, default=0.0,
                        help="each client waits uniform(0, SPREAD) s before each request: "
                        "an offered load below saturation (0: everyone at once)")
    parser.add_argument("--url", default="",
                        help="use a running server (started with MATCH_REQUEST_RATE=0) "
                        "instead of starting one; server CPU is then not reported")
    args = parser.parse_args()
    if args.clients % 2:
        parser.error("--clients must be even (every request finds a partner)")

    port = free_port()
    env = dict(os.environ, MATCH_REQUEST_RATE="0", LOG_LEVEL="warning", MAX_CONNS_PER_IP="0")
    proc = None if args.url else subprocess.Popen(
        [sys.executable, "-m", "rtchub", "serve", "--addr", f"127.0.0.1:{port}",
         "--stream-addr", ""], env=env)
    try:
        deadline = time.monotonic() + 20
        while proc is not None and time.monotonic() < deadline:   # wait for the port
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        url = args.url or f"http://127.0.0.1:{port}"
        ctx = mp.get_context("spawn")
        results = ctx.Queue()
        go = ctx.Event()
        readies = []
        procs = []
        per = args.clients // args.procs
        t_connect = time.monotonic()
        for p in range(args.procs):
            n = per if p < args.procs - 1 else args.clients - per * (args.procs - 1)
            ready = ctx.Event()
            readies.append(ready)
            w = ctx.Process(target=worker, args=(url, n, p * per, args.rounds, args.spread,
                                                 ready, go, results))
            w.start()
            procs.append(w)
        for ready in readies:
            if not ready.wait(180):
                print("workers did not connect in time", file=sys.stderr)
                return 1
        connect_s = time.monotonic() - t_connect
        cpu_before = cpu_seconds(proc.pid) if proc is not None else 0.0
        go.set()
        outs = [results.get(timeout=600) for _ in procs]
        cpu_used = cpu_seconds(proc.pid) - cpu_before if proc is not None else 0.0
        for w in procs:
            w.join(30)
        began = min(o[0] for o in outs)
        ended = max(o[1] for o in outs)
        by_room: dict[str, list[float]] = {}
        for o in outs:
            for room, seconds in o[2]:
                by_room.setdefault(room, []).append(seconds)
        lat = [x for pair in by_room.values() for x in pair]
        # the side whose request found a partner waiting: pure service time
        arrival = [min(pair) for pair in by_room.values()]
        matches = len(by_room)
        elapsed = ended - began
        print(f"clients {args.clients} in {args.procs} processes, connected in {connect_s:.1f} s")
        print(f"rounds {args.rounds}, spread {args.spread:g} s: {matches} matches in "
              f"{elapsed:.2f} s = {matches / elapsed:.0f} matches/s")
        ms = {q: percentile(lat, q) * 1000 for q in (0.5, 0.9, 0.99)}
        print("request-room -> match-done: "
              f"p50 {ms[0.5]:.1f} ms, p90 {ms[0.9]:.1f} ms, "
              f"p99 {ms[0.99]:.1f} ms, max {max(lat) * 1000:.1f} ms, "
              f"mean {statistics.fmean(lat) * 1000:.1f} ms (both sides, waiting included)")
        ms = {q: percentile(arrival, q) * 1000 for q in (0.5, 0.9, 0.99)}
        print("  for the side that found a partner waiting: "
              f"p50 {ms[0.5]:.1f} ms, p90 {ms[0.9]:.1f} ms, p99 {ms[0.99]:.1f} ms")
        if proc is not None:
            print(f"server CPU {cpu_used:.2f} s = {cpu_used / matches * 1e6:.0f} us per match "
                  "(both sides' events included)")
        return 0
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    sys.exit(main())
