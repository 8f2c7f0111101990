"""Python cost of one relayed signaling message, without sockets.

Drives the same objects the /ws fast path drives (Hub, WsSession, RoomsHandler,
Rooms, LocalCourier) with two in-memory connections in one room, and times
``on_text`` for an offer: parse, route, validate, relay, render, count. The
socket write itself (about half of the server's CPU per message under load) is
not included. Run by hand::

    .venv/bin/python benchmarks/signaling/hotpath.py --count 200000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import time

import orjson

from rtchub.app import GATEWAY, create_app
from rtchub.base.clock import LoopClock
from rtchub.base.metrics import Stats
from rtchub.config import Config, Limits, ListenAddress
from rtchub.net.connection import ConnLimits, NetConnection
from rtchub.net.http import HUB
from rtchub.net.router import ROUTER
from rtchub.net.session import Session

_ids = itertools.count(1)


class MemoryConnection(NetConnection):
    """A connection that keeps the last frame sent to it."""

    def __init__(self) -> None:
        super().__init__(f"m{next(_ids)}", "127.0.0.1", self._keep,
                         ConnLimits(max_message=1 << 20, send_buffer=64, send_timeout=2.0),
                         LoopClock(), Stats())
        self.last = b""
        self.sent = 0

    def _keep(self, data: bytes) -> None:
        self.last = data
        self.sent += 1

    def _control(self, opcode: int, payload: bytes) -> None:
        pass

    def _finish(self, code: int, reason: bytes) -> None:
        pass

    def _abort(self) -> None:
        pass


async def measure(count: int, size: int) -> float:
    """Microseconds of Python per relayed offer."""
    # WS_MSG_RATE off (as run.py and memory.py run it): with it on, the sender is closed
    # after 2,000 messages and the loop below would time the closed connection's early return
    app = create_app(Config(addr=ListenAddress("127.0.0.1", 0), stream_addr=None,
                            limits=Limits(ws_msg_rate=(0, 10.0))))
    hub, gateway = app[HUB], app[GATEWAY]
    await hub.start()
    admission = app[ROUTER].admit("/ws", {"Upgrade": "websocket", "Sec-WebSocket-Key": "k",
                                          "Sec-WebSocket-Version": "13"}, "127.0.0.1")
    a, b = MemoryConnection(), MemoryConnection()
    sa: Session = gateway.open(a, admission)
    sb: Session = gateway.open(b, admission)
    for conn, session in ((a, sa), (b, sb)):
        session.on_text(orjson.dumps({"type": "join", "room": "r", "from": conn.id}), 0)
        for _ in range(100):
            await asyncio.sleep(0)
    head = orjson.dumps({"type": "offer", "to": b.id,
                         "sdp": {"type": "offer", "sdp": "v=0 "}})
    frame = head.replace(b"v=0 ", b"v=0 " + b"x" * max(size - len(head), 0))
    sa.on_text(frame, time.perf_counter_ns())
    if b"offer" not in b.last:
        raise RuntimeError(f"relay failed: {b.last!r}")
    gc.collect()
    # CPU time of this thread: less disturbed than wall time on a shared machine
    start = time.thread_time()
    on_text = sa.on_text
    for _ in range(count):
        on_text(frame, time.perf_counter_ns())
    elapsed = time.thread_time() - start
    if b.sent < count:
        raise RuntimeError(f"only {b.sent} of {count} offers were relayed")
    await hub.close()
    return elapsed / count * 1e6


def main() -> None:
    """Print µs per message for each size."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=200_000)
    p.add_argument("--size", default="200,3000")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    for size in (int(s) for s in args.size.split(",")):
        best = min(asyncio.run(measure(args.count, size)) for _ in range(args.repeat))
        print(f"{size} B: {best:.2f} µs of Python per relayed message "
              f"(best of {args.repeat})")


if __name__ == "__main__":
    main()
