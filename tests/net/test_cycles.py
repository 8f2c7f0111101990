"""A closed connection is freed by reference counting, not left to the cyclic collector.

Whatever rtchub holds per connection (the connection, its send buffer, the session, the
dialect handlers) refers back and forth while the connection lives. If those references
stay after the close, every closed connection becomes cyclic garbage: memory held until
the next full collection, and a longer full collection, during which every connection
waits (measured on the Socket.IO benchmark: gen-2 pauses of 55-340 ms, p99 latency).
These tests keep the collector off while clients come and go, then ask it what it would
have had to free: nothing of rtchub's (or picows's). asyncio's selector transports leave
a cycle of their own (uvloop's do not); those are not rtchub's and are not counted.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest

from tests.match.support import pair, sio_clients
from tests.rawws import RawWs, frame
from tests.support import Running, WsClient, running

CLOSE_1000 = frame(0x8, (1000).to_bytes(2, "big"))


@contextmanager
def collector_off() -> Iterator[Counter[str]]:
    """Run the body with the collector off; fill the counter with what it then finds
    (rtchub's and picows's types only)."""
    found: Counter[str] = Counter()
    gc.collect()
    gc.disable()
    try:
        yield found
    finally:
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            for obj in gc.garbage:
                module = type(obj).__module__ or ""
                if module.startswith(("rtchub", "picows")):
                    found[f"{module}.{type(obj).__qualname__}"] += 1
        finally:
            gc.garbage.clear()
            gc.set_debug(0)
            gc.enable()


async def released(srv: Running) -> None:
    """Until no connection is open and no room is left."""
    await srv.hub.changes.wait_for(
        lambda: not srv.hub.connections and srv.rooms.counts() == (0, 0), 5)


async def test_rooms_clients_that_join_relay_and_leave_leave_no_cycles() -> None:
    async with running() as srv:
        with collector_off() as found:
            for n in range(4):
                a = await WsClient.connect(srv.ws_url)
                b = await WsClient.connect(srv.ws_url)
                assert (await a.join(f"r{n}", "ann"))["type"] == "joined"
                assert (await b.join(f"r{n}", "bob"))["type"] == "joined"
                await a.send({"type": "offer", "from": "ann", "to": "bob",
                              "sdp": {"type": "offer", "sdp": "v=0\r\n"}})
                assert (await b.expect("offer"))["from"] == "ann"
                await a.close()
                await b.close()
            await released(srv)
        assert not found, dict(found)


@pytest.mark.parametrize("kept_alive", [False, True], ids=["fast", "aiohttp"])
async def test_a_join_and_close_in_one_write_leaves_no_cycles(kept_alive: bool) -> None:
    async with running() as srv:
        with collector_off() as found:
            for n in range(6):
                raw, _ = await RawWs.open(srv.port, "/ws/rooms", kept_alive=kept_alive)
                join = orjson.dumps({"type": "join", "room": f"r{n % 2}", "from": "ghost"})
                raw.write(frame(0x1, join) + CLOSE_1000)
                await released(srv)
                raw.close()
        assert not found, dict(found)


async def test_socketio_clients_that_match_and_leave_leave_no_cycles() -> None:
    async with running() as srv:
        with collector_off() as found:
            async with sio_clients(srv.url, 4, ["websocket"]) as (a, b, c, d):
                await pair(a, b)
                await pair(c, d, ("Cy", "Di"))
            await srv.hub.changes.wait_for(lambda: not srv.hub.connections, 5)
        assert not found, dict(found)
