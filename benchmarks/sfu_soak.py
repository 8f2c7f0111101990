"""Soak: SFU participants join a call room, publish, subscribe and leave, over and over.

Run by hand (never in the test suite); all traffic stays on loopback::

    unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh \\
        .venv/bin/python benchmarks/sfu_soak.py --cycles 1000 --parallel 2

The server runs in its own process (``sfu_soak.py serve``: ``build_server`` on uvloop from
the same settings ``rtchub serve`` reads, with ``RTC_NODE_IP=127.0.0.1``; ``--pin`` puts it
on CPU 0 and the participants on CPU 1). The participants run here, in ``--parallel`` SFU
rooms at once. In each room an *anchor* stays for the whole run, publishing a camera and a
tone and subscribed to everything. A cycle is one participant's life in one room: connect
to ``/ws/rooms``, join with ``topology: sfu``, negotiate the chat channel, receive the
anchor's tracks, publish video and audio, decode one frame of the anchor's camera
(forwarded by the server), wait until the server subscribed the anchor to its tracks and
renegotiated, then leave: even cycles send ``leave`` and wait for a pong before closing,
odd ones only close the socket. One room runs one cycle at a time (aiortc as a client
cannot answer an offer while it holds a transceiver not negotiated yet, so two publishers
joining one room at once trip the client, not the server: docs/sfu-media.md).

Every ``--every`` cycles, once the wave has left and the server holds only the anchors
again, the server is asked (a line on its stdin) to sample itself after a full
``gc.collect()``: RSS, open file descriptors, asyncio tasks, Python objects, open
WebSocket connections, call participants and SFU peers. After ``--warmup`` the samples
must be flat: the verdict gives first, last and the least-squares slope per 100 cycles.
The last row is taken after the anchors left too. If the server does not settle within
30 s, it writes every task's await chain and any aiortc receiver whose RTCP task died to
its log (``/tmp/rtchub-sfu-soak-PORT.log``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.signaling.run import cpu_seconds, free_port, wait_listening  # noqa: E402

FIELDS = ("rss_mib", "fds", "tasks", "objects", "conns", "participants", "peers")


def rss_mib() -> float:
    """This process's resident memory."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def serve(port: int) -> None:
    """``sfu_soak.py serve``: rtchub on ``port``; each line on stdin asks for a sample,
    printed as one JSON line on stdout."""
    from rtchub.app import build_server
    from rtchub.config import load
    from rtchub.features.calls.routes import CALL_MEDIA, CALLS

    config = load(flags={"addr": f"127.0.0.1:{port}", "stream_addr": ""})
    server = build_server(config)
    await server.start()
    hub, calls, media = server.hub, server.app[CALLS], server.app[CALL_MEDIA]
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    started = time.monotonic()
    try:
        while (line := await stdin.readline()):
            if line.strip() == b"stacks":   # by hand: what every task is waiting on
                for task in asyncio.all_tasks():
                    print(f"task {task.get_name()}: {' <- '.join(reversed(awaiting(task)))}",
                          file=sys.stderr)
                from aiortc import RTCRtpReceiver
                for obj in gc.get_objects():
                    if isinstance(obj, RTCRtpReceiver):
                        rtcp = getattr(obj, "_RTCRtpReceiver__rtcp_task", None)
                        if rtcp is not None and rtcp.done() and not rtcp.cancelled():
                            print(f"receiver RTCP task ended: {rtcp.exception()!r}",
                                  file=sys.stderr)
                sys.stderr.flush()
                continue
            gc.collect()
            tasks = Counter(getattr(t.get_coro(), "__qualname__", "?")
                            for t in asyncio.all_tasks())
            rooms = [calls.find_room(r) for r in media.room_ids()]
            row = {"label": line.decode().strip(), "t": round(time.monotonic() - started, 1),
                   "rss_mib": round(rss_mib(), 1), "fds": len(os.listdir("/proc/self/fd")),
                   "tasks": sum(tasks.values()), "objects": len(gc.get_objects()),
                   "conns": len(hub.connections),
                   "participants": sum(len(r.participants) for r in calls.rooms()),
                   "peers": sum(len(media._rooms[r.id].peers) for r in rooms if r),
                   "top_tasks": tasks.most_common(4)}
            print(json.dumps(row), flush=True)
    finally:
        await server.stop()


def awaiting(task: asyncio.Task[Any]) -> list[str]:
    """Where ``task`` waits, outermost first: every coroutine frame down its await chain."""
    out = []
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            out.append(f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno} "
                       f"{frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return out


class Soak:
    """The client side: the anchor, the cycles, the server's samples."""

    def __init__(self, url: str, server: subprocess.Popen[str]) -> None:
        from rtchub.base.changes import Changes

        self.url = url
        self.server = server
        self.changes = Changes()
        self.rows: list[dict[str, Any]] = []
        self.failures: Counter[str] = Counter()

    async def participant(self, name: str, room: str, seed: int, anchor: str | None = None
                          ) -> Any:
        """A participant joined to SFU room ``room``, publishing a camera and a tone (once
        it receives ``anchor``'s tracks: aiortc as a client cannot answer an offer while it
        holds a transceiver not negotiated yet, docs/sfu-media.md)."""
        from tests.calls.support import Participant
        from tests.media.sfu_support import PictureTrack
        from tests.support import WsClient
        from tests.voice.audio import ToneTrack

        ws = await WsClient.connect(self.url)
        person = Participant(name, ws, self.changes)
        try:
            step = "join"
            await person.send({"type": "join", "room": room, "from": name, "topology": "sfu"})
            await self.until(lambda: bool(person.joined) or bool(person.errors))
            if person.errors:
                raise RuntimeError(f"join refused: {person.errors}")
            channel = person.open_chat()
            step = "first negotiation"
            await person.negotiate()
            step = "chat channel open"
            await self.until(lambda: channel.readyState == "open")
            if anchor is not None:
                step = "the anchor's tracks"
                await self.until(lambda: person.has_media_of([anchor]))
            person.publish(PictureTrack(160, 120, seed=seed))
            person.publish(ToneTrack(220.0 + seed % 7 * 55))
            step = "publishing"
            await person.negotiate()
        except (TimeoutError, AssertionError) as exc:
            await person.close()
            raise TimeoutError(f"{step}: {type(exc).__name__} {exc}") from None
        except BaseException:
            await person.close()
            raise
        return person

    async def until(self, condition: Any, timeout: float = 30.0) -> None:
        """Wait for ``condition`` (re-checked on every change) under ``timeout``."""
        await self.changes.wait_for(condition, timeout)

    async def cycle(self, anchor: Any, room: str, n: int) -> None:
        """One participant's whole life in ``room``."""
        name = f"p{n}"
        person = await self.participant(name, room, n, anchor.name)
        try:
            video = next(t for t in person.tracks
                         if t["publisher"] == anchor.name and t["kind"] == "video")
            try:
                await asyncio.wait_for(person.received[video["track_id"]].recv(), 30)
            except TimeoutError:
                raise TimeoutError("no frame of the anchor's camera") from None
            try:
                await self.until(lambda: receives(anchor, name))
            except TimeoutError:
                raise TimeoutError("the anchor was not given the tracks") from None
            if n % 2 == 0:
                await person.send({"type": "leave"})
                await person.sync()
        finally:
            await person.close()

    async def sample(self, label: str) -> dict[str, Any]:
        """Ask the server for one sample and read it."""
        assert self.server.stdin is not None and self.server.stdout is not None
        loop = asyncio.get_running_loop()
        self.server.stdin.write(label + "\n")
        self.server.stdin.flush()
        line = await loop.run_in_executor(None, self.server.stdout.readline)
        row: dict[str, Any] = json.loads(line)
        self.rows.append(row)
        return row

    async def settled(self, participants: int) -> None:
        """Wait until the server holds ``participants`` connections and peers (the last
        wave's closes are applied), sampling until it does (at most 30 s)."""
        deadline = time.monotonic() + 30
        while True:
            row = await self.sample("probe")
            self.rows.pop()
            if row["conns"] == row["participants"] == row["peers"] == participants:
                return
            if time.monotonic() > deadline:
                self.failures["not settled"] += 1
                assert self.server.stdin is not None   # what the server waits on, to its log
                self.server.stdin.write("stacks\n")
                self.server.stdin.flush()
                return
            await asyncio.sleep(0.2)

    async def run(self, cycles: int, parallel: int, every: int) -> None:
        """An anchor in each of ``parallel`` rooms, ``cycles`` participants in waves of one
        per room, the samples."""
        await self.sample("before")
        rooms = [f"soak{i}" for i in range(parallel)]
        anchors = [await self.participant(f"anchor{i}", room, -1 - i)
                   for i, room in enumerate(rooms)]
        started = time.monotonic()
        done = 0
        try:
            while done < cycles:
                wave = range(done, min(done + parallel, cycles))
                results = await asyncio.gather(
                    *(self.cycle(anchors[n % parallel], rooms[n % parallel], n) for n in wave),
                    return_exceptions=True)
                for r in results:
                    if isinstance(r, BaseException):
                        why = f"{type(r).__name__}: {r}"[:120]
                        self.failures[why] += 1
                        print(f"cycle failed: {why}", file=sys.stderr, flush=True)
                done = wave.stop
                if done % every == 0 or done == cycles:
                    await self.settled(parallel)
                    row = await self.sample(str(done))
                    rate = done / (time.monotonic() - started)
                    print(f"{done:6d} cycles  {rate:5.2f}/s  rss {row['rss_mib']:6.1f} MiB  "
                          f"fds {row['fds']:4d}  tasks {row['tasks']:3d}  objects "
                          f"{row['objects']:7d}  conns {row['conns']}  participants "
                          f"{row['participants']}  peers {row['peers']}  failures "
                          f"{sum(self.failures.values())}", flush=True)
        finally:
            for anchor in anchors:
                await anchor.close()
        await self.settled(0)
        await self.sample("anchors left")
        print(f"\n{done} cycles in {time.monotonic() - started:.0f} s")


def receives(anchor: Any, name: str) -> bool:
    """The anchor was offered ``name``'s audio and video by the server and answered.

    (aiortc fires ``track`` only for a new transceiver, not for a section the server
    reuses, so the anchor's ``received`` cannot tell.)"""
    tracks = [t for t in anchor.tracks if t["publisher"] == name]
    remote = anchor.pc.remoteDescription
    if {t["kind"] for t in tracks} != {"audio", "video"} or remote is None:
        return False
    return anchor.pc.signalingState == "stable" and all(
        f" {t['track_id']}\r\n" in remote.sdp for t in tracks)


def slope(rows: list[dict[str, Any]], key: str) -> float:
    """Least-squares slope of ``key`` against cycles, per 100 cycles."""
    xs = [float(r["label"]) for r in rows]
    ys = [float(r[key]) for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 100 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def report(soak: Soak, cycles: int, warmup: int, server_cpu: float, client_cpu: float
           ) -> None:
    """The table, the verdict, the failures."""
    print(f"server CPU {server_cpu:.0f} s, participants' process CPU {client_cpu:.0f} s; "
          f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("| cycles | RSS MiB | fds | tasks | Python objects | connections | participants | "
          "SFU peers |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in soak.rows:
        print(f"| {r['label']} | {r['rss_mib']:.1f} | {r['fds']} | {r['tasks']} | "
              f"{r['objects']:,} | {r['conns']} | {r['participants']} | {r['peers']} |")
    numbered = [r for r in soak.rows if r["label"].isdigit()]
    warm = [r for r in numbered if int(r["label"]) >= warmup]
    if len(warm) >= 3:
        first, last = warm[0], warm[-1]
        print(f"\nafter warm-up ({first['label']} -> {last['label']} cycles), first -> last "
              "(least-squares slope per 100 cycles):")
        for key in ("rss_mib", "fds", "tasks", "objects"):
            print(f"  {key:8s} {first[key]} -> {last[key]}  ({slope(warm, key):+.2f})")
    print(f"most tasks sampled: {max(soak.rows, key=lambda r: r['tasks'])['top_tasks']}")
    print(f"failed cycles: {sum(soak.failures.values())} {dict(soak.failures)}")


def main() -> None:
    """Start the server, run the cycles, print the samples and the verdict."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd")
    srv = sub.add_parser("serve")
    srv.add_argument("--port", type=int, required=True)
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--every", type=int, default=100, help="sample every N cycles")
    parser.add_argument("--warmup", type=int, default=100,
                        help="cycles before the samples must be flat")
    parser.add_argument("--pin", action="store_true",
                        help="server on CPU 0, participants on CPU 1 (taskset)")
    args = parser.parse_args()
    if args.cmd == "serve":   # on uvloop, as `rtchub serve` runs
        import uvloop

        uvloop.run(serve(args.port))
        return
    if args.every % args.parallel:
        parser.error("--every must be a multiple of --parallel")
    port = free_port()
    env = dict(os.environ, LOG_LEVEL="warning", RTC_NODE_IP="127.0.0.1",
               RTC_CONFIG_JSON='{"iceServers": []}')
    cmd = [sys.executable, __file__, "serve", "--port", str(port)]
    server_log = Path(f"/tmp/rtchub-sfu-soak-{port}.log")
    with server_log.open("w") as errors:
        server = subprocess.Popen((["taskset", "-c", "0"] if args.pin else []) + cmd, env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=errors, text=True)
    wait_listening(port, server)  # type: ignore[arg-type]
    if args.pin:
        os.sched_setaffinity(0, {1})
    print(f"uptime: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    soak = Soak(f"http://127.0.0.1:{port}/ws/rooms", server)
    try:
        asyncio.run(soak.run(args.cycles, args.parallel, args.every))
    finally:
        server_cpu = cpu_seconds(server.pid)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with contextlib.suppress(Exception):
            server.terminate()
            server.communicate(timeout=30)
    report(soak, args.cycles, args.warmup, server_cpu, usage.ru_utime + usage.ru_stime)
    lines = server_log.read_text().splitlines()
    print(f"server log: {len(lines)} lines ({server_log}); most common: "
          f"{Counter(lines).most_common(3)}")


if __name__ == "__main__":
    main()
