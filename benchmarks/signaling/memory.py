"""Where the bytes of an idle rooms connection go: tracemalloc, GC objects and RSS.

Runs rtchub in this process (uvloop, the config ``rtchub serve`` would load from the
environment, ``MAX_CONNS_PER_IP=0``), connects ``--n`` clients with the C generator
(``wsload``, rooms of two, joined and idle), then reports per connection: RSS, the Python
heap tracemalloc sees (by allocating line), and the GC-tracked objects by type, with
``sys.getsizeof`` of each per-connection object of one sample connection. RSS minus the
traced heap is what C code holds outside Python's allocator (uvloop's transport and
read buffer, picows' buffers, malloc's own overhead).

    .venv/bin/python benchmarks/signaling/memory.py --n 10000

Run by hand; it is not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.signaling.run import build  # noqa: E402
from rtchub.app import build_server  # noqa: E402
from rtchub.config import load  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """This process's resident set size."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE


def type_counts() -> collections.Counter[str]:
    """GC-tracked objects by type name."""
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


def sizes(obj: Any, seen: set[int], depth: int = 0) -> list[tuple[str, int]]:
    """``sys.getsizeof`` of ``obj`` and of the per-connection objects it holds (slots and
    ``__dict__``), not following shared objects (types, modules, the hub)."""
    if id(obj) in seen or depth > 3:
        return []
    seen.add(id(obj))
    out = [(f"{'  ' * depth}{type(obj).__qualname__}", sys.getsizeof(obj))]
    children: list[Any] = []
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if hasattr(obj, slot):
                children.append(getattr(obj, slot))
    children.extend(getattr(obj, "__dict__", {}).values())
    for child in children:
        if isinstance(child, (int, float, bool, str, bytes, type(None))):
            continue
        if type(child).__module__.startswith(("rtchub.net", "rtchub.features", "picows",
                                              "collections", "builtins", "functools")):
            if type(child).__name__ in ("function", "method", "builtin_function_or_method",
                                        "Hub", "Stats", "ConnLimits", "Gateway"):
                continue
            out += sizes(child, seen, depth + 1)
    return out


def explain(n: int) -> None:
    """Who holds the per-connection objects without an obvious owner."""
    objs = gc.get_objects()
    methods = collections.Counter(
        f"{type(o.__self__).__qualname__}.{o.__func__.__name__}" for o in objs
        if type(o).__name__ == "method")
    print("\nbound methods per connection (>= 0.5):")
    for name, count in methods.most_common():
        if count / n >= 0.5:
            print(f"  {count / n:5.2f}  {name}")
    for kind in ("HeadSniffer", "Future", "WSUpgradeRequest", "CIMultiDict", "tuple"):
        sample = next((o for o in objs if type(o).__name__ == kind
                       and any(type(r).__name__ in ("WSProtocol", "HeadSniffer", "method",
                                                    "Future", "FastListener", "WSTransport",
                                                    "TCPTransport", "SendBuffer", "Session")
                               for r in gc.get_referrers(o))), None)
        if sample is None:
            continue
        holders = [type(r).__qualname__ for r in gc.get_referrers(sample) if r is not objs]
        print(f"  one {kind} ({sys.getsizeof(sample)} B) is held by: {holders[:6]}")


async def main(n: int, procs: int, frames: int) -> None:
    """Start the server, connect ``n`` idle clients, report."""
    env = dict(os.environ, MAX_CONNS_PER_IP="0", WS_MSG_RATE="0", LOG_LEVEL="warning",
               ADDR="127.0.0.1:0", STREAM_ADDR="", MAX_ROOMS=str(n))
    config = load(env)
    server = build_server(config)
    await server.start()
    port = server.port()
    binary = build("wsload")
    gc.collect()
    tracemalloc.start(frames)
    before_heap = tracemalloc.take_snapshot()
    before_types = type_counts()
    before_rss = rss()
    gen = await asyncio.create_subprocess_exec(
        str(binary), "--port", str(port), "--conns", str(n), "--procs", str(procs),
        "--proto", "rtchub", "--src-base", "2", "--tag", "m",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert gen.stdout is not None and gen.stdin is not None
    while True:
        line = (await gen.stdout.readline()).decode()
        if not line:
            raise RuntimeError("generator ended before it was ready")
        if line.startswith("ready"):
            break
    await asyncio.sleep(3.0)    # (a benchmark, not a test) let the joins settle
    gc.collect()
    after_rss = rss()
    after_heap = tracemalloc.take_snapshot()
    after_types = type_counts()
    traced = sum(s.size_diff for s in after_heap.compare_to(before_heap, "filename"))
    print(f"{n} idle connections: RSS {(after_rss - before_rss) / n:,.0f} B per connection, "
          f"traced Python heap {traced / n:,.0f} B, untraced (C allocations, allocator "
          f"overhead, tracemalloc's own) {(after_rss - before_rss - traced) / n:,.0f} B")
    print("\nPython heap per connection by allocating line (top 25):")
    for stat in after_heap.compare_to(before_heap, "lineno")[:25]:
        frame = stat.traceback[0]
        print(f"  {stat.size_diff / n:8,.0f} B  {stat.count_diff / n:5.1f} blocks  "
              f"{frame.filename.split('site-packages/')[-1].split('src/')[-1]}:{frame.lineno}")
    print("\nGC-tracked objects per connection by type (>= 0.5):")
    diff = after_types - before_types
    for name, count in diff.most_common():
        if count / n >= 0.5:
            print(f"  {count / n:5.2f}  {name}")
    conns = server.gateway.connections
    if conns:
        conn = next(iter(conns.values()))
        print("\nsys.getsizeof of one connection's objects (shallow, in bytes):")
        seen: set[int] = set()
        roots = [conn, *(r for r in gc.get_referrers(conn)
                         if type(r).__name__ in ("FastListener", "Session"))]
        transport = getattr(conn, "_transport", None)
        if transport is not None:
            roots += [transport, transport.underlying_transport]
        for root in roots:
            for name, size in sizes(root, seen):
                print(f"  {size:6}  {name}")
    if args_explain:
        explain(n)
    tracemalloc.stop()
    gen.stdin.write(b"quit\n")
    await gen.stdin.drain()
    await asyncio.wait_for(gen.wait(), 30)
    await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--frames", type=int, default=1, help="tracemalloc frames kept")
    parser.add_argument("--explain", action="store_true",
                        help="also say who holds bound methods, futures, sniffers")
    args = parser.parse_args()
    args_explain = args.explain
    import uvloop
    started = time.monotonic()
    uvloop.run(main(args.n, args.procs, args.frames))
    print(f"\n({time.monotonic() - started:.0f} s)", file=sys.stderr)
