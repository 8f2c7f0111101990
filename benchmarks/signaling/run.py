"""Signaling load benchmark: rtchub's /ws fast path against the PeerJS server, side by side.

Run by hand (never in the test suite); all traffic stays on loopback::

    .venv/bin/python benchmarks/signaling/run.py --n 1000,10000 --size 200,3000 \
        --duration 5 --servers rtchub,peerjs

For each N it starts each server fresh, connects N clients to each with the C generator
(``wsload.c``, built here with gcc into ``benchmarks/out/``), pairs them into rooms of two,
and measures per server, in alternation so both see the same machine:

* RSS per idle connection: (RSS with N joined idle clients - RSS before) / N;
* max relayed messages/s: closed loop, one message in flight per room, so every read holds
  one frame; with the server's CPU per message (``/proc/PID/stat``) and its load in cores.
  On a shared machine the raw rate also depends on the CPU share the scheduler gives each
  server (Node's extra threads win more of it under load), so the table also shows
  msgs/s per server core, 1e6 / CPU per message: what each would do with a core to itself;
* relay latency p50/p99 at a fixed open-loop rate: half of PeerJS's max rate for that size
  (half of the slowest measured server when PeerJS is not run);
* each phase runs ``--rounds`` times, alternating servers; the best round counts (highest
  rate, lowest p99), since stalls of the shared machine land on whichever server is
  being measured at the time;
* the generator's own CPU, to show it is not what limits the run;
* the same phases against ``floor_relay.c``, a C relay that does nothing but forward: its
  p50 is the latency floor of the minute (the p50 target is floor + 100 µs) and its max
  rate shows how far the generator can go.

Ratios are rtchub / PeerJS (for latency, CPU and memory lower is better).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
OUT = ROOT / "benchmarks" / "out"
PEER_VERSION = "1.0.2"
FLOOR_US = 85  # loopback one-way relay floor across the 2 cores (FIELD-NOTES.md)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
SRC_BASE = {"rtchub": 2, "baseline": 60, "peerjs": 40, "floor": 80}
FLOOR = "floor"  # the C relay that measures the latency floor (floor_relay.c)


def log(msg: str) -> None:
    """Progress on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def build(name: str) -> Path:
    """Compile ``name``.c into benchmarks/out (when the source is newer than the binary)."""
    OUT.mkdir(parents=True, exist_ok=True)
    src, binary = HERE / f"{name}.c", OUT / name
    if not binary.exists() or binary.stat().st_mtime < src.stat().st_mtime:
        log(f"building {name} with gcc")
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(binary), str(src)], check=True,
                       timeout=120)
    return binary


def install_peerjs() -> Path:
    """``npm install peer`` into benchmarks/out/peerjs (once)."""
    prefix = OUT / "peerjs"
    if not (prefix / "node_modules" / "peer").exists():
        log(f"installing peer@{PEER_VERSION} with npm")
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(prefix),
                        f"peer@{PEER_VERSION}"], check=True, timeout=600)
    return prefix / "node_modules"


def free_port() -> int:
    """An unused loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Until something accepts on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port} after {timeout} s")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and its reaped children are not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident set size."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


@dataclass
class Server:
    """One server under test, its generator and its results."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    gen: subprocess.Popen[str] | None = None
    rss_before: int = 0
    results: dict[str, Any] = field(default_factory=dict)

    def command(self, line: str) -> dict[str, Any]:
        """Send one command to the generator and read its result line."""
        assert self.gen is not None and self.gen.stdin is not None
        self.gen.stdin.write(line + "\n")
        self.gen.stdin.flush()
        return read_tagged(self.gen.stdout, "result")


def read_tagged(stream: IO[str] | None, tag: str) -> dict[str, Any]:
    """The JSON after ``tag`` on the next line that starts with it."""
    assert stream is not None
    for _ in range(100):
        line = stream.readline()
        if not line:
            raise RuntimeError("the generator exited")
        if line.startswith(tag + " "):
            data: dict[str, Any] = json.loads(line[len(tag) + 1:])
            if "error" in data:
                raise RuntimeError(f"generator: {data['error']}")
            return data
    raise RuntimeError(f"no {tag!r} line from the generator")


def pinned(cmd: list[str], cpus: str | None) -> list[str]:
    """``cmd`` under ``taskset -c cpus`` when pinning was asked for."""
    return ["taskset", "-c", cpus, *cmd] if cpus else cmd


def start_server(name: str, node_modules: Path | None, n: int, cpus: str | None = None,
                 baseline: Path | None = None) -> Server:
    """Start rtchub, a baseline rtchub (another checkout's ``src``) or PeerJS on a free
    loopback port (pinned to ``cpus`` when given)."""
    port = free_port()
    if name in ("rtchub", "baseline"):
        # rooms of two: N/2 rooms, above the default MAX_ROOMS of 1000
        cmd = [str(ROOT / ".venv" / "bin" / "python"), "-m", "rtchub", "serve",
               "--addr", f"127.0.0.1:{port}", "--stream-addr", "", "--log-level", "warning",
               "--max-rooms", str(n)]
        # every client comes from a few loopback addresses and relays as fast as it can:
        # no per-IP connection limit, no per-connection message rate
        env = dict(os.environ, MAX_CONNS_PER_IP="0", WS_MSG_RATE="0")
        if name == "baseline":
            assert baseline is not None
            env["PYTHONPATH"] = str(baseline / "src")
    elif name == FLOOR:
        cmd, env = [str(OUT / "floor_relay"), str(port)], dict(os.environ)
    else:
        assert node_modules is not None
        cmd = ["node", str(HERE / "peerjs_server.js"), str(port)]
        env = dict(os.environ, NODE_PATH=str(node_modules))
    proc = subprocess.Popen(pinned(cmd, cpus), env=env, stdout=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    wait_listening(port, proc)
    return Server(name, proc, port)


def start_generator(binary: Path, server: Server, n: int, procs: int,
                    cpus: str | None = None) -> None:
    """Connect N clients to ``server``; returns once they are all joined."""
    server.gen = subprocess.Popen(pinned(
        [str(binary), "--port", str(server.port), "--conns", str(n), "--procs", str(procs),
         "--proto", "peerjs" if server.name == "peerjs" else "rtchub",
         "--src-base", str(SRC_BASE[server.name]), "--tag", server.name[0]], cpus),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = read_tagged(server.gen.stdout, "ready")
    if ready["failed"]:
        raise RuntimeError(f"{server.name}: {ready['failed']} of {n} clients failed to join")
    log(f"{server.name}: {ready['conns']} clients joined in {ready['secs']} s")


def stop(server: Server) -> None:
    """Quit the generator and terminate the server (bounded waits)."""
    if server.gen is not None and server.gen.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            assert server.gen.stdin is not None
            server.gen.stdin.write("quit\n")
            server.gen.stdin.close()
        try:
            server.gen.wait(20)
        except subprocess.TimeoutExpired:
            server.gen.kill()
            server.gen.wait(5)
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(20)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(5)


def phase(server: Server, line: str, warmup: float, duration: float) -> dict[str, Any]:
    """Run one generator phase while sampling the server's CPU over the measuring window."""
    assert server.gen is not None and server.gen.stdin is not None
    pid = server.proc.pid
    server.gen.stdin.write(line + "\n")
    server.gen.stdin.flush()
    time.sleep(warmup)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(duration)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    result = read_tagged(server.gen.stdout, "result")
    cpu = cpu1 - cpu0
    result["server_cores"] = cpu / (t1 - t0)
    result["server_us_per_msg"] = cpu / result["recv"] * 1e6 if result["recv"] else 0.0
    result["gen_cores"] = result["gen_cpu_s"] / result["secs"]
    result["gen_us_per_msg"] = (result["gen_cpu_s"] / result["recv"] * 1e6
                                if result["recv"] else 0.0)
    return result


@contextlib.contextmanager
def servers_for(names: list[str], node_modules: Path | None, n: int, binary: Path,
                procs: int, pin: bool = False, baseline: Path | None = None
                ) -> Iterator[list[Server]]:
    """Start every server, take its baseline RSS, connect N idle clients to each."""
    started: list[Server] = []
    try:
        for name in names:
            started.append(start_server(name, node_modules, n, "0" if pin else None,
                                        baseline))
        time.sleep(1.0)
        for s in started:
            s.rss_before = rss_bytes(s.proc.pid)
        for s in started:
            start_generator(binary, s, n, procs, "1" if pin else None)
        time.sleep(3.0)  # let allocators and GCs settle before reading idle RSS
        for s in started:
            rss = rss_bytes(s.proc.pid)
            s.results["rss_per_conn"] = (rss - s.rss_before) / n
            s.results["rss_mb"] = rss / 2**20
            log(f"{s.name}: RSS {rss / 2**20:.1f} MB, "
                f"{s.results['rss_per_conn'] / 1024:.1f} KB per idle connection")
        yield started
    finally:
        for s in started:
            stop(s)


def run_n(args: argparse.Namespace, n: int, binary: Path, node_modules: Path | None
          ) -> list[list[str]]:
    """All measurements for one N; returns table rows."""
    names: list[str] = [*args.servers, *([FLOOR] if args.floor else [])]
    rows: list[list[str]] = []
    with servers_for(names, node_modules, n, binary, args.procs, args.pin,
                     args.baseline) as servers:
        tested = [s for s in servers if s.name != FLOOR]
        rows.append(row(f"{n} conns: RSS per idle conn (KB)", servers,
                        lambda s: s.results["rss_per_conn"] / 1024, "{:.1f}", target=16.0,
                        lower_better=True, only=tested))
        for size in args.size:
            rows += run_size(args, n, size, servers, tested)
    return rows


def run_size(args: argparse.Namespace, n: int, size: int, servers: list[Server],
             tested: list[Server]) -> list[list[str]]:
    """Max rate, then latency at half of PeerJS's max rate, for one message size."""
    maxes: dict[str, dict[str, Any]] = {}
    for rnd in range(args.rounds):
        for s in servers:
            log(f"{n} conns, {size} B: {s.name} max rate (closed loop), "
                f"round {rnd + 1}/{args.rounds}")
            r = phase(s, f"closed {size} {int(args.warmup * 1000)} "
                      f"{int(args.duration * 1000)} 1", args.warmup, args.duration)
            log(f"  {r['rate']:.0f} msgs/s, server {r['server_us_per_msg']:.1f} us/msg "
                f"({r['server_cores']:.2f} cores), generator {r['gen_cores']:.2f} cores, "
                f"errors {r['errors']}")
            if s.name not in maxes or r["rate"] > maxes[s.name]["rate"]:
                maxes[s.name] = r
    base = maxes.get("peerjs") or min((maxes[s.name] for s in tested),
                                      key=lambda r: r["rate"])
    rate = max(base["rate"] / 2, 100.0)
    lats: dict[str, dict[str, Any]] = {}
    for rnd in range(args.rounds):
        for s in servers:
            log(f"{n} conns, {size} B: {s.name} latency at {rate:.0f} msgs/s (open loop), "
                f"round {rnd + 1}/{args.rounds}")
            r = phase(s, f"open {size} {int(args.warmup * 1000)} {int(args.duration * 1000)} "
                      f"{rate:.0f}", args.warmup, args.duration)
            log(f"  p50 {r['p50_us']} us, p99 {r['p99_us']} us, got {r['rate']:.0f} msgs/s, "
                f"errors {r['errors']}")
            # the calmest round counts: a stall of the shared machine hits whichever server
            # happens to be measured, and says nothing about it
            if s.name not in lats or ((r["p99_us"], r["p50_us"])
                                      < (lats[s.name]["p99_us"], lats[s.name]["p50_us"])):
                lats[s.name] = r
    for s in servers:
        s.results["max"], s.results["lat"] = maxes[s.name], lats[s.name]
    floor = next((s.results["lat"]["p50_us"] for s in servers if s.name == FLOOR), FLOOR_US)
    tag = f"{n} conns, {size} B"
    return [
        row(f"{tag}: max relayed msgs/s", servers, lambda s: s.results["max"]["rate"],
            "{:,.0f}", ratio_target=True),
        row(f"{tag}: server CPU per msg (µs)", servers,
            lambda s: s.results["max"]["server_us_per_msg"], "{:.1f}", lower_better=True),
        row(f"{tag}: msgs/s per server core (1e6 / CPU per msg)", servers,
            lambda s: 1e6 / max(s.results["max"]["server_us_per_msg"], 0.001), "{:,.0f}",
            ratio_target=True),
        row(f"{tag}: server load at max (cores)", servers,
            lambda s: s.results["max"]["server_cores"], "{:.2f}"),
        row(f"{tag}: generator load at max (cores)", servers,
            lambda s: s.results["max"]["gen_cores"], "{:.2f}"),
        row(f"{tag}: generator CPU per msg at max (µs)", servers,
            lambda s: s.results["max"]["gen_us_per_msg"], "{:.1f}", lower_better=True),
        row(f"{tag}: p50 latency at {rate:,.0f}/s (µs)", servers,
            lambda s: s.results["lat"]["p50_us"], "{:.0f}", target=floor + 100,
            lower_better=True),
        row(f"{tag}: p99 latency at {rate:,.0f}/s (µs)", servers,
            lambda s: s.results["lat"]["p99_us"], "{:.0f}", lower_better=True,
            ratio_target=True),
        row(f"{tag}: errors (all phases)", servers,
            lambda s: s.results["max"]["errors"] + s.results["lat"]["errors"], "{:.0f}"),
    ]


def row(label: str, servers: list[Server], value: Any, fmt: str, *,
        target: float | None = None, lower_better: bool = False, ratio_target: bool = False,
        only: list[Server] | None = None) -> list[str]:
    """One table row: each server's value, then rtchub/peerjs and a verdict.

    ``target`` is an absolute bound on rtchub's value; ``ratio_target`` asks for rtchub to
    be at least as good as PeerJS (ratio >= 1, or <= 1 when lower is better). Servers not
    in ``only`` show "-".
    """
    shown = only if only is not None else servers
    values = {s.name: float(value(s)) for s in shown}
    cells = [label, *(fmt.format(values[s.name]) if s.name in values else "-"
                      for s in servers)]
    ratio: float | None = None
    if "rtchub" in values and "peerjs" in values and values["peerjs"]:
        ratio = values["rtchub"] / values["peerjs"]
        cells.append(f"{ratio:.2f}")
    else:
        cells.append("-")
    if ratio_target and ratio is not None:
        ok = ratio <= 1.0 if lower_better else ratio >= 1.0
        cells.append(f"{'ok' if ok else 'MISS'} (ratio {'<=' if lower_better else '>='} 1)")
    elif target is not None and "rtchub" in values:
        ok = values["rtchub"] <= target if lower_better else values["rtchub"] >= target
        cells.append(f"{'ok' if ok else 'MISS'} (rtchub {'<=' if lower_better else '>='} "
                     f"{target:g})")
    else:
        cells.append("")
    return cells


def table(names: list[str], rows: list[list[str]]) -> str:
    """Markdown."""
    titles = {FLOOR: "floor (C relay)", "baseline": "rtchub baseline"}
    head = ["measurement", *(titles.get(n, n) for n in names), "ratio rtchub/peerjs",
            "target"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", default="1000,10000", help="client counts, comma-separated")
    p.add_argument("--size", default="200,3000", help="message sizes in bytes")
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured per phase")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    p.add_argument("--servers", default="rtchub,peerjs", help="rtchub,peerjs or one of them")
    p.add_argument("--procs", type=int, default=2, help="generator processes per server")
    p.add_argument("--no-floor", dest="floor", action="store_false",
                   help="skip the C floor relay (latency floor and generator headroom)")
    p.add_argument("--baseline", type=Path, default=None, metavar="DIR",
                   help="also run the rtchub of another checkout (DIR/src) as 'baseline', "
                   "side by side: a before/after comparison in one run")
    p.add_argument("--pin", action="store_true",
                   help="pin each server to CPU 0 and the generator to CPU 1 (taskset)")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds of each phase per server (the best round counts)")
    args = p.parse_args(argv)
    args.n = [int(x) for x in args.n.split(",")]
    args.size = [int(x) for x in args.size.split(",")]
    args.servers = [x for x in args.servers.split(",") if x]
    if args.baseline is not None and "baseline" not in args.servers:
        args.servers.insert(1, "baseline")
    if not set(args.servers) <= {"rtchub", "baseline", "peerjs"} or not args.servers:
        p.error("--servers takes rtchub, baseline (with --baseline DIR), peerjs")
    if "baseline" in args.servers and (args.baseline is None
                                       or not (args.baseline / "src" / "rtchub").is_dir()):
        p.error("--baseline DIR must be a checkout with src/rtchub")
    if any(n < 2 or n % 2 or n > 19_000 * args.procs for n in args.n):
        p.error("--n must be even and at most 19,000 per generator process")
    if not 1 <= args.procs <= 16 or not 0 < args.duration <= 120 or not 0 <= args.warmup <= 30:
        p.error("--procs 1-16, --duration up to 120 s, --warmup up to 30 s")
    if not 1 <= args.rounds <= 5 or any(not 64 <= s <= 60_000 for s in args.size):
        p.error("--rounds 1-5, --size 64-60000")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run everything and print the Markdown table on stdout."""
    args = parse_args(argv)
    if shutil.which("gcc") is None:
        sys.exit("gcc is needed to build the load generator")
    binary = build("wsload")
    if args.floor:
        build("floor_relay")
    node_modules = install_peerjs() if "peerjs" in args.servers else None
    rows: list[list[str]] = []
    for n in args.n:
        rows += run_n(args, n, binary, node_modules)
    print(f"\nnproc {os.cpu_count()}, {args.procs} generator processes per server, "
          f"{args.duration:g} s per phase; the p50 target is the floor relay's p50 + 100 µs "
          f"({FLOOR_US} + 100 without it)\n")
    print(table([*args.servers, *([FLOOR] if args.floor else [])], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
