"""Minting cost as the code space fills: O(1) here, against another checkout side by side.

Run by hand; all traffic stays on loopback::

    .venv/bin/python benchmarks/mint_latency.py --codes 9000 --baseline /work/main

Starts this checkout's rtchub (and, with ``--baseline DIR``, DIR's ``src`` the same way)
with the per-IP mint limits off and 4-digit codes, mints ``--codes`` codes one after the
other from one client, and prints per server the latency of the first and the last 500
mints (p50 and p99) and the server's CPU per mint over each (/proc, 10 ms ticks). Before
this change every mint copied the whole code table (issue 15: 45 -> 515 ms per mint as
10,000 codes filled it, under concurrent minting).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.signaling.run import cpu_seconds, free_port, wait_listening  # noqa: E402


def run(name: str, src: Path, codes: int, pin: str | None) -> str:
    """Mint ``codes`` codes on a fresh server from ``src``; one table row."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(src), PAIR_MINTS_PER_MIN="0", PAIR_MAX_PER_IP="0",
               PAIR_CODE_DIGITS="4", LOG_LEVEL="warning", HTTP_RATE_PER_MIN="0")
    cmd = [sys.executable, "-m", "rtchub", "serve", "--addr", f"127.0.0.1:{port}",
           "--stream-addr", ""]
    server = subprocess.Popen((["taskset", "-c", pin] if pin else []) + cmd, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, server)
        url = f"http://127.0.0.1:{port}/rendezvous/code"
        took: list[float] = []
        marks: dict[int, float] = {}
        for n in range(codes):
            if n in (0, 500, codes - 500):
                marks[n] = cpu_seconds(server.pid)
            started = time.perf_counter()
            with urllib.request.urlopen(urllib.request.Request(url, method="POST"),
                                        timeout=60) as resp:
                resp.read()
            took.append((time.perf_counter() - started) * 1000)
        marks[codes] = cpu_seconds(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    first, last = sorted(took[:500]), sorted(took[-500:])
    cpu_first = (marks[500] - marks[0]) / 500 * 1e6
    cpu_last = (marks[codes] - marks[codes - 500]) / 500 * 1e6
    return (f"| {name} | {statistics.median(first):.2f} / {first[494]:.2f} | "
            f"{statistics.median(last):.2f} / {last[494]:.2f} | "
            f"{cpu_first:.0f} / {cpu_last:.0f} |")


def main() -> None:
    """Parse the arguments, run each server, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=9000)
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--pin", action="store_true", help="servers on CPU 0, client on 1")
    args = parser.parse_args()
    if args.pin:
        os.sched_setaffinity(0, {1})
    pin = "0" if args.pin else None
    rows = [run("this checkout", ROOT / "src", args.codes, pin)]
    if args.baseline is not None:
        rows.append(run(f"baseline ({args.baseline})", args.baseline / "src", args.codes, pin))
    print(f"\n{args.codes} mints, one client, one at a time; load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print("| server | first 500 mints p50 / p99 (ms) | last 500 mints p50 / p99 (ms) | "
          "server CPU per mint, first / last 500 (µs) |")
    print("| --- | ---: | ---: | ---: |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
