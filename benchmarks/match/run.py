"""Socket.IO matchmaking benchmark: rtchub against a Node server on the stock ``socket.io`` 4.

Run by hand (never in the test suite); all traffic stays on loopback::

    .venv/bin/python benchmarks/match/run.py --pin --clients 400 --duration 8 --rounds 2

Starts every server once (``rtchub serve`` with its per-event rate limits off; the Node
reference ``node_server.js``, seed 001's events on the stock ``socket.io`` 4.8; with
``--baseline DIR`` also the rtchub of another checkout; with ``--variant NAME:K=V,...``
rtchub again under other settings), all pinned to CPU 0 with ``--pin`` and the generator
(``gen.js``: the stock ``socket.io-client`` 4.8 over WebSocket) to CPU 1. Then, servers
alternating within each round so that all see the same machine:

* **max**: a closed loop, every client requesting a room again as soon as its match ends.
  One complete match is request-room, match-done to both, offer, answer, two ICE
  candidates each way and stop-call (stop-by-remote-user to the partner). Reported:
  matches/s, the server's CPU per match (utime+stime from ``/proc`` over the run divided
  by the matches completed in it) and matches/s per server core (1e6 / CPU per match),
  which does not depend on the share of the shared CPU each server won;
* **latency**: an open loop at half of the Node reference's best max rate, matches started
  evenly (two idle clients request back to back); p50/p99 from each client's
  request-room to its match-done.

The best round counts (highest rate, lowest p99). Every figure comes with the generator's
CPU (cores), the load average (``/proc/loadavg``) during the phase, how long the server
and the generator were runnable but waiting for a CPU (``/proc/PID/task/*/schedstat``)
and the generator's own event-loop delay (``perf_hooks.monitorEventLoopDelay``): a
latency sample is only as good as the generator that takes it, and a phase whose
processes waited for a CPU is worth repeating. ``--json FILE`` keeps every phase's result
with its window on the monotonic clock and the times of its slow samples (to line up with
``probe/sitecustomize.py``'s record of the server's collector passes and loop lag).

Needs ``node`` and ``npm``; installs this folder's ``package.json`` (socket.io 4.8.4,
socket.io-client 4.8.3) into ``node_modules`` here on first use.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
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
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
NODE = "node"
RTCHUB_ENV = {"MATCH_REQUEST_RATE": "0", "MATCH_OFFER_RATE": "0", "MATCH_CANDIDATE_RATE": "0",
              "MATCH_MESSAGE_RATE": "0", "WS_MSG_RATE": "0", "MAX_CONNS_PER_IP": "0",
              "LOG_LEVEL": "warning"}


def log(msg: str) -> None:
    """Progress on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> str:
    """The 1-minute load average."""
    return Path("/proc/loadavg").read_text().split()[0]


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def run_delay(pid: int) -> float:
    """Seconds ``pid``'s threads waited on a run queue (runnable, not running), all threads."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid``."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def install() -> None:
    """``npm ci`` (or install) this folder's package.json, once."""
    if (HERE / "node_modules" / "socket.io").exists():
        return
    log("installing socket.io and socket.io-client with npm")
    cmd = "ci" if (HERE / "package-lock.json").exists() else "install"
    subprocess.run(["npm", cmd, "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=300)


def pinned(cmd: list[str], cpus: str | None) -> list[str]:
    """``cmd`` under ``taskset -c cpus`` when pinning was asked for."""
    return ["taskset", "-c", cpus, *cmd] if cpus else cmd


@dataclass
class Server:
    """One server under test."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until ``port`` accepts connections (or the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


def start(name: str, env_extra: dict[str, str], src: Path | None, cpus: str | None) -> Server:
    """Start rtchub (``src``: the checkout whose src/ to run) or the Node reference."""
    port = free_port()
    if name == "node":
        cmd = [NODE, str(HERE / "node_server.js"), str(port)]
        env = dict(os.environ)
    else:
        cmd = [sys.executable, "-m", "rtchub", "serve", "--addr", f"127.0.0.1:{port}",
               "--stream-addr", ""]
        env = dict(os.environ, **RTCHUB_ENV, **env_extra)
        if src is not None:
            env["PYTHONPATH"] = str(src / "src")
    proc = subprocess.Popen(pinned(cmd, cpus), env=env, stdout=subprocess.DEVNULL,
                            cwd=HERE if name == "node" else ROOT)
    wait_port(port, proc)
    return Server(name, proc, port)


def run_phase(server: Server, clients: int, mode: str, rate: float, duration: float,
              procs: int, cpus: str | None, seed: int) -> dict[str, Any]:
    """One generator run against ``server``; returns the merged result with server CPU."""
    url = f"http://127.0.0.1:{server.port}"
    gens: list[subprocess.Popen[str]] = []
    for p in range(procs):
        n = clients // procs
        gens.append(subprocess.Popen(
            pinned([NODE, str(HERE / "gen.js"), url, str(n), mode, str(rate / procs),
                    str(duration), str(seed + p)], cpus),
            cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    try:
        for g in gens:
            assert g.stdout is not None
            line = g.stdout.readline()
            if not line.startswith('{"ready"'):
                raise RuntimeError(f"generator did not connect: {line!r}")
        rss = rss_bytes(server.proc.pid)
        load0 = loadavg()
        cpu0 = cpu_seconds(server.proc.pid)
        wait0 = run_delay(server.proc.pid)
        gen_wait0 = sum(run_delay(g.pid) for g in gens)
        t0 = time.monotonic()
        for g in gens:
            stdin: IO[str] | None = g.stdin
            assert stdin is not None
            stdin.write("go\n")
            stdin.flush()
        outs = []
        for g in gens:
            assert g.stdout is not None
            outs.append(json.loads(g.stdout.readline()))
        cpu = cpu_seconds(server.proc.pid) - cpu0
        wait = run_delay(server.proc.pid) - wait0
        gen_wait = sum(run_delay(g.pid) for g in gens) - gen_wait0
        t1 = time.monotonic()
    finally:
        for g in gens:
            try:
                g.wait(30)
            except subprocess.TimeoutExpired:
                g.kill()
                g.wait()
    total = sum(o["total_matches"] for o in outs)
    wall = max(o["wall"] for o in outs)
    matches = sum(o["matches"] for o in outs)
    return {
        "matches_s": matches / wall, "cpu_us": cpu / total * 1e6 if total else float("nan"),
        "server_cores": cpu / wall, "gen_cores": sum(o["gen_cpu_s"] for o in outs) / wall,
        "gen_us": sum(o["gen_cpu_s"] for o in outs) / max(matches, 1) * 1e6,
        "p50_ms": max(o["p50_ms"] or 0 for o in outs),
        "p99_ms": max(o["p99_ms"] or 0 for o in outs),
        "max_ms": max(o["max_ms"] or 0 for o in outs),
        "gen_loop_p99_ms": max(o["loop_p99_ms"] for o in outs),
        "gen_loop_max_ms": max(o["loop_max_ms"] for o in outs),
        "errors": sum(o["errors"] for o in outs), "shortfall": sum(o["shortfall"] for o in outs),
        "stuck": sum(o["stuck"] for o in outs), "rss_mb": rss / 2**20,
        "load": f"{load0}-{loadavg()}",
        # time runnable but not running (another process had the core), and the window
        "server_wait_ms": wait * 1e3, "gen_wait_ms": gen_wait * 1e3,
        "window": (round(t0, 3), round(t1, 3)),
        "slow": [x for o in outs for x in o.get("slow", [])],
    }


@contextlib.contextmanager
def servers(names: list[str], variants: dict[str, dict[str, str]], baseline: Path | None,
            cpus: str | None) -> Iterator[list[Server]]:
    """Start every server; stop them all at the end."""
    started: list[Server] = []
    try:
        for name in names:
            src = baseline if name == "baseline" else None
            started.append(start(name, variants.get(name, {}), src, cpus))
            log(f"{name} on port {started[-1].port} (pid {started[-1].proc.pid})")
        yield started
    finally:
        for s in started:
            s.proc.terminate()
        for s in started:
            try:
                s.proc.wait(20)
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait()


def brief(result: dict[str, Any]) -> dict[str, Any]:
    """A phase's result for the progress log (the slow samples counted, not listed)."""
    return {k: (len(v) if k == "slow" else v) for k, v in result.items()}


def fmt(value: float, digits: int = 0) -> str:
    """A number with thousands separators."""
    return f"{value:,.{digits}f}"


def table(ss: list[Server], rate: float) -> str:
    """The Markdown table of the best rounds."""
    def best(s: Server, phase: str, key: str, low: bool) -> dict[str, Any]:
        rows = s.results.get(phase, [])
        return (min if low else max)(rows, key=lambda r: r[key])

    ref = next((s for s in ss if s.name == "node"), ss[-1])
    out = ["| measurement | " + " | ".join(s.name for s in ss) + " | ratio "
           + f"{ss[0].name}/{ref.name} |", "|---" * (len(ss) + 2) + "|"]

    def row(label: str, values: list[str], ratio: str) -> None:
        out.append(f"| {label} | " + " | ".join(values) + f" | {ratio} |")

    mx = [best(s, "max", "matches_s", False) for s in ss]
    r0, rr = mx[0], mx[ss.index(ref)]
    row("max matches/s", [fmt(m["matches_s"]) for m in mx],
        f"{r0['matches_s'] / rr['matches_s']:.2f}")
    cpu = [min(r["cpu_us"] for r in s.results["max"]) for s in ss]
    row("server CPU per match (µs, best round)", [fmt(c) for c in cpu],
        f"{cpu[0] / cpu[ss.index(ref)]:.2f}")
    row("matches/s per server core (1e6 / CPU per match)", [fmt(1e6 / c) for c in cpu],
        f"{cpu[ss.index(ref)] / cpu[0]:.2f}")
    row("server load at max (cores)", [f"{m['server_cores']:.2f}" for m in mx], "")
    row("generator load at max (cores)", [f"{m['gen_cores']:.2f}" for m in mx], "")
    row("generator CPU per match at max (µs)", [fmt(m["gen_us"]) for m in mx], "")
    row("server RSS with the clients connected (MiB)", [f"{m['rss_mb']:.1f}" for m in mx], "")
    row("run-queue wait at max, server / generator (s)",
        [f"{m['server_wait_ms'] / 1e3:.2f} / {m['gen_wait_ms'] / 1e3:.2f}" for m in mx], "")
    row("load average during max (1 min)", [m["load"] for m in mx], "")
    if all(s.results.get("rate") for s in ss):
        lat = [best(s, "rate", "p99_ms", True) for s in ss]
        row(f"p50 request-room -> match-done at {fmt(rate)}/s (ms)",
            [f"{r['p50_ms']:.2f}" for r in lat],
            f"{lat[0]['p50_ms'] / max(lat[ss.index(ref)]['p50_ms'], 1e-9):.2f}")
        row(f"p99 request-room -> match-done at {fmt(rate)}/s (ms)",
            [f"{r['p99_ms']:.2f}" for r in lat],
            f"{lat[0]['p99_ms'] / max(lat[ss.index(ref)]['p99_ms'], 1e-9):.2f}")
        row("matches/s achieved in the latency phase", [fmt(r["matches_s"]) for r in lat], "")
        row("server load in the latency phase (cores)",
            [f"{r['server_cores']:.2f}" for r in lat], "")
        row("generator load in the latency phase (cores)",
            [f"{r['gen_cores']:.2f}" for r in lat], "")
        row("generator's own loop delay in the latency phase, p99 / max (ms)",
            [f"{r['gen_loop_p99_ms']:.1f} / {r['gen_loop_max_ms']:.1f}" for r in lat], "")
        row("run-queue wait in the latency phase, server / generator (s)",
            [f"{r['server_wait_ms'] / 1e3:.2f} / {r['gen_wait_ms'] / 1e3:.2f}" for r in lat], "")
        row("load average during latency (1 min)", [r["load"] for r in lat], "")
    errs = [sum(r["errors"] + r["shortfall"] for p in s.results.values() for r in p)
            for s in ss]
    row("errors + unstarted matches (all phases)", [str(e) for e in errs], "")
    return "\n".join(out)


def main() -> int:
    """Parse flags, run the phases, print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", default="rtchub,node",
                   help="comma-separated: rtchub, baseline, node, and --variant names")
    p.add_argument("--clients", type=int, default=400, help="Socket.IO clients (even)")
    p.add_argument("--duration", type=float, default=8.0, help="seconds per phase")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--gen-procs", type=int, default=1, help="generator processes")
    p.add_argument("--rate", type=float, default=0.0,
                   help="latency phase rate (matches/s); default half Node's best max rate")
    p.add_argument("--no-latency", action="store_true", help="skip the latency phase")
    p.add_argument("--pin", action="store_true",
                   help="pin the servers to CPU 0 and the generator to CPU 1 (taskset)")
    p.add_argument("--baseline", type=Path, default=None, metavar="DIR",
                   help="also run the rtchub of another checkout (DIR/src) as 'baseline'")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="also write every phase's result (with the slow samples) to FILE")
    p.add_argument("--variant", action="append", default=[], metavar="NAME:K=V,K=V",
                   help="also run rtchub as NAME with these extra environment variables")
    args = p.parse_args()
    names = args.servers.split(",")
    variants: dict[str, dict[str, str]] = {}
    for spec in args.variant:
        vname, _, kvs = spec.partition(":")
        variants[vname] = dict(kv.split("=", 1) for kv in kvs.split(",") if kv)
        if vname not in names:
            names.insert(1, vname)
    if args.baseline is not None and "baseline" not in names:
        names.insert(1, "baseline")
    if args.baseline is not None and not (args.baseline / "src" / "rtchub").is_dir():
        p.error("--baseline DIR must be a checkout with src/rtchub")
    if args.clients % (2 * args.gen_procs):
        p.error("--clients must be a multiple of 2 x --gen-procs")
    install()
    server_cpus, gen_cpus = ("0", "1") if args.pin else (None, None)
    log(f"load average {loadavg()}; servers {names}")
    with servers(names, variants, args.baseline, server_cpus) as ss:
        for rnd in range(args.rounds):
            for s in ss:
                r = run_phase(s, args.clients, "max", 0, args.duration, args.gen_procs,
                              gen_cpus, 1 + rnd * 100)
                s.results.setdefault("max", []).append(r)
                log(f"round {rnd + 1} max {s.name}: {brief(r)}")
        node = next((s for s in ss if s.name == "node"), None)
        rate = args.rate or max(r["matches_s"] for r in (node or ss[0]).results["max"]) / 2
        if not args.no_latency:
            for rnd in range(args.rounds):
                for s in ss:
                    r = run_phase(s, args.clients, "rate", rate, args.duration,
                                  args.gen_procs, gen_cpus, 7 + rnd * 100)
                    s.results.setdefault("rate", []).append(r)
                    log(f"round {rnd + 1} rate {s.name}: {brief(r)}")
        print(f"\n{args.clients} clients, {args.duration:g} s per phase, {args.rounds} rounds, "
              f"pinned: {args.pin}, load average at the end {loadavg()}\n")
        print(table(ss, rate))
        if args.json is not None:
            args.json.write_text(json.dumps({s.name: s.results for s in ss}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
