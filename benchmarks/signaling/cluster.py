"""Signaling across several rtchub nodes on one Redis, against the same load on one node.

Run by hand (never in the test suite), from the repository root; all traffic stays on
loopback::

    .venv/bin/python -m benchmarks.signaling.cluster --n 50000 --nodes 3 --pin

It starts a redis-server and ``--nodes`` rtchub nodes sharing it (``REDIS_URL``), connects
N clients with the C generator (``wsload.c``) spread over the nodes, joined in rooms of two:
with ``--mix half`` (the default) even rooms have both members on one node and odd rooms
one member on each of two nodes. It measures:

* relayed messages/s, closed loop (one message in flight per room), with every node's and
  Redis's CPU;
* relay latency p50/p99 at a fixed open-loop rate (``--rate``, default half the closed-loop
  rate), for same-node and cross-node pairs apart;
* Redis's memory (``used_memory``) and CPU, and the backplane's messages per second;
* then the same phases against one node without Redis, with as many clients as one
  process can hold (``--single-n``, at most 18,000: the fd limit here is 20,000 per
  process), for comparison.

``--pin`` puts every server process (the nodes and Redis) on CPU 0 and the generator on
CPU 1, as run.py does, so the ratios measure the servers, not the scheduler.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import redis

from benchmarks.signaling.run import (
    ROOT,
    build,
    cpu_seconds,
    free_port,
    log,
    pinned,
    read_tagged,
    rss_bytes,
    wait_listening,
)

PYTHON = str(ROOT / ".venv" / "bin" / "python")
MAX_PER_PROCESS = 18_000


@dataclass
class Setup:
    """The processes of one configuration."""

    name: str
    servers: list[subprocess.Popen[bytes]]
    ports: list[int]
    redis_pid: int | None = None
    redis_port: int | None = None
    gen: subprocess.Popen[str] | None = None
    results: dict[str, Any] = field(default_factory=dict)


def start_redis(cpus: str | None) -> tuple[subprocess.Popen[bytes], int]:
    """A redis-server without persistence on a free port."""
    port = free_port()
    proc = subprocess.Popen(pinned(["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                                    "--save", "", "--appendonly", "no"], cpus),
                            stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    wait_listening(port, proc)
    return proc, port


def start_node(n: int, cpus: str | None, redis_port: int | None) -> tuple[
        subprocess.Popen[bytes], int]:
    """One rtchub node (in the cluster when ``redis_port`` is given)."""
    port = free_port()
    env = dict(os.environ)
    if redis_port is not None:
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    cmd = [PYTHON, "-m", "rtchub", "serve", "--addr", f"127.0.0.1:{port}", "--stream-addr", "",
           "--log-level", "warning", "--max-rooms", str(n),
           "--max-conns-per-ip", "0"]   # every generated client comes from 127.0.0.1
    proc = subprocess.Popen(pinned(cmd, cpus), env=env, stdout=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    wait_listening(port, proc, 60.0)
    return proc, port


@contextlib.contextmanager
def setup(name: str, n: int, nodes: int, with_redis: bool, pin: bool, mix: str
          ) -> Iterator[Setup]:
    """Start Redis (maybe), the nodes and the generator with N joined clients."""
    cpus = "0" if pin else None
    procs: list[subprocess.Popen[bytes]] = []
    made = Setup(name, [], [])
    try:
        if with_redis:
            proc, made.redis_port = start_redis(cpus)
            made.redis_pid = proc.pid
            procs.append(proc)
        for _ in range(nodes):
            proc, port = start_node(n, cpus, made.redis_port)
            procs.append(proc)
            made.servers.append(proc)
            made.ports.append(port)
        gen_procs = max(2, -(-n // MAX_PER_PROCESS))
        made.gen = subprocess.Popen(pinned(
            [str(build("wsload")), "--port", ",".join(map(str, made.ports)), "--mix", mix,
             "--conns", str(n), "--procs", str(gen_procs), "--src-base", "2", "--tag", "c"],
            "1" if pin else None), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = read_tagged(made.gen.stdout, "ready")
        if ready["failed"]:
            raise RuntimeError(f"{name}: {ready['failed']} of {n} clients failed to join")
        log(f"{name}: {ready['conns']} clients joined in {ready['secs']} s "
            f"({gen_procs} generator processes)")
        time.sleep(2.0)
        made.results["rss_mb"] = sum(rss_bytes(p.pid) for p in made.servers) / 2**20
        if made.redis_port is not None:
            info = redis.Redis(port=made.redis_port).info("memory")
            made.results["redis_mb"] = float(info["used_memory"]) / 2**20
        yield made
    finally:
        if made.gen is not None and made.gen.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert made.gen.stdin is not None
                made.gen.stdin.write("quit\n")
                made.gen.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                made.gen.wait(20)
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def phase(made: Setup, line: str, warmup: float, duration: float) -> dict[str, Any]:
    """One generator phase, with the nodes' and Redis's CPU over the measuring window."""
    assert made.gen is not None and made.gen.stdin is not None
    pids = [p.pid for p in made.servers]
    made.gen.stdin.write(line + "\n")
    made.gen.stdin.flush()
    time.sleep(warmup)
    node0 = [cpu_seconds(pid) for pid in pids]
    redis0 = cpu_seconds(made.redis_pid) if made.redis_pid else 0.0
    t0 = time.monotonic()
    time.sleep(duration)
    node1 = [cpu_seconds(pid) for pid in pids]
    redis1 = cpu_seconds(made.redis_pid) if made.redis_pid else 0.0
    secs = time.monotonic() - t0
    result = read_tagged(made.gen.stdout, "result")
    result["node_cores"] = [(b - a) / secs for a, b in zip(node0, node1, strict=True)]
    result["redis_cores"] = (redis1 - redis0) / secs
    recv = max(result["recv"], 1)
    result["node_us_per_msg"] = sum(b - a for a, b in zip(node0, node1, strict=True)) \
        / recv * 1e6
    result["redis_us_per_msg"] = (redis1 - redis0) / recv * 1e6
    result["gen_cores"] = result["gen_cpu_s"] / result["secs"]
    return result


def measure(made: Setup, args: argparse.Namespace) -> None:
    """Closed loop for the rate, then open loop for the latency."""
    warm, dur = int(args.warmup * 1000), int(args.duration * 1000)
    best: dict[str, Any] | None = None
    for rnd in range(args.rounds):
        r = phase(made, f"closed {args.size} {warm} {dur} 1", args.warmup, args.duration)
        log(f"{made.name}: closed loop round {rnd + 1}: {r['rate']:,.0f} msgs/s, nodes "
            f"{sum(r['node_cores']):.2f} cores, redis {r['redis_cores']:.2f} cores, "
            f"generator {r['gen_cores']:.2f} cores, errors {r['errors']}")
        if best is None or r["rate"] > best["rate"]:
            best = r
    assert best is not None
    made.results["max"] = best
    rate = args.rate or max(best["rate"] / 2, 100.0)
    lat: dict[str, Any] | None = None
    for rnd in range(args.rounds):
        r = phase(made, f"open {args.size} {warm} {dur} {rate:.0f}", args.warmup,
                  args.duration)
        log(f"{made.name}: open loop at {rate:,.0f}/s round {rnd + 1}: same-node p50/p99 "
            f"{r['same_p50_us']}/{r['same_p99_us']} us, cross-node "
            f"{r['cross_p50_us']}/{r['cross_p99_us']} us, errors {r['errors']}")
        if lat is None or r["p99_us"] < lat["p99_us"]:
            lat = r
    assert lat is not None
    made.results["lat"], made.results["rate"] = lat, rate


def table(rows: list[tuple[str, Setup]]) -> str:
    """Markdown."""
    lines = ["| measurement | " + " | ".join(name for name, _ in rows) + " |",
             "|---|" + "---|" * len(rows)]

    def line(label: str, fmt: str, get: Any) -> None:
        cells = []
        for _, made in rows:
            try:
                value = get(made.results)
            except (KeyError, TypeError):
                cells.append("-")
                continue
            cells.append("-" if value is None or value == -1 else fmt.format(value))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    line("clients", "{:,}", lambda r: r["n"])
    line("max relayed msgs/s (closed loop)", "{:,.0f}", lambda r: r["max"]["rate"])
    line("nodes' CPU per msg (µs, all nodes)", "{:.1f}", lambda r: r["max"]["node_us_per_msg"])
    line("nodes' load at max (cores, summed)", "{:.2f}", lambda r: sum(r["max"]["node_cores"]))
    line("Redis CPU per msg (µs)", "{:.2f}",
         lambda r: r["max"]["redis_us_per_msg"] if r.get("redis_mb") is not None else None)
    line("Redis load at max (cores)", "{:.2f}",
         lambda r: r["max"]["redis_cores"] if r.get("redis_mb") is not None else None)
    line("generator load at max (cores)", "{:.2f}", lambda r: r["max"]["gen_cores"])
    line("open-loop rate for latency (msgs/s)", "{:,.0f}", lambda r: r["rate"])
    line("same-node pairs: p50 / p99 (µs)", "{}",
         lambda r: f"{r['lat']['same_p50_us']} / {r['lat']['same_p99_us']}")
    line("cross-node pairs: p50 / p99 (µs)", "{}",
         lambda r: None if r["lat"]["recv_cross"] == 0
         else f"{r['lat']['cross_p50_us']} / {r['lat']['cross_p99_us']}")
    line("Redis load at that rate (cores)", "{:.2f}",
         lambda r: r["lat"]["redis_cores"] if r.get("redis_mb") is not None else None)
    line("Redis used_memory with N joined (MB)", "{:.1f}", lambda r: r.get("redis_mb"))
    line("nodes' RSS with N joined (MB, summed)", "{:.0f}", lambda r: r["rss_mb"])
    line("errors (all phases)", "{:.0f}",
         lambda r: r["max"]["errors"] + r["lat"]["errors"])
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="clients over the cluster (even)")
    p.add_argument("--nodes", type=int, default=3, help="rtchub nodes sharing one Redis")
    p.add_argument("--mix", default="half", choices=("same", "cross", "half"),
                   help="rooms with both members on one node, on two, or half and half")
    p.add_argument("--single-n", type=int, default=None,
                   help="clients of the one-node comparison (default: min(N, 18000)); "
                   "0 skips it")
    p.add_argument("--size", type=int, default=200, help="message size in bytes")
    p.add_argument("--rate", type=float, default=0.0,
                   help="open-loop msgs/s for the latency (default: half the closed-loop max)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured per phase")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    p.add_argument("--rounds", type=int, default=1, help="rounds of each phase (best counts)")
    p.add_argument("--pin", action="store_true",
                   help="servers (nodes and Redis) on CPU 0, the generator on CPU 1")
    args = p.parse_args(argv)
    if args.n < 4 or args.n % 2 or args.n > MAX_PER_PROCESS * args.nodes:
        p.error(f"--n must be even and at most {MAX_PER_PROCESS:,} per node")
    if args.single_n is None:
        args.single_n = min(args.n, MAX_PER_PROCESS)
    if args.single_n % 2 or args.single_n > MAX_PER_PROCESS:
        p.error("--single-n must be even and at most 18,000")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the cluster, then the single node, and print the table."""
    args = parse_args(argv)
    build("wsload")
    rows: list[tuple[str, Setup]] = []
    with setup(f"{args.nodes} nodes + Redis", args.n, args.nodes, True, args.pin,
               args.mix) as made:
        made.results["n"] = args.n
        measure(made, args)
        rows.append((made.name, made))
    if args.single_n:
        with setup("1 node, no Redis", args.single_n, 1, False, args.pin, "same") as made:
            made.results["n"] = args.single_n
            measure(made, args)
            rows.append((made.name, made))
    load = loadavg()
    print(f"\nnproc {os.cpu_count()}, load average at the end {load}, {args.size} B "
          f"messages, {args.duration:g} s per phase, mix {args.mix}"
          f"{', pinned' if args.pin else ''}\n")
    print(table(rows))
    return 0


def loadavg() -> str:
    """The 1/5/15-minute load averages."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


if __name__ == "__main__":
    sys.exit(main())
