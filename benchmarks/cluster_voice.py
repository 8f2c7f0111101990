"""What a voice stream costs when it is heard on another node (RTP relayed through Redis).

Run by hand (never in the test suite), from the repository root, inside a network
namespace with only loopback (aiortc peers)::

    unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh \\
        .venv/bin/python -m benchmarks.cluster_voice --receivers 4 --duration 10

It starts a redis-server and two nodes A and B, sends a tone to A with an aiortc sender,
and measures over ``--duration`` seconds, in two phases: ``--receivers`` aiortc receivers
on A (no relay), then the same receivers on B (every packet crosses A -> Redis -> B once,
whatever the number of receivers on B). It prints each process's CPU (cores), the packets
relayed, and the CPU each relayed packet costs A, B and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from tests.cluster.nodes import Cluster, Node, cluster
from tests.voice.voiceclients import Receiver, start_receiver, start_sender

from benchmarks.signaling.run import cpu_seconds


async def relayed(node: Node) -> tuple[float, float]:
    """(packets relayed in, out) from the node's /metrics."""
    async with aiohttp.ClientSession() as http, http.get(f"{node.url}/metrics") as resp:
        text = await resp.text()
    values = {"in": 0.0, "out": 0.0}
    for line in text.splitlines():
        if line.startswith("rtchub_voice_relayed_packets_total{"):
            direction = line.split('direction="', 1)[1].split('"', 1)[0]
            values[direction] = float(line.rsplit(" ", 1)[1])
    return values["in"], values["out"]


async def window(group: Cluster, seconds: float) -> dict[str, float]:
    """CPU (cores) of A, B and Redis and packets relayed to B over ``seconds``."""
    a, b = group.nodes
    pids = {"A": a.proc.pid if a.proc else 0, "B": b.proc.pid if b.proc else 0,
            "Redis": group.redis.proc.pid if group.redis.proc else 0}
    cpu0 = {k: cpu_seconds(pid) for k, pid in pids.items()}
    in0, _ = await relayed(b)
    t0 = time.monotonic()
    await asyncio.sleep(seconds)      # a by-hand benchmark: the window is wall time
    secs = time.monotonic() - t0
    cpu1 = {k: cpu_seconds(pid) for k, pid in pids.items()}
    in1, _ = await relayed(b)
    out = {k: (cpu1[k] - cpu0[k]) / secs for k in pids}
    out["packets/s"] = (in1 - in0) / secs
    return out


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with cluster(Path(tmp)) as group:   # info logs: "rtchub ready"
            a, b = await group.add_many("A", "B")
            sender = await start_sender(a.ws_url, 440.0)
            rows = []
            for where in (a, b):
                receivers: list[Receiver] = [
                    await start_receiver(where.ws_url, sender.stream_id)
                    for _ in range(args.receivers)]
                await asyncio.sleep(1.0)   # let the peers settle before measuring
                rows.append((f"{args.receivers} receivers on {where.name}",
                             await window(group, args.duration)))
                for receiver in receivers:
                    await receiver.close()
            await sender.close()
    print("\n| phase | A cores | B cores | Redis cores | packets/s relayed to B |")
    print("|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['A']:.3f} | {r['B']:.3f} | {r['Redis']:.3f} | "
              f"{r['packets/s']:.0f} |")
    local, remote = rows[0][1], rows[1][1]
    pps = max(remote["packets/s"], 1.0)
    print(f"\nper relayed packet: A +{(remote['A'] - local['A']) / pps * 1e6:.0f} µs, "
          f"B {(remote['B'] - local['B']) / pps * 1e6:+.0f} µs (B now does the fan-out A "
          f"did), Redis {remote['Redis'] / pps * 1e6:.0f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receivers", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    asyncio.run(main(parser.parse_args()))
    sys.exit(0)
