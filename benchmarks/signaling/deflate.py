"""Is permessage-deflate worth negotiating for signaling? rtchub's aiohttp path, on and off.

The /ws fast path (picows) never negotiates permessage-deflate; rtchub's aiohttp
WebSocket path could. This runs rtchub's own pieces (Hub, rooms dialect,
:class:`~rtchub.net.httpws.AioConnection`) behind an aiohttp endpoint whose
``compress`` is switched on or off, in a server subprocess, and drives it with
aiohttp clients that offer deflate (``compress=15``) or not (``compress=0``). Messages
are realistic browser SDP offers (about 3 KB) and ICE candidates (about 200 B): random
ufrags, fingerprints and ports, not padding that compresses to nothing.

It reports, per setting: server CPU per relayed message, bytes the server wrote per
message (``/proc/PID/io`` wchar), and relay latency p50/p99 at a fixed rate. Run by
hand, loopback only::

    .venv/bin/python benchmarks/signaling/deflate.py --n 200 --rate 400 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
from aiohttp import WSMsgType, web

CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- server side (subprocess) ------------------------------------------------------------

async def serve(port: int, compress: bool) -> None:
    """rtchub's sessions behind an aiohttp /ws endpoint with deflate on or off."""
    from rtchub.app import GATEWAY, create_app
    from rtchub.config import Config, Limits, ListenAddress
    from rtchub.net.http import HUB
    from rtchub.net.httpws import HttpConnection, run_session
    from rtchub.net.router import ROUTER

    main = create_app(Config(addr=ListenAddress("127.0.0.1", port), stream_addr=None,
                             limits=Limits(max_rooms=100_000)))
    hub, gateway = main[HUB], main[GATEWAY]
    await hub.start()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        admission = main[ROUTER].admit("/ws", request.headers, "127.0.0.1")
        ws = web.WebSocketResponse(compress=compress, max_msg_size=1 << 20, autoping=False)
        await ws.prepare(request)
        conn = HttpConnection(gateway.next_id(), ws, request, "127.0.0.1", gateway.limits,
                              hub.clock, hub.stats)
        await run_session(ws, conn, gateway.open(conn, admission))
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("listening", flush=True)
    await asyncio.Event().wait()


# -- client side -------------------------------------------------------------------------

def sdp_offer(stamp: int) -> dict[str, object]:
    """A Chrome-like audio+video offer with random secrets (about 3 KB)."""
    ufrag, pwd = secrets.token_urlsafe(3), secrets.token_urlsafe(18)
    fp = ":".join(f"{b:02X}" for b in secrets.token_bytes(32))
    lines = ["v=0", f"o=- {stamp} 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
             "a=group:BUNDLE 0 1", "a=extmap-allow-mixed", "a=msid-semantic: WMS"]
    for mid, (kind, codecs) in enumerate((
            ("audio", ["111 opus/48000/2", "63 red/48000/2", "9 G722/8000", "0 PCMU/8000",
                       "8 PCMA/8000", "13 CN/8000", "110 telephone-event/48000"]),
            ("video", ["96 VP8/90000", "97 rtx/90000", "98 VP9/90000", "99 rtx/90000",
                       "100 H264/90000", "101 rtx/90000", "45 AV1/90000", "46 rtx/90000"]))):
        pts = " ".join(c.split()[0] for c in codecs)
        lines += [f"m={kind} 9 UDP/TLS/RTP/SAVPF {pts}", "c=IN IP4 0.0.0.0",
                  "a=rtcp:9 IN IP4 0.0.0.0", f"a=ice-ufrag:{ufrag}", f"a=ice-pwd:{pwd}",
                  "a=ice-options:trickle", f"a=fingerprint:sha-256 {fp}", "a=setup:actpass",
                  f"a=mid:{mid}", "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
                  "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
                  "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-"
                  "extensions-01", "a=sendrecv", f"a=msid:- {secrets.token_hex(16)}",
                  "a=rtcp-mux", "a=rtcp-rsize"]
        for codec in codecs:
            pt, name = codec.split()
            lines += [f"a=rtpmap:{pt} {name}", f"a=rtcp-fb:{pt} transport-cc",
                      f"a=rtcp-fb:{pt} nack", f"a=fmtp:{pt} minptime=10;useinbandfec=1"]
        ssrc = random.randrange(1 << 32)
        lines += [f"a=ssrc:{ssrc} cname:{secrets.token_urlsafe(12)}",
                  f"a=ssrc:{ssrc} msid:- {secrets.token_hex(16)}"]
    return {"type": "offer", "sdp": "\r\n".join(lines) + "\r\n"}


def candidate(stamp: int) -> dict[str, object]:
    """An ICE host candidate (about 200 B with the envelope)."""
    port = random.randrange(10_000, 60_000)
    return {"candidate": f"candidate:{random.randrange(1 << 31)} 1 udp 2122260223 "
                         f"127.0.0.1 {port} typ host generation 0 ufrag "
                         f"{secrets.token_urlsafe(3)} network-id 1 t{stamp}",
            "sdpMid": "0", "sdpMLineIndex": 0}


def message(kind: str, to: str) -> bytes:
    """One offer or candidate for ``to``; the send time rides in the payload."""
    stamp = time.perf_counter_ns()
    if kind == "offer":
        return orjson.dumps({"type": "offer", "to": to, "sdp": sdp_offer(stamp)})
    return orjson.dumps({"type": "candidate", "to": to, "candidate": candidate(stamp)})


def stamp_of(obj: dict[str, object]) -> int:
    """The send time carried by a relayed offer or candidate."""
    sdp = obj.get("sdp")
    if isinstance(sdp, dict):
        return int(str(sdp["sdp"]).split("\r\n", 2)[1].split()[1])
    cand = obj.get("candidate")
    assert isinstance(cand, dict)
    return int(str(cand["candidate"]).rsplit(" t", 1)[1])


async def drive(port: int, compress: int, n: int, kind: str, rate: float, duration: float,
                server_pid: int) -> dict[str, float]:
    """Connect n clients in rooms of two, send at ``rate`` msgs/s, measure."""
    latencies: list[float] = []
    # limit=0: the default connector holds at most 100 connections
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets = []
        for i in range(n):
            ws = await http.ws_connect(f"http://127.0.0.1:{port}/ws", compress=compress,
                                       max_msg_size=1 << 20)
            await ws.send_str(orjson.dumps({"type": "join", "room": f"d{i // 2}",
                                            "from": f"c{i}"}).decode())
            sockets.append(ws)
        negotiated = sockets[0].compress

        async def reader(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    break
                obj = orjson.loads(msg.data)
                if obj["type"] in ("offer", "candidate"):
                    latencies.append((time.perf_counter_ns() - stamp_of(obj)) / 1e3)

        readers = [asyncio.create_task(reader(ws)) for ws in sockets]
        await asyncio.sleep(1.0)  # joins settle
        latencies.clear()
        pid_stat, pid_io = Path(f"/proc/{server_pid}/stat"), Path(f"/proc/{server_pid}/io")
        cpu0, wchar0 = _cpu(pid_stat), _wchar(pid_io)
        start = time.perf_counter()
        total = int(rate * duration)
        for sent in range(total):
            due = start + sent / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            i = sent % n
            await sockets[i].send_str(message(kind, f"c{i ^ 1}").decode())
        await asyncio.sleep(0.5)
        cpu1, wchar1 = _cpu(pid_stat), _wchar(pid_io)
        got = len(latencies)
        for ws in sockets:
            await ws.close()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    latencies.sort()
    return {"negotiated": float(bool(negotiated)), "sent": total, "recv": got,
            "server_us_per_msg": (cpu1 - cpu0) / max(got, 1) * 1e6,
            "bytes_out_per_msg": (wchar1 - wchar0) / max(got, 1),
            "p50_us": latencies[got // 2] if got else -1.0,
            "p99_us": latencies[min(got - 1, got * 99 // 100)] if got else -1.0}


def _cpu(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _wchar(io: Path) -> int:
    for line in io.read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    """An unused loopback TCP port."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def server(compress: bool) -> Iterator[tuple[int, int]]:
    """A server subprocess; yields (port, pid)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port),
                             "--compress", "1" if compress else "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "listening":
            raise RuntimeError("deflate server did not start")
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def main() -> None:
    """Both settings, both message kinds; a Markdown table on stdout."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=200, help="clients (even)")
    p.add_argument("--rate", type=float, default=400.0, help="messages/s in total")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per setting")
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    p.add_argument("--compress", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        import uvloop
        uvloop.run(serve(args.serve, bool(args.compress)))
        return
    if args.n < 2 or args.n % 2 or args.n > 2000 or not 0 < args.rate <= 20_000 \
            or not 0 < args.duration <= 60:
        p.error("--n even up to 2000, --rate up to 20000, --duration up to 60 s")
    rows = []
    for kind in ("offer", "candidate"):
        for deflate in (False, True):
            with server(deflate) as (port, pid):
                print(f"{kind}: deflate {'on' if deflate else 'off'}...", file=sys.stderr,
                      flush=True)
                r = asyncio.run(drive(port, 15 if deflate else 0, args.n, kind, args.rate,
                                      args.duration, pid))
            rows.append((kind, deflate, r))
    print(f"\n{args.n} clients, {args.rate:g} msgs/s for {args.duration:g} s per row\n")
    print("| message | deflate | negotiated | relayed | server CPU/msg (µs) | "
          "server bytes out/msg | p50 (µs) | p99 (µs) |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, deflate, r in rows:
        print(f"| {kind} | {'on' if deflate else 'off'} | {'yes' if r['negotiated'] else 'no'} "
              f"| {r['recv']:.0f}/{r['sent']:.0f} | {r['server_us_per_msg']:.1f} | "
              f"{r['bytes_out_per_msg']:.0f} | {r['p50_us']:.0f} | {r['p99_us']:.0f} |")


if __name__ == "__main__":
    main()
