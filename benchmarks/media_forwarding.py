"""Server CPU for voice broadcast: packet forwarding against aiortc's MediaRelay, and MP3.

Run by hand, on loopback only (in a namespace of its own when possible)::

    unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh \\
        .venv/bin/python benchmarks/media_forwarding.py --receivers 10 40 --seconds 8

It starts two servers as child processes, each measured alone through
``/proc/<pid>/stat``: ``rtchub serve`` (RTP forwarding) and a minimal seed 002
server built the way the seed's backend is (``MediaRelay`` + one Opus encode
per receiver). One aiortc sender sends a tone; N aiortc receivers count
packets without decoding (so the client process stays light). It prints the
server CPU per receiver for both, their ratio, forwarded packets per second
per core, and the CPU of N MP3 listeners on one stream beyond the one encode.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.rtp import RtpPacket

from rtchub.media import aiortc_adapter

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from tests.voice.audio import ToneTrack

TICK = os.sysconf("SC_CLK_TCK")
LOOPBACK = ["127.0.0.1"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pc_new() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def local(pc: RTCPeerConnection, offer: bool) -> str:
    aiortc_adapter.configure_ice(pc, LOOPBACK, None)
    await pc.setLocalDescription(await (pc.createOffer() if offer else pc.createAnswer()))
    return str(pc.localDescription.sdp)


async def expect(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        msg: dict[str, Any] = await ws.receive_json(timeout=10)
        if msg.get("type") == kind:
            return msg
        if msg.get("type") == "error":
            raise RuntimeError(msg)


# -- clients -----------------------------------------------------------------------------


@dataclass
class Clients:
    http: aiohttp.ClientSession
    pcs: list[RTCPeerConnection]
    sockets: list[aiohttp.ClientWebSocketResponse]
    counts: list[int]

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()
        for ws in self.sockets:
            await ws.close()
        await self.http.close()


async def connect(base: str, receivers: int) -> Clients:
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    clients = Clients(http, [], [], [])
    ws = await http.ws_connect(f"{base}/ws")
    clients.sockets.append(ws)
    await ws.send_json({"type": "start_sending"})
    await expect(ws, "sender_ready")
    pc = pc_new()
    clients.pcs.append(pc)
    pc.addTrack(ToneTrack(440))
    await ws.send_json({"type": "webrtc_offer",
                        "offer": {"sdp": await local(pc, True), "type": "offer"}})
    answer = await expect(ws, "webrtc_answer")
    await pc.setRemoteDescription(RTCSessionDescription(**answer["answer"]))
    for i in range(receivers):
        await add_receiver(base, clients, i)
    return clients


async def add_receiver(base: str, clients: Clients, index: int) -> None:
    ws = await clients.http.ws_connect(f"{base}/ws")
    clients.sockets.append(ws)
    await ws.send_json({"type": "start_receiving"})
    offer = await expect(ws, "webrtc_offer")
    pc = pc_new()
    clients.pcs.append(pc)
    await pc.setRemoteDescription(RTCSessionDescription(**offer["offer"]))
    clients.counts.append(0)

    async def count(packet: RtpPacket, arrival_ms: int) -> None:
        clients.counts[index] += 1

    aiortc_adapter.tap_receiver(pc.getTransceivers()[0].receiver, count)
    await ws.send_json({"type": "webrtc_answer",
                        "answer": {"sdp": await local(pc, False), "type": "answer"}})


async def flowing(clients: Clients) -> None:
    deadline = time.monotonic() + 20
    while not all(c > 5 for c in clients.counts):
        if time.monotonic() > deadline:
            raise RuntimeError(f"receivers did not all get media: {clients.counts}")
        await asyncio.sleep(0.1)


async def server_metric(base: str, http: aiohttp.ClientSession, name: str) -> float | None:
    """One series from rtchub's /metrics (None for the MediaRelay server)."""
    try:
        async with http.get(f"{base}/metrics") as resp:
            if resp.status != 200:
                return None
            for line in (await resp.text()).splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[-1])
    except aiohttp.ClientError:
        return None
    return None


async def forwarded(base: str, http: aiohttp.ClientSession) -> float | None:
    """rtchub's own count of forwarded packets."""
    return await server_metric(base, http, 'rtchub_media_packets_total{stage="forwarded"}')


async def measure(pid: int, seconds: float, clients: Clients | None = None,
                  base: str = "") -> tuple[float, float]:
    """(server CPU fraction of one core, packets/s sent to receivers).

    Packets are rtchub's forwarded count when it has one, else what the
    receivers counted."""
    sent_before = await forwarded(base, clients.http) if clients and base else None
    start_cpu, start = cpu_seconds(pid), time.monotonic()
    before = sum(clients.counts) if clients else 0
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - start
    cpu = (cpu_seconds(pid) - start_cpu) / elapsed
    packets = (sum(clients.counts) if clients else 0) - before
    if sent_before is not None and clients is not None:
        sent_after = await forwarded(base, clients.http)
        if sent_after is not None:
            packets = int(sent_after - sent_before)
    return cpu, packets / elapsed


# -- the MediaRelay server (how seed 002's backend relays) -------------------------------


def relay_server(port: int) -> None:
    relay = MediaRelay()
    state: dict[str, Any] = {"track": None}
    pcs: set[RTCPeerConnection] = set()

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        pc: RTCPeerConnection | None = None
        async for msg in ws:
            data = msg.json()
            kind = data["type"]
            if kind == "start_sending":
                await ws.send_json({"type": "sender_ready", "connection_id": "x"})
            elif kind == "webrtc_offer":
                pc = pc_new()
                pcs.add(pc)
                pc.on("track", lambda track: state.__setitem__("track", track))
                await pc.setRemoteDescription(RTCSessionDescription(**data["offer"]))
                await ws.send_json({"type": "webrtc_answer",
                                    "answer": {"sdp": await local(pc, False),
                                               "type": "answer"}})
            elif kind == "start_receiving":
                pc = pc_new()
                pcs.add(pc)
                pc.addTrack(relay.subscribe(state["track"]))
                await ws.send_json({"type": "webrtc_offer",
                                    "offer": {"sdp": await local(pc, True), "type": "offer"}})
            elif kind == "webrtc_answer" and pc is not None:
                await pc.setRemoteDescription(RTCSessionDescription(**data["answer"]))
        return ws

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True)


# -- the runs ----------------------------------------------------------------------------


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_up(base: str) -> None:
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as http:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{base}/ws"):
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{base} did not come up")
            await asyncio.sleep(0.1)


async def per_receiver(name: str, proc: subprocess.Popen[bytes], base: str,
                       counts: list[int], seconds: float) -> dict[int, tuple[float, float]]:
    await wait_up(base)
    results: dict[int, tuple[float, float]] = {}
    for n in [0, *counts]:
        clients = await connect(base, n)
        try:
            if n:
                await flowing(clients)
            else:
                await asyncio.sleep(1.0)
            cpu, pps = await measure(proc.pid, seconds, clients, base)
            results[n] = (cpu, pps)
            print(f"  {name:10s} receivers={n:3d}  server CPU {cpu * 100:6.2f}% of a core  "
                  f"packets/s sent to receivers {pps:8.0f}", flush=True)
            fan_sum = await server_metric(base, clients.http, "rtchub_media_fanout_seconds_total")
            fan_n = await server_metric(base, clients.http,
                                        'rtchub_media_packets_total{stage="received"}')
            fan_max = await server_metric(base, clients.http,
                                          "rtchub_media_fanout_max_seconds")
            if n and fan_sum is not None and fan_n and fan_max is not None:
                print(f"  {'':10s} added latency in the server (arrival to last copy sent): "
                      f"mean {fan_sum / fan_n * 1000:.3f} ms, max {fan_max * 1000:.2f} ms")
        finally:
            await clients.close()
            await asyncio.sleep(1.0)
    return results


async def mp3_listeners(proc: subprocess.Popen[bytes], base: str, counts: list[int],
                        seconds: float) -> None:
    await wait_up(base)
    clients = await connect(base, 0)
    await asyncio.sleep(1.0)
    try:
        idle, _ = await measure(proc.pid, seconds)
        print(f"  mp3        listeners=  0  server CPU {idle * 100:6.2f}% (sender only)")
        one = None
        for n in counts:
            stop = asyncio.Event()
            got = [0] * n

            async def listen(i: int, stop: asyncio.Event = stop, got: list[int] = got) -> None:
                async with clients.http.get(f"{base}/stream/latest.mp3") as resp:
                    while not stop.is_set():
                        chunk = await resp.content.read(65536)
                        if not chunk:
                            return
                        got[i] += len(chunk)

            tasks = [asyncio.ensure_future(listen(i)) for i in range(n)]
            await asyncio.sleep(1.5)
            cpu, _ = await measure(proc.pid, seconds)
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if one is None:
                one = cpu
            extra = cpu - one
            print(f"  mp3        listeners={n:3d}  server CPU {cpu * 100:6.2f}%  "
                  f"beyond the first listener {extra * 100:5.2f}%  "
                  f"bytes/s per listener {min(got) / (seconds + 1.5):7.0f}", flush=True)
            await asyncio.sleep(1.0)
    finally:
        await clients.close()


async def main(args: argparse.Namespace) -> None:
    fwd_port, relay_port = free_port(), free_port()
    fwd = spawn(["-m", "rtchub", "serve"], {"ADDR": f"127.0.0.1:{fwd_port}",
                                            "STREAM_ADDR": "", "RTC_NODE_IP": "127.0.0.1",
                                            "LOG_LEVEL": "warning"})
    relay = spawn([__file__, "--relay-server", str(relay_port)], {})
    try:
        if args.only in ("all", "forward"):
            await compare(args, fwd, relay, fwd_port, relay_port)
        if args.only in ("all", "mp3"):
            print("\nMP3 listeners on one stream:")
            await mp3_listeners(fwd, f"http://127.0.0.1:{fwd_port}", args.mp3, args.seconds)
    finally:
        for proc in (fwd, relay):
            proc.terminate()
            proc.wait(10)


async def compare(args: argparse.Namespace, fwd: subprocess.Popen[bytes],
                  relay: subprocess.Popen[bytes], fwd_port: int, relay_port: int) -> None:
    print("CPU per receiver (one Opus stream, 50 packets/s per receiver):")
    fwd_res = await per_receiver("forward", fwd, f"http://127.0.0.1:{fwd_port}",
                                 args.receivers, args.seconds)
    relay_res = await per_receiver("mediarelay", relay, f"http://127.0.0.1:{relay_port}",
                                   args.relay_receivers, args.seconds)
    n_f, n_r = max(args.receivers), max(args.relay_receivers)
    per_f = (fwd_res[n_f][0] - fwd_res[0][0]) / n_f
    per_r = (relay_res[n_r][0] - relay_res[0][0]) / n_r
    print(f"\nforwarding: {per_f * 100:.3f}% of a core per receiver; MediaRelay: "
          f"{per_r * 100:.3f}% per receiver; ratio {per_r / max(per_f, 1e-9):.1f}x")
    pps = fwd_res[n_f][1]
    print(f"forwarded packets per second per core: {pps / max(fwd_res[n_f][0], 1e-9):,.0f}"
          f" ({pps:.0f} packets/s at {fwd_res[n_f][0] * 100:.1f}% CPU, {n_f} receivers);"
          f" marginal (beyond the sender-only baseline): "
          f"{pps / max(fwd_res[n_f][0] - fwd_res[0][0], 1e-9):,.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--receivers", type=int, nargs="+", default=[10, 40])
    parser.add_argument("--relay-receivers", type=int, nargs="+", default=[10])
    parser.add_argument("--mp3", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--only", choices=("all", "forward", "mp3"), default="all")
    parser.add_argument("--relay-server", type=int, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.relay_server:
        relay_server(ns.relay_server)
    else:
        asyncio.run(main(ns))
