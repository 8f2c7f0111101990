"""Hostile and broken clients, on both HTTP stacks.

Every case here was reproduced against ``rtchub serve`` before the connection lifecycle
was rebuilt: each test fails on that code. The rule they keep: every byte a client can
make the server hold is bounded per connection, a client that stops reading is dropped
by the send buffer and its timeout whatever the stack, and every per-connection resource
is released once, whatever closed the connection.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson
import pytest

from rtchub.config import ListenAddress
from tests.match.support import sio_clients
from tests.rawws import RawWs, frame
from tests.support import FakeClock, Running, WsClient, running

STACKS = pytest.mark.parametrize("kept_alive", [False, True], ids=["fast", "aiohttp"])
CLOSE_1000 = frame(0x8, (1000).to_bytes(2, "big"))


def rss_mib() -> float:
    """This process's resident memory now (server and clients share it)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def cut(reader: asyncio.StreamReader) -> bool:
    """True once the server closed or reset the socket (no answer came)."""
    try:
        return await asyncio.wait_for(reader.read(), 5) == b""
    except ConnectionResetError:
        return True


async def released(srv: Running) -> None:
    """Wait until no connection is open and no room is left."""
    await srv.hub.changes.wait_for(
        lambda: not srv.hub.connections and srv.rooms.counts() == (0, 0), 5)


async def ghosts(srv: Running, port: int | str, kept_alive: bool) -> None:
    for n in range(25):
        raw, _ = await RawWs.open(port, "/ws/rooms", kept_alive=kept_alive)
        join = orjson.dumps({"type": "join", "room": f"r{n % 3}", "from": f"ghost{n % 2}"})
        raw.write(frame(0x1, join) + CLOSE_1000)  # join and close in one write
        await released(srv)
        raw.close()
    again = await WsClient.connect(srv.ws_url + "/rooms") if isinstance(port, int) else None
    if again is not None:  # the IDs are free: nobody holds them any more
        assert (await again.join("r0", "ghost0"))["type"] == "joined"
        await again.close()


@STACKS
async def test_join_and_close_in_one_write_leave_no_member(kept_alive: bool) -> None:
    async with running() as srv:
        await ghosts(srv, srv.port, kept_alive)


async def test_join_and_close_on_a_unix_socket_leave_no_member(tmp_path: Path) -> None:
    async with running(addr=ListenAddress(path=str(tmp_path / "rtchub.sock"))) as srv:
        await ghosts(srv, str(tmp_path / "rtchub.sock"), kept_alive=False)


@STACKS
async def test_a_message_of_exactly_the_limit_passes_and_one_more_byte_closes(
        kept_alive: bool) -> None:
    async with running(max_message_bytes=1024) as srv:
        raw, _ = await RawWs.open(srv.port, "/ws/rooms", kept_alive=kept_alive)
        head = b'{"type":"ping","pad":"'
        exact = head + b"x" * (1024 - len(head) - 2) + b'"}'
        assert len(exact) == 1024
        await raw.send(0x1, exact)
        assert await raw.recv() == (0x1, b'{"type":"pong"}')
        await raw.send(0x1, exact[:-2] + b'x"}')
        assert await raw.close_code() == 1009
        raw.close()
        # the same limit for a message in fragments
        raw, _ = await RawWs.open(srv.port, "/ws/rooms", kept_alive=kept_alive)
        await raw.send(0x1, exact[:500], fin=False)
        await raw.send(0x0, exact[500:], fin=True)
        assert await raw.recv() == (0x1, b'{"type":"pong"}')
        await raw.send(0x1, exact[:500], fin=False)
        await raw.send(0x0, exact[500:-2] + b'x"}', fin=True)
        assert await raw.close_code() == 1009
        raw.close()


@STACKS
async def test_endless_empty_fragments_hold_nothing(kept_alive: bool) -> None:
    async with running() as srv:
        raw, _ = await RawWs.open(srv.port, "/ws/rooms", kept_alive=kept_alive)
        flood = frame(0x0, b"", fin=False) * 100_000
        await raw.send(0x1, b'{"type":', fin=False)
        before = rss_mib()
        for _ in range(10):  # a million empty fragments (an older server kept each one)
            raw.write(flood)
            await raw.send(0x9, b"sync")  # a ping between fragments: answered in order
            assert await raw.recv() == (0xA, b"sync")
        grown = rss_mib() - before
        assert grown < 5, f"{grown:.1f} MiB held for a million empty fragments"
        await raw.send(0x0, b'"ping"}', fin=True)
        assert await raw.recv() == (0x1, b'{"type":"pong"}')
        raw.close()


@STACKS
async def test_pings_from_a_client_that_never_reads_are_bounded(kept_alive: bool) -> None:
    clock = FakeClock()
    async with running(clock=clock, write_buffer=4096) as srv:
        raw, _ = await RawWs.open(srv.port, "/ws/rooms", rcvbuf=4096, kept_alive=kept_alive)
        pings = frame(0x9, b"p" * 125) * 200
        conns = srv.server.gateway.connections
        for _ in range(5000):  # until the server's socket to it pushes back
            raw.write(pings)
            await raw.writer.drain()
            await asyncio.sleep(0)  # one loop turn: the server reads what was written
            if any(c.queued for c in conns.values()):
                break
        else:
            raise AssertionError("the server never stopped writing pongs")
        assert srv.hub.stats.closes["policy"] == 0
        clock.advance(srv.hub.config.limits.send_timeout)  # stuck for the send timeout
        await srv.hub.changes.wait_for(lambda: not srv.hub.connections, 5)
        assert srv.hub.stats.closes["policy"] == 1
        # once it reads again, it learns why (the close frame was not thrown away)
        assert await raw.close_code() == 1008
        raw.close()


async def test_slow_heads_are_cut_on_every_request_of_a_connection() -> None:
    clock = FakeClock()
    async with running(clock=clock, head_timeout=0.5) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the first head, half sent
        await writer.drain()
        clock.advance(0.5)  # the head sniffer's timer runs on the hub's clock
        assert await cut(reader)
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(reader.readuntil(b"ok"), 5)).startswith(
            b"HTTP/1.1 200")
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the second head, half sent
        await writer.drain()
        # aiohttp keeps the socket: its keep-alive timer (real time) is HTTP_HEAD_TIMEOUT
        assert await cut(reader)
        writer.close()


async def test_heads_too_large_or_with_bare_lf_are_answered() -> None:
    async with running() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nX-Pad: " + b"a" * 20000)
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:60]
        assert b'"code":"message_too_large"' in answer
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /healthz HTTP/1.1\nHost: x\n\n")
        answer = await asyncio.wait_for(reader.read(200), 5)
        assert answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.0 400 ")), answer
        writer.close()


@STACKS
async def test_a_websocket_version_other_than_13_is_refused(kept_alive: bool) -> None:
    async with running() as srv:
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        _, head = await RawWs.open(
            srv.port, "/ws", kept_alive=kept_alive,
            headers=f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}"
                    "\r\nSec-WebSocket-Version: 8\r\n")
        assert head.startswith(b"HTTP/1.1 426"), head
        assert b"sec-websocket-version: 13" in head.lower()


@pytest.mark.parametrize("kept_alive", [False, True], ids=["fast", "python-socketio"])
async def test_a_matched_partner_that_stops_reading_is_dropped(kept_alive: bool) -> None:
    # (rates off: the fast client floods on purpose, and on the fast path the slow one's
    # partner is told when its socket is gone, WS_SEND_TIMEOUT after the drop, meanwhile
    # the flood's relays are refused as not_in_room)
    async with running(send_buffer=16, match_candidate_rate=(0, 60.0), ws_msg_rate=(0, 1.0),
                       ws_error_rate=(0, 1.0)) as srv, \
            sio_clients(srv.url, 1) as (fast,):
        slow, _ = await RawWs.open(srv.port, "/socket.io/?EIO=4&transport=websocket",
                                   rcvbuf=4096, kept_alive=kept_alive)
        _, packet = await slow.recv()
        assert packet.startswith(b"0{")  # engine.io open
        await slow.send(0x1, b"40")      # socket.io connect
        _, packet = await slow.recv()
        assert packet.startswith(b"40{")
        await slow.send(0x1, b'42["request-room",{"name":"Slow","roomId":null}]')
        assert await fast.sync() == []
        await fast.request("Fast")
        done = await fast.expect("match-done")
        partner = done["remoteUserDetails"]["socket"]
        big = {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host " + "x" * 3900,
               "sdpMid": "0", "sdpMLineIndex": 0}
        # the slow client never reads again: what it is sent piles up at the server,
        # until the bound on its engine.io queue drops it and its partner is told
        stopped = False
        for _ in range(100):
            for _ in range(100):
                await fast.emit("send-new-ice-candidates", {"to": partner, "candidate": big})
            if any(event == "stop-by-remote-user" for event, _ in await fast.sync()):
                stopped = True
                break
        assert stopped, "the client that stopped reading was never dropped"
        assert srv.hub.stats.closes["policy"] == 1
        slow.close()
