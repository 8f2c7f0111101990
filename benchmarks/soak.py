"""Soak: thousands of rooms clients churning for minutes; the server must not accumulate.

Run by hand (never in the test suite); all traffic stays on loopback::

    unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh \\
        .venv/bin/python benchmarks/soak.py --clients 10000 --minutes 10 --pin

The server runs in its own process (``soak.py serve``, pinned to CPU 0 with ``--pin``) and
samples itself every ``--sample`` seconds: RSS, open file descriptors, asyncio tasks,
Python objects (``gc.get_objects()``), open connections and rooms. The clients run in
``--procs`` processes (on CPU 1 with ``--pin``), spread over 20 loopback source addresses
(each under the default MAX_CONNS_PER_IP), in rooms of two. Each client loops until the
end: connect, join (with its resume token after an abrupt drop), relay an offer to its
partner every second or so, then either leave and close or drop the socket without a
word (the next join resumes the identity), wait a moment, reconnect.

The table printed at the end has one row per sample. After warm-up (the first minute) the
rows must be flat: the verdict compares the last sample with the first after warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import multiprocessing as mp
import os
import random
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.signaling.run import cpu_seconds, free_port, wait_listening  # noqa: E402

SOURCES = 20


def rss_mib() -> float:
    """This process's resident memory."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def serve(port: int, sample: float) -> None:
    """``soak.py serve``: rtchub on ``port``, sampling itself as JSON lines on stdout."""
    from rtchub.app import build_server
    from rtchub.config import load
    from rtchub.features.rooms.routes import ROOMS

    config = load(flags={"addr": f"127.0.0.1:{port}", "stream_addr": ""})
    server = build_server(config)
    await server.start()
    hub = server.hub
    rooms = server.app[ROOMS]
    started = time.monotonic()
    try:
        while True:
            gc.collect()
            tasks = Counter(getattr(t.get_coro(), "__qualname__", "?")
                            for t in asyncio.all_tasks())
            row = {"t": round(time.monotonic() - started, 1), "rss_mib": round(rss_mib(), 1),
                   "fds": len(os.listdir("/proc/self/fd")),
                   "tasks": sum(tasks.values()), "objects": len(gc.get_objects()),
                   "conns": len(hub.connections), "rooms": rooms.counts()[0],
                   "top_tasks": tasks.most_common(3)}
            print(json.dumps(row), flush=True)
            await asyncio.sleep(sample)
    finally:
        await server.stop()


async def client(i: int, url: str, session: aiohttp.ClientSession, deadline: float,
                 stats: dict[str, int]) -> None:
    """One churning client until ``deadline``."""
    room, me, partner = f"r{i // 2}", f"c{i}", f"c{i ^ 1}"
    token: str | None = None
    rng = random.Random(i)
    await asyncio.sleep(rng.uniform(0, 20))        # spread the first connects
    while time.monotonic() < deadline:
        try:
            async with session.ws_connect(url, autoping=True, heartbeat=None) as ws:
                join: dict[str, Any] = {"type": "join", "room": room, "from": me}
                if token:
                    join["token"] = token
                await ws.send_json(join)
                reply = await ws.receive_json(timeout=30)
                if reply.get("type") != "joined":
                    stats["refused"] += 1
                    await asyncio.sleep(rng.uniform(1, 3))
                    continue
                stats["resumed" if token else "joined"] += 1
                token = reply.get("token")
                reader = asyncio.ensure_future(_read(ws, stats))
                for _ in range(rng.randint(3, 15)):
                    await ws.send_json({"type": "offer", "to": partner,
                                        "sdp": {"type": "offer", "sdp": "v=0\r\n"}})
                    stats["sent"] += 1
                    await asyncio.sleep(rng.uniform(0.5, 1.5))
                if rng.random() < 0.5:
                    await ws.send_json({"type": "leave"})
                    token = None
                    await ws.close()
                else:                                    # drop: the next join resumes
                    transport = ws._response.connection and ws._response.connection.transport
                    if transport is not None:
                        transport.abort()
                    stats["dropped"] += 1
                reader.cancel()
        except (aiohttp.ClientError, TimeoutError, ConnectionError, RuntimeError) as exc:
            stats[f"error {type(exc).__name__}"] += 1
        await asyncio.sleep(rng.uniform(0.5, 3))


async def _read(ws: aiohttp.ClientWebSocketResponse, stats: dict[str, int]) -> None:
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            stats["received"] += 1


def load_proc(k: int, procs: int, n: int, url: str, seconds: float,
              out: mp.Queue[dict[str, int]]) -> None:
    """One load process: its share of the clients, spread over the source addresses."""
    # aiohttp's client writes to a socket this benchmark aborted on purpose: not news
    logging.getLogger("asyncio").setLevel(logging.ERROR)

    async def run() -> dict[str, int]:
        stats: Counter[str] = Counter(dict.fromkeys(
            ("joined", "resumed", "refused", "sent", "received", "dropped"), 0))
        deadline = time.monotonic() + seconds
        sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(
            limit=0, local_addr=(f"127.0.2.{s + 1}", 0), force_close=True))
            for s in range(SOURCES)]
        try:
            await asyncio.gather(*(client(i, url, sessions[i % SOURCES], deadline, stats)
                                   for i in range(k, n, procs)))
        finally:
            for session in sessions:
                await session.close()
        return dict(stats)

    out.put(asyncio.run(run()))


def main() -> None:
    """Start the server, run the load, print the samples and the verdict."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd")
    srv = sub.add_parser("serve")
    srv.add_argument("--port", type=int, required=True)
    srv.add_argument("--sample", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--sample", type=float, default=60.0)
    parser.add_argument("--pin", action="store_true",
                        help="server on CPU 0, load on CPU 1 (taskset)")
    args = parser.parse_args()
    if args.cmd == "serve":   # on uvloop, as `rtchub serve` runs
        import uvloop

        uvloop.run(serve(args.port, args.sample))
        return
    port = free_port()
    env = dict(os.environ, LOG_LEVEL="warning", MAX_ROOMS=str(args.clients),
               RTC_CONFIG_JSON='{"iceServers": []}')
    cmd = [sys.executable, __file__, "serve", "--port", str(port), "--sample",
           str(args.sample)]
    server_log = Path(f"/tmp/rtchub-soak-{port}.log")
    with server_log.open("w") as errors:   # the server's own log, counted at the end
        server = subprocess.Popen((["taskset", "-c", "0"] if args.pin else []) + cmd,
                                  env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
    wait_listening(port, server)  # type: ignore[arg-type]
    if args.pin:
        os.sched_setaffinity(0, {1})
    url = f"http://127.0.0.1:{port}/ws/rooms"
    ctx = mp.get_context("spawn")
    out: mp.Queue[dict[str, int]] = ctx.Queue()
    seconds = args.minutes * 60
    started = time.monotonic()
    workers = [ctx.Process(target=load_proc, args=(k, args.procs, args.clients, url, seconds,
                                                   out)) for k in range(args.procs)]
    for w in workers:
        w.start()
    totals: dict[str, int] = {}
    for _ in workers:
        for key, value in out.get(timeout=seconds + 300).items():
            totals[key] = totals.get(key, 0) + value
    for w in workers:
        w.join()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)   # the reaped load processes
    load_cpu = usage.ru_utime + usage.ru_stime
    time.sleep(args.sample + 1)          # one sample after the clients are gone
    server_cpu = cpu_seconds(server.pid)
    server.terminate()
    rows = [json.loads(line) for line in server.communicate(timeout=60)[0].splitlines()
            if line.startswith("{")]
    print(f"\n{args.clients} clients, {args.minutes:g} min, {args.procs} load processes; "
          f"server CPU {server_cpu:.0f} s, load generator CPU {load_cpu:.0f} s; load "
          f"average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("| t (s) | RSS MiB | fds | tasks | objects | connections | rooms |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['t']:.0f} | {r['rss_mib']:.1f} | {r['fds']} | {r['tasks']} | "
              f"{r['objects']} | {r['conns']} | {r['rooms']} |")
    print("\nload:", ", ".join(f"{k} {v}" for k, v in totals.items()),
          f"({time.monotonic() - started:.0f} s)")
    lines = server_log.read_text().splitlines()
    print(f"server log: {len(lines)} lines ({server_log}); most common: "
          f"{Counter(lines).most_common(3)}")
    busiest = max(rows, key=lambda r: r["tasks"])
    print(f"most tasks: {busiest['tasks']} at t={busiest['t']:.0f} s: {busiest['top_tasks']}")
    warm = [r for r in rows if 60 <= r["t"] <= seconds]     # under load, after warm-up
    if len(warm) >= 2:
        first, last = warm[0], warm[-1]
        print(f"after warm-up: RSS {first['rss_mib']} -> {last['rss_mib']} MiB, objects "
              f"{first['objects']} -> {last['objects']}, tasks {first['tasks']} -> "
              f"{last['tasks']}, fds {first['fds']} -> {last['fds']}")
        idle = rows[-1]
        print(f"after the clients left: connections {idle['conns']}, rooms {idle['rooms']}, "
              f"tasks {idle['tasks']}, fds {idle['fds']}, RSS {idle['rss_mib']} MiB")


if __name__ == "__main__":
    main()
