"""Slow and hostile clients, measured: a control client's relay latency while each runs.

Run by hand (never in the test suite); all traffic stays on loopback::

    unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh \\
        .venv/bin/python benchmarks/hostile.py --seconds 10 --pin

One ``rtchub serve`` with default settings (``--pin``: on CPU 0). For each scenario a
control pair of rooms clients relays an offer every 10 ms through it (one-way latency,
measured in one process on one clock) while an attacker process (``--pin``: CPU 1) runs
the attack for ``--seconds``. Each row: the attack, the load it offered, the control
latency (p50 / p99 / max, ms), what the server did (from /metrics: refusals, closes,
error codes), the server's RSS after, and the bytes it logged during the attack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.rawws import RawWs, frame  # noqa: E402

from benchmarks.signaling.run import free_port, wait_listening  # noqa: E402

# (server port, seconds, counts to fill, the attacker's own loopback source address)
Attack = Callable[[int, float, Counter[str], str], Awaitable[None]]
SDP_578 = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
           + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:x\r\n" * 578)


async def until(seconds: float, step: Callable[[], Awaitable[None]], parallel: int,
                stats: Counter[str]) -> None:
    """Run ``step`` in ``parallel`` loops until ``seconds`` pass; errors are counted."""
    deadline = time.monotonic() + seconds

    async def loop() -> None:
        while time.monotonic() < deadline:
            try:
                await step()
            except (OSError, aiohttp.ClientError, asyncio.IncompleteReadError,
                    TimeoutError) as exc:
                stats[f"client {type(exc).__name__}"] += 1
                await asyncio.sleep(0.01)

    await asyncio.gather(*(loop() for _ in range(parallel)))


async def open_sock(port: int, src: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to the server from ``src``."""
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))


def session(src: str) -> aiohttp.ClientSession:
    """An HTTP client whose connections leave from ``src``."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(src, 0)))


# -- the attacks --------------------------------------------------------------------------


async def baseline(port: int, seconds: float, stats: Counter[str], src: str) -> None:
    """Nothing: the control pair alone."""
    await asyncio.sleep(seconds)


async def slowloris(port: int, seconds: float, stats: Counter[str], src: str) -> None:
    """1,000 sockets, each sending one header line a second and never ending its head."""
    async def one() -> None:
        reader, writer = await open_sock(port, src)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
        stats["sockets"] += 1
        with contextlib.suppress(OSError):
            for n in range(int(seconds) + 1):
                await asyncio.sleep(1)
                writer.write(b"X-Slow-%d: x\r\n" % n)
                await writer.drain()
                if reader.at_eof():
                    stats["cut by server"] += 1
                    break
        writer.close()

    await asyncio.gather(*(one() for _ in range(1000)), return_exceptions=True)


async def silent_sockets(port: int, seconds: float, stats: Counter[str], src: str) -> None:
    """1,000 sockets that connect and never send a byte (reconnecting when cut)."""
    async def step() -> None:
        reader, writer = await open_sock(port, src)
        stats["sockets"] += 1
        if await reader.read() == b"":
            stats["cut by server"] += 1
        writer.close()

    await asyncio.wait_for(until(seconds, step, 1000, stats), seconds + 15)


async def oversized_heads(port: int, seconds: float, stats: Counter[str], src: str) -> None:
    """Request heads of 20 KB, back to back, from 20 sockets."""
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 20_000 + b"\r\n\r\n"

    async def step() -> None:
        reader, writer = await open_sock(port, src)
        writer.write(head)
        answer = await reader.read(12)
        stats["answered " + answer.decode(errors="replace")[9:12]] += 1
        writer.close()

    await until(seconds, step, 20, stats)


async def pipelined(port: int, seconds: float, stats: Counter[str], src: str) -> None:
    """10 sockets, each writing 200 pipelined GET /healthz at a time and reading them."""
    batch = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 200

    async def step() -> None:
        reader, writer = await open_sock(port, src)
        for _ in range(20):
            writer.write(batch)
            got = 0
            while got < 200:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                got += chunk.count(b"HTTP/1.1 200")
            stats["requests"] += 200
        writer.close()

    await until(seconds, step, 10, stats)


async def stopped_readers(port: int, seconds: float, stats: Counter[str], src: str) -> None:
    """50 clients that join a room and never read, while a member floods them with 4 KB
    relays."""
    readers = []
    for n in range(50):
        raw, _ = await RawWs.open(port, "/ws/rooms", rcvbuf=4096, source=src)
        raw.write(frame(0x1, orjson.dumps({"type": "join", "room": f"slow{n % 5}",
                                           "from": f"s{n}"})))
        readers.append(raw)
    async with session(src) as http:
        flooders = []
        for room in range(5):
            ws = await http.ws_connect(f"http://127.0.0.1:{port}/ws/rooms")
            await ws.send_json({"type": "join", "room": f"slow{room}", "from": "flood"})
            flooders.append(ws)
        big = {"type": "candidate", "candidate": {"candidate": "x" * 4000}}

        async def step() -> None:   # 100 relays/s per flooder: within WS_MSG_RATE
            for room, ws in enumerate(flooders):
                for n in range(room, 50, 5):
                    await ws.send_json({**big, "to": f"s{n}"})
                    stats["relays"] += 1
            await asyncio.sleep(0.1)

        await until(seconds, step, 1, stats)
        for ws in flooders:
            await ws.close()
    for raw in readers:
        raw.close()


async def silent_peers(port: int, seconds: float, stats: Counter[str], src: str) -> None:
    """500 WebSockets that upgrade, then neither read nor answer pings (as half-open TCP
    looks to the server); the heartbeat is what ends them."""
    held = []
    for _ in range(500):
        raw, head = await RawWs.open(port, "/ws/rooms", rcvbuf=4096, source=src)
        stats["open" if head.startswith(b"HTTP/1.1 101") else "refused"] += 1
        held.append(raw)
    await asyncio.sleep(seconds)
    for raw in held:
        raw.close()


async def junk_frames(port: int, seconds: float, stats: Counter[str], src: str) -> None:
    """Malformed JSON frames as fast as 5 connections can write them (errors unread)."""
    junk = frame(0x1, b'{"type": "offer", "to": [') * 100

    async def step() -> None:
        raw, _ = await RawWs.open(port, "/ws/rooms", rcvbuf=65536, source=src)
        with contextlib.suppress(OSError):
            while True:
                raw.write(junk)
                await raw.writer.drain()
                stats["frames"] += 100
                if raw.reader.at_eof():
                    stats["dropped by server"] += 1
                    break
        raw.close()

    await asyncio.wait_for(until(seconds, step, 5, stats), seconds + 10)


async def socketio_malformed(port: int, seconds: float, stats: Counter[str], src: str) -> None:
    """Undecodable Socket.IO packets, forged event names and bad payloads on 5 sockets."""
    packets = [b'42["x"', b"4zz", b"9", b'42["disconnect"]', b'42["*","x",{}]',
               b'42["request-room",7]']

    async def step() -> None:
        raw, head = await RawWs.open(port, "/socket.io/?EIO=4&transport=websocket",
                                     source=src)
        if not head.startswith(b"HTTP/1.1 101"):
            stats["refused"] += 1
            raw.close()
            return
        await raw.recv()
        await raw.send(0x1, b"40")
        for _ in range(200):
            for packet in packets:
                raw.write(frame(0x1, packet))
            stats["packets"] += len(packets)
            await raw.writer.drain()
        raw.close()

    await until(seconds, step, 5, stats)


async def engineio_handshakes(port: int, seconds: float, stats: Counter[str], src: str) -> None:
    """Engine.IO polling handshakes from one IP as fast as possible (sessions never used)."""
    async with session(src) as http:
        url = f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling"

        async def step() -> None:
            async with http.get(url) as resp:
                stats[f"status {resp.status}"] += 1
                await resp.read()

        await until(seconds, step, 20, stats)


async def mint_flood(port: int, seconds: float, stats: Counter[str], src: str) -> None:
    """POST /rendezvous/code as fast as possible from one IP."""
    async with session(src) as http:
        url = f"http://127.0.0.1:{port}/rendezvous/code"

        async def step() -> None:
            async with http.post(url) as resp:
                stats[f"status {resp.status}"] += 1
                await resp.read()

        await until(seconds, step, 20, stats)


async def redeem_guessing(port: int, seconds: float, stats: Counter[str], src: str) -> None:
    """Wrong codes from 500 source addresses (127.0.3.x, 127.0.4.x), 20 loops."""
    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        local_addr=(f"127.0.{3 + n // 250}.{1 + n % 250}", 0))) for n in range(500)]
    url = f"http://127.0.0.1:{port}/rendezvous/redeem"
    guess = iter(range(10**9))

    async def step() -> None:
        n = next(guess)
        async with sessions[n % 500].post(url, json={"code": f"{n % 10000:04d}"}) as resp:
            stats[f"status {resp.status}"] += 1
            await resp.read()

    try:
        await until(seconds, step, 20, stats)
    finally:
        for client in sessions:
            await client.close()


async def voice_offers(port: int, seconds: float, stats: Counter[str], src: str) -> None:
    """The 64 KiB offer with 578 m= sections, sent again and again by 5 senders."""
    async with session(src) as http:
        async def step() -> None:
            async with http.ws_connect(f"http://127.0.0.1:{port}/ws/voice") as ws:
                await ws.receive_json()
                await ws.send_json({"type": "start_sending"})
                await ws.receive_json()
                for _ in range(20):
                    await ws.send_json({"type": "webrtc_offer",
                                        "offer": {"type": "offer", "sdp": SDP_578}})
                    reply = await ws.receive_json()
                    stats[str(reply.get("code"))] += 1

        await until(seconds, step, 5, stats)


async def voice_receivers(port: int, seconds: float, stats: Counter[str], src: str) -> None:
    """start_receiving as fast as 5 connections can ask (no stream: every ask refused)."""
    async with session(src) as http:
        async def step() -> None:
            async with http.ws_connect(f"http://127.0.0.1:{port}/ws/voice") as ws:
                await ws.receive_json()
                for _ in range(200):
                    await ws.send_json({"type": "start_receiving"})
                    stats[str((await ws.receive_json()).get("code"))] += 1

        await until(seconds, step, 5, stats)


async def mailbox_fill(port: int, seconds: float, stats: Counter[str], src: str) -> None:
    """One pair's side A sends 512 KiB payloads to an absent B as fast as it may."""
    async with session(src) as http:
        async with http.post(f"http://127.0.0.1:{port}/rendezvous/code") as resp:
            app_id = (await resp.json())["appID"]
        payload = "x" * (512 * 1024)
        async with http.ws_connect(
                f"http://127.0.0.1:{port}/ws?appID={app_id}&side=A",
                max_msg_size=0) as ws:
            async def step() -> None:
                await ws.send_json({"type": "send", "payload": payload})
                await ws.send_json({"type": "ping"})
                while True:
                    reply = await ws.receive_json()
                    if reply["type"] == "pong":
                        stats["sent"] += 1
                        return
                    stats[str(reply.get("code"))] += 1

            await until(seconds, step, 1, stats)


ATTACKS: dict[str, tuple[Attack, str]] = {
    "baseline": (baseline, "none"),
    "slowloris": (slowloris, "1,000 sockets, a header line/s each"),
    "silent sockets": (silent_sockets, "1,000 sockets sending nothing"),
    "oversized heads": (oversized_heads, "20 KB heads, 20 loops"),
    "pipelined requests": (pipelined, "200 GET /healthz per write, 10 sockets"),
    "readers that stop": (stopped_readers, "50 members not reading, flooded with 4 KB"),
    "half-open (silent peers)": (silent_peers, "500 WebSockets that never answer"),
    "junk frames": (junk_frames, "malformed JSON, 5 connections, unread errors"),
    "Socket.IO junk": (socketio_malformed, "undecodable packets, forged names, 5 sockets"),
    "Engine.IO handshakes": (engineio_handshakes, "polling handshakes, one IP, 20 loops"),
    "mint flood": (mint_flood, "POST /rendezvous/code, one IP, 20 loops"),
    "redeem guessing": (redeem_guessing, "wrong codes from 500 addresses"),
    "voice 578 m= offers": (voice_offers, "64 KiB offers with 578 m= sections"),
    "voice receive flood": (voice_receivers, "start_receiving, 5 connections"),
    "mailbox fill": (mailbox_fill, "512 KiB sends to an absent side"),
}


def attacker(name: str, port: int, seconds: float, pin: bool, src: str,
             out: mp.Queue[dict[str, int]]) -> None:
    """The attack in its own process."""
    if pin:
        os.sched_setaffinity(0, {1})
    stats: Counter[str] = Counter()
    try:
        asyncio.run(asyncio.wait_for(ATTACKS[name][0](port, seconds, stats, src), seconds + 30))
    except TimeoutError:
        stats["attack overran"] += 1
    except Exception as exc:   # the row says so instead of losing the run
        stats[f"attack failed: {type(exc).__name__}"] += 1
    out.put(dict(stats))


# -- the control pair and the server's view ----------------------------------------------


async def control(port: int, seconds: float) -> list[float]:
    """One-way relay latencies (ms) of an offer every 10 ms from a to b."""
    async with session("127.0.0.1") as http:
        a = await http.ws_connect(f"http://127.0.0.1:{port}/ws/rooms")
        b = await http.ws_connect(f"http://127.0.0.1:{port}/ws/rooms")
        room = f"control{time.monotonic_ns()}"
        for ws, me in ((a, "a"), (b, "b")):
            await ws.send_json({"type": "join", "room": room, "from": me})
            assert (await ws.receive_json())["type"] == "joined"
        sent: dict[int, float] = {}
        got: list[float] = []

        async def receive() -> None:
            async for msg in b:
                data = orjson.loads(msg.data)
                if data.get("type") == "offer":
                    n = int(data["sdp"]["sdp"].split("n=")[1])
                    got.append((time.perf_counter() - sent.pop(n)) * 1000)

        reader = asyncio.ensure_future(receive())
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            sent[n] = time.perf_counter()
            await a.send_json({"type": "offer", "to": "b",
                               "sdp": {"type": "offer", "sdp": f"v=0\r\nn={n}"}})
            n += 1
            await asyncio.sleep(0.01)
        await asyncio.sleep(1)
        reader.cancel()
        await a.close()
        await b.close()
        lost = len(sent)
        return got + [float("inf")] * lost


def metrics(port: int) -> Counter[str]:
    """The server's refusal, close and error counters."""
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    found: Counter[str] = Counter()
    for line in text.decode().splitlines():
        m = re.match(r'rtchub_(http_rejections|ws_closes|errors|pair_codes)_total\{\w+="([^"]+)"\}'
                     r" ([0-9.e+]+)", line)
        if m:
            found[f"{m.group(1)}:{m.group(2)}"] = int(float(m.group(3)))
    return found


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    """Start the server; run each scenario with the control pair; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--pin", action="store_true")
    args = parser.parse_args()
    port = free_port()
    log_path = Path(f"/tmp/rtchub-hostile-{port}.log")
    env = dict(os.environ, LOG_LEVEL="info", STREAM_ADDR="", RTC_NODE_IP="127.0.0.1",
               RTC_CONFIG_JSON='{"iceServers": []}')
    cmd = [sys.executable, "-m", "rtchub", "serve", "--addr", f"127.0.0.1:{port}"]
    with log_path.open("wb") as log_file:
        server = subprocess.Popen((["taskset", "-c", "0"] if args.pin else []) + cmd,
                                  env=env, stdout=log_file, stderr=subprocess.STDOUT)
    wait_listening(port, server)
    if args.pin:
        os.sched_setaffinity(0, {1})
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(ATTACKS)
    ctx = mp.get_context("spawn")
    rows = []
    try:
        for name in names:
            before, log_before = metrics(port), log_path.stat().st_size
            out: mp.Queue[dict[str, int]] = ctx.Queue()
            src = f"127.0.{10 + names.index(name)}.1"     # its own address: per-IP limits
            proc = ctx.Process(target=attacker, args=(name, port, args.seconds, args.pin, src,
                                                      out))
            proc.start()
            latencies = asyncio.run(control(port, args.seconds))
            load = out.get(timeout=args.seconds + 120)
            proc.join()
            after = metrics(port)
            outcome = {k: after[k] - before[k] for k in after if after[k] != before[k]}
            finite = [x for x in latencies if x != float("inf")]
            rows.append((name, ATTACKS[name][1], load, statistics.median(finite),
                         pct(finite, 0.99), max(finite), len(latencies) - len(finite),
                         outcome, rss_mib(server.pid), log_path.stat().st_size - log_before))
            print(f"[{time.strftime('%H:%M:%S')}] {name}: p50 {rows[-1][3]:.2f} ms",
                  file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\n{args.seconds:g} s per scenario; server {'on CPU 0' if args.pin else 'unpinned'};"
          f" load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print("| attack | load | control p50 / p99 / max (ms) | lost | outcome (server counters) "
          "| RSS after (MiB) | log bytes |")
    print("| --- | --- | --- | ---: | --- | ---: | ---: |")
    for name, what, load, p50, p99, worst, lost, outcome, rss, logged in rows:
        did = ", ".join(f"{k} {v}" for k, v in sorted(load.items()))
        seen = ", ".join(f"{k} {v}" for k, v in sorted(outcome.items())) or "-"
        print(f"| {name} | {what} ({did}) | {p50:.2f} / {p99:.2f} / {worst:.1f} | {lost} | "
              f"{seen} | {rss:.0f} | {logged} |")


if __name__ == "__main__":
    main()
