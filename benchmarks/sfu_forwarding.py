"""The SFU's forwarding cost with 360p VP8 video, against aiortc's MediaRelay, in one run.

Run by hand, on loopback only::

    unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh \\
        .venv/bin/python benchmarks/sfu_forwarding.py --pin \\
        --fanout 16 64 --relay-fanout 1 3 --simulcast-fanout 64 --rooms --seconds 10

Each server runs as a child process (:mod:`benchmarks.sfu_servers`) measured
alone through ``/proc/<pid>/stat``. The load generator (this process) holds the
participants: publishers send a pre-encoded 640x360 VP8 clip (about 1 Mbit/s,
30 fps, a keyframe every 2 s; no encoding here), subscribers count what
arrives per SSRC straight off their SRTP (no decoding), so the generator stays
light. With ``--pin`` each server runs on CPU 0 and the generator on CPU 1. The
single-layer publisher's clip is :mod:`benchmarks.sfu_clip`.

It prints, per scenario: the server's CPU, packets delivered per second and
the packets per second one core forwards at that rate, the loss subscribers
saw, the generator's CPU, and at the end the per-subscriber CPU of the SFU and
of MediaRelay (beyond their publisher-only baseline), their ratio and the
largest all-to-all room of 360p video that held with < 1% loss.

``--simulcast-fanout`` repeats the SFU's fan-outs with a simulcast publisher
(:mod:`benchmarks.sfu_simulcast`, which holds what only those scenarios need:
640x360, 320x180 and 160x90 VP8 layers sent as Chromium sends them) whose
subscribers ask for low, medium and high in turn (a third each), once with
adaptive quality off and once with it running.
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
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy

from rtchub.media import aiortc_adapter
from rtchub.media.sfu.rtcp import remb
from rtchub.media.sfu.rtp import FIXED

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))  # run as a script
from benchmarks.sfu_clip import ClipTrack, clip_rate, encode_clip
from benchmarks.sfu_simulcast import (
    SIMULCAST_REMB,
    describe_layers,
    offer_layers,
    publish_layers,
    simulcast_clips,
)

TICK = os.sysconf("SC_CLK_TCK")
LOOPBACK = ["127.0.0.1"]
BUFFER = 4 * 1024 * 1024
REMB_BITRATE = 1_000_000  # per received stream: about the clip's rate


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the participants --------------------------------------------------------------------


@dataclass
class Stream:
    """What one subscriber got of one SSRC."""

    first: int
    highest: int  # extended
    received: int = 0


@dataclass
class Participant:
    """One generator-side participant: a WebSocket and an aiortc peer connection."""

    ws: aiohttp.ClientWebSocketResponse
    pc: RTCPeerConnection
    streams: dict[int, Stream] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    wire: aiortc_adapter.SrtpWire | None = None
    remb_bitrate: int = REMB_BITRATE  # what it tells the server it takes per stream

    def count(self, data: bytes, arrival_ms: int) -> None:
        seq, ssrc = FIXED.unpack_from(data)[2], FIXED.unpack_from(data)[4]
        stream = self.streams.get(ssrc)
        if stream is None:
            self.streams[ssrc] = Stream(seq, seq, 1)
            return
        stream.received += 1
        delta = (seq - stream.highest) & 0xFFFF
        if delta < 0x8000:
            stream.highest += delta

    def snapshot(self) -> dict[int, tuple[int, int]]:
        return {ssrc: (s.highest - s.first + 1, s.received) for ssrc, s in self.streams.items()}


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[],
                                              bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


async def join(http: aiohttp.ClientSession, base: str, ident: str, clip: list[bytes] | None,
               subscribe: bool, *, layers: list[list[bytes]] | None = None,
               layer: int | None = None) -> Participant:
    """A participant publishing ``clip`` (or the simulcast ``layers``, lowest first) and/or
    subscribing to everything (at ``layer`` of a simulcast track: None for the top)."""
    ws = await http.ws_connect(f"{base}/ws", max_msg_size=1 << 20)
    pc = new_pc()
    me = Participant(ws, pc)
    await ws.send_json({"type": "join", "id": ident,
                        "publish": clip is not None or layers is not None,
                        "subscribe": subscribe, "layer": layer})
    if clip is not None:
        pc.addTransceiver(ClipTrack(clip), direction="sendonly")
        aiortc_adapter.configure_ice(pc, LOOPBACK, None, BUFFER)
        await pc.setLocalDescription(await pc.createOffer())
        await ws.send_json({"type": "offer", "sdp": pc.localDescription.sdp})
    elif layers is not None:
        offer, pt, mid_id = await offer_layers(
            pc, lambda: aiortc_adapter.configure_ice(pc, LOOPBACK, None, BUFFER))
        await ws.send_json({"type": "offer", "sdp": offer})
        me.tasks.append(asyncio.ensure_future(
            publish_layers(pc, lambda: me.wire, layers, pt, mid_id)))
    me.tasks.append(asyncio.ensure_future(signal(me)))
    return me


async def signal(me: Participant) -> None:
    try:
        await answer_offers(me)
    except Exception as exc:
        print(f"  a participant's signaling failed: {type(exc).__name__}: {exc}", flush=True)
        raise


async def answer_offers(me: Participant) -> None:
    wire_on = False
    async for msg in me.ws:
        data = msg.json()
        if data["type"] == "answer":
            await me.pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "answer"))
        elif data["type"] == "offer":
            await me.pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
            aiortc_adapter.configure_ice(me.pc, LOOPBACK, None, BUFFER)
            await me.pc.setLocalDescription(await me.pc.createAnswer())
            await me.ws.send_json({"type": "answer", "sdp": me.pc.localDescription.sdp})
        if not wire_on and me.pc.getTransceivers():
            # count what arrives off the SRTP, without aiortc parsing or decoding it
            me.wire = aiortc_adapter.SrtpWire(me.pc.getTransceivers()[0].receiver.transport,
                                              me.count)
            me.tasks.append(asyncio.ensure_future(estimate(me)))
            wire_on = True


async def estimate(me: Participant) -> None:
    """Tell the server, as a browser would, that this subscriber takes REMB_BITRATE for
    what it receives: MediaRelay's encoders then aim at about what the SFU forwards."""
    while True:
        await asyncio.sleep(1.0)
        if me.wire is not None and me.streams:
            me.wire.send_rtcp(remb(1, me.remb_bitrate * len(me.streams), list(me.streams)))


async def close_all(people: list[Participant], base: str) -> None:
    """Close every participant and wait until the server let go of them all."""
    for person in people:
        for task in person.tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await person.ws.close()
        await person.pc.close()
    for _ in range(150):  # the server is another process: ask it, for up to 30 s
        if not (await server_counters(base)).get("participants"):
            return
        await asyncio.sleep(0.2)


# -- measuring ---------------------------------------------------------------------------


@dataclass
class Result:
    server_cpu: float  # fraction of one core
    delivered: float  # packets/s that reached subscribers
    loss: float  # share of the packets subscribers should have seen
    generator_cpu: float
    streams: int = 0  # forwarded streams (publisher -> subscriber pairs)
    server_in: float = 0.0  # packets/s the server received from publishers
    server_lost_in: float = 0.0  # share of the publishers' packets that never reached it


async def server_counters(base: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/stats") as resp:
        counters: dict[str, Any] = await resp.json()
        return counters


async def measure(pid: int, people: list[Participant], seconds: float, base: str) -> Result:
    before = [p.snapshot() for p in people]
    server0 = await server_counters(base)
    cpu0, gen0, t0 = cpu_seconds(pid), cpu_seconds(os.getpid()), time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - t0
    server1 = await server_counters(base)
    cpu = (cpu_seconds(pid) - cpu0) / elapsed
    gen = (cpu_seconds(os.getpid()) - gen0) / elapsed
    expected = received = 0
    for person, old in zip(people, before, strict=True):
        for ssrc, (exp, got) in person.snapshot().items():
            exp0, got0 = old.get(ssrc, (0, 0))
            expected += exp - exp0
            received += got - got0
    loss = 1 - received / expected if expected else 1.0
    got_in = server1.get("received", 0) - server0.get("received", 0)
    lost_in = server1.get("lost_in", 0) - server0.get("lost_in", 0)
    streams = sum(len(p.streams) for p in people)
    return Result(cpu, received / elapsed, max(0.0, loss), gen, streams, got_in / elapsed,
                  lost_in / max(1, got_in + lost_in))


async def flowing(people: list[Participant], streams_each: int, base: str,
                  timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while not all(len([s for s in p.streams.values() if s.received > 30]) >= streams_each
                  for p in people):
        if time.monotonic() > deadline:
            got = sorted(len(p.streams) for p in people)
            async with aiohttp.ClientSession() as http, http.get(f"{base}/stats") as resp:
                server = await resp.json()
            raise RuntimeError(f"not every subscriber gets {streams_each} streams: {got}; "
                               f"the server says {server}")
        await asyncio.sleep(0.2)


def kept(r: Result, nominal: float) -> float:
    """The share of its nominal packet rate each stream carried."""
    return r.delivered / max(1.0, r.streams * nominal)


def report(label: str, r: Result, nominal: float) -> None:
    per_core = r.delivered / max(r.server_cpu, 1e-9)
    print(f"  {label:26s} server CPU {r.server_cpu * 100:5.1f}%  delivered {r.delivered:6.0f}"
          f" pkt/s = {per_core:7,.0f} pkt/s per core  loss {r.loss * 100:4.2f}% (into the "
          f"server {r.server_lost_in * 100:4.2f}%)  rate kept {kept(r, nominal) * 100:3.0f}%  "
          f"generator CPU {r.generator_cpu * 100:4.1f}%"
          # the SFU counts what its publishers sent: a low rate kept with it is the generator's
          + (f"  publishers' packets in {r.server_in:.0f}/s" if r.server_in else ""),
          flush=True)


async def fanout(base: str, pid: int, clip: list[bytes], subscribers: int,
                 seconds: float, layers: list[list[bytes]] | None = None) -> Result:
    """One publisher of ``clip`` (or of the simulcast ``layers``: its subscribers ask for
    low, medium and high in turn) and ``subscribers`` subscribers, measured."""
    async with aiohttp.ClientSession() as http:
        people: list[Participant] = []
        try:
            people.append(await join(http, base, f"publisher-{subscribers}",
                                     None if layers else clip, False, layers=layers))
            for _ in range(150):  # MediaRelay offers a viewer the tracks it has when it joins
                if (await server_counters(base)).get("tracks"):
                    break
                await asyncio.sleep(0.2)
            for i in range(subscribers):
                viewer = await join(http, base, f"viewer-{subscribers}-{i}", None, True,
                                    layer=i % 3 if layers else None)
                if layers:
                    viewer.remb_bitrate = SIMULCAST_REMB
                people.append(viewer)
            if subscribers:
                await flowing(people[1:], 1, base)
            else:
                await asyncio.sleep(3)
            return await measure(pid, people[1:], seconds, base)
        finally:
            await close_all(people, base)


async def room(base: str, pid: int, clip: list[bytes], size: int, seconds: float) -> Result:
    async with aiohttp.ClientSession() as http:
        people: list[Participant] = []
        try:
            for i in range(size):
                people.append(await join(http, base, f"room{size}-{i}", clip, True))
            await flowing(people, size - 1, base)
            return await measure(pid, people, seconds, base)
        finally:
            await close_all(people, base)


def spawn(kind: str, port: int, pin: bool, adaptive: bool = False) -> subprocess.Popen[bytes]:
    prefix = ["taskset", "-c", "0"] if pin else []
    return subprocess.Popen([*prefix, sys.executable, "-m", "benchmarks.sfu_servers", kind,
                             str(port), *(["adaptive"] if adaptive else [])],
                            cwd=os.path.join(os.path.dirname(__file__), ".."),
                            stdout=subprocess.DEVNULL)


async def wait_up(base: str) -> None:
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as http:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{base}/stats") as resp:
                    if resp.status == 200:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{base} did not come up")
            await asyncio.sleep(0.1)


SCENARIOS = {  # label -> (server kind, simulcast publisher, adaptive quality)
    "sfu": ("sfu", False, False),
    "relay": ("relay", False, False),
    "simulcast": ("sfu", True, False),
    "simulcast+adapt": ("sfu", True, True),
}


async def main(args: argparse.Namespace) -> None:
    if args.pin:
        os.sched_setaffinity(0, {1})
    width, height = (int(x) for x in args.size.split("x"))
    clip = encode_clip(width=width, height=height)
    rate = sum(len(p) for p in clip) * 8 / 2
    nominal = clip_rate(clip)
    layers = simulcast_clips(width, height, clip) if args.simulcast_fanout else []
    print(f"clip: {len(clip)} VP8 frames of {args.size}, {rate / 1000:.0f} kbit/s, "
          f"{nominal:.0f} packets/s at 30 fps; "
          f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; pinned: {args.pin}",
          flush=True)
    if layers:
        print(describe_layers(width, height, layers), flush=True)
    results: dict[str, dict[int, Result]] = {}
    plan = [("sfu", args.fanout), ("relay", args.relay_fanout),
            ("simulcast", args.simulcast_fanout), ("simulcast+adapt", args.simulcast_fanout)]
    for label, counts in plan:
        kind, simulcast, adaptive = SCENARIOS[label]
        rooms = args.rooms if label == "sfu" else []
        if not counts and not rooms:
            continue
        port = free_port()
        proc = spawn(kind, port, args.pin, adaptive)
        base = f"http://127.0.0.1:{port}"
        expected = (sum(clip_rate(layers[i % 3]) for i in range(3)) / 3 if simulcast
                    else nominal)
        results[label] = {}
        try:
            await wait_up(base)
            if counts:
                print(f"{label}: one publisher, N subscribers"
                      + (" asking for low, medium, high in turn" if simulcast else ""),
                      flush=True)
            for n in [0, *counts] if counts else []:
                result = await fanout(base, proc.pid, clip, n, args.seconds,
                                      layers if simulcast else None)
                results[label][n] = result
                report(f"{label} subscribers={n}", result, expected)
            if rooms:
                print("sfu: rooms where everyone publishes 360p and receives everyone else",
                      flush=True)
                for size in rooms:
                    try:
                        result = await room(base, proc.pid, clip, size, args.seconds)
                    except RuntimeError as exc:
                        print(f"  room of {size}: {exc}", flush=True)
                        break
                    results["room"] = {**results.get("room", {}), size: result}
                    report(f"room of {size} ({size * (size - 1)} streams)", result, nominal)
        finally:
            proc.terminate()
            proc.wait(10)
    summary(results, nominal)


def summary(results: dict[str, dict[int, Result]], nominal: float) -> None:
    per: dict[str, float] = {}
    for label in SCENARIOS:
        runs = results.get(label, {})
        counts = [n for n in runs if n]
        if 0 in runs and counts:
            n = max(counts)
            extra = runs[n].server_cpu - runs[0].server_cpu
            per[label] = extra / n
            copy = extra / max(runs[n].delivered, 1e-9) * 1e6
            print(f"{label}: {per[label] * 100:.3f}% of a core per subscriber (N={n}, "
                  f"beyond the publisher-only baseline), {copy:.1f} µs per packet delivered, "
                  f"{runs[n].delivered / max(runs[n].server_cpu, 1e-9):,.0f} pkt/s per core")
    if "sfu" in per and "relay" in per:
        print(f"MediaRelay costs {per['relay'] / max(per['sfu'], 1e-9):.1f}x the SFU per "
              f"subscriber")
    rooms = results.get("room", {})
    held = [size for size, r in rooms.items() if r.loss < 0.01 and kept(r, nominal) > 0.95]
    if rooms:
        best = max(held) if held else None
        print(f"largest room with < 1% loss and every stream at its full rate: {best}")
        top = max(rooms.values(), key=lambda r: r.delivered)
        print(f"highest SFU rate: {top.delivered:,.0f} pkt/s at {top.server_cpu * 100:.0f}% "
              f"of a core = {top.delivered / max(top.server_cpu, 1e-9):,.0f} pkt/s per core")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fanout", type=int, nargs="*", default=[16])
    parser.add_argument("--relay-fanout", type=int, nargs="*", default=[2])
    parser.add_argument("--simulcast-fanout", type=int, nargs="*", default=[],
                        help="subscriber counts for a simulcast publisher, adaptation off and on")
    parser.add_argument("--rooms", type=int, nargs="*", default=[4, 8, 12])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--size", default="640x360", help="the clip's picture size, WxH")
    parser.add_argument("--pin", action="store_true",
                        help="server on CPU 0, this generator on CPU 1")
    asyncio.run(main(parser.parse_args()))
