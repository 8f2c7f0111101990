"""Seed 001 on the WebSocket fast path (features/match/eio.py): what a WebSocket-only
Socket.IO client gets there that python-socketio would give it, and the two paths
matched with each other. The rest of tests/match runs its WebSocket clients there too."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from rtchub.features.match.routes import MATCH
from tests.match.support import CANDIDATE, SioClient, pair, sio_clients
from tests.match.test_hostile import next_event, raw_socketio
from tests.rawws import RawWs
from tests.support import FakeClock, heartbeat_round, running

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def test_the_open_packet_says_what_the_server_enforces() -> None:
    async with running(heartbeat=7.0, max_message_bytes=4096) as srv:
        raw, head = await RawWs.open(srv.port, "/socket.io/?EIO=4&transport=websocket")
        assert head.startswith(b"HTTP/1.1 101"), head
        _, packet = await raw.recv()
        opened = orjson.loads(packet[1:])
        assert opened["upgrades"] == [] and isinstance(opened["sid"], str)
        assert (opened["pingInterval"], opened["pingTimeout"]) == (7000, 7000)
        assert opened["maxPayload"] == 4096
        raw.close()


async def test_engineio_pings_on_every_sweep_and_a_silent_client_is_dropped() -> None:
    """The server pings (``2``) on every heartbeat sweep, even while the client talks
    (an Engine.IO client closes when the pings stop); a client that does not answer
    (``3``) before the next sweep is closed with 1001."""
    clock = FakeClock()
    async with running(clock=clock) as srv:
        raw, _ = await raw_socketio(srv)
        for _ in range(2):
            await raw.send(0x1, b'42["rtchub-sync"]')     # the client talks...
            assert (await next_event(raw))[0] == "error"
            await heartbeat_round(srv, clock)
            assert await raw.recv() == (0x1, b"2")         # ...and is pinged anyway
            await raw.send(0x1, b"3")
            await raw.send(0x1, b'42["rtchub-sync"]')     # (the pong applied first)
            assert (await next_event(raw))[0] == "error"
        await heartbeat_round(srv, clock)
        assert await raw.recv() == (0x1, b"2")
        await heartbeat_round(srv, clock)                  # no answer: dropped
        opcode, payload = await raw.recv()
        assert opcode == 0x8 and int.from_bytes(payload[:2], "big") == 1001, payload
        assert srv.hub.stats.closes["heartbeat"] == 1
        raw.close()


async def test_an_event_that_asks_for_an_ack_gets_an_empty_one() -> None:
    async with running() as srv:
        raw, _ = await raw_socketio(srv)
        await raw.send(0x1, b'4217["request-room",{"name":"Ann","roomId":null}]')
        assert await raw.recv() == (0x1, b"4317[]")
        await raw.send(0x1, b"41")                       # leaves the namespace (and queue)
        await raw.send(0x1, b'42["stop-call"]')
        event, data = await next_event(raw)
        assert event == "error" and isinstance(data, dict), data
        assert data["code"] == "bad_message" and data["event"] == "stop-call", data
        async with aiohttp.ClientSession() as http, \
                http.get(f"{srv.url}/api/status") as resp:
            assert (await resp.json())["queue"]["size"] == 0
        raw.close()


async def test_a_polling_client_and_a_websocket_only_client_meet_and_relay() -> None:
    """python-socketio's path and the fast path share the matchmaker: a match across
    them relays both ways, and both count in /metrics and the sessions."""
    async with running() as srv, sio_clients(srv.url, 1, ["polling"]) as (slow,), \
            sio_clients(srv.url, 1, ["websocket"]) as (fast,):
        await pair(slow, fast)
        await slow.emit("send-new-ice-candidates", {"to": fast.sid, "candidate": CANDIDATE})
        assert await fast.expect("new-ice-candidates") == {"candidate": CANDIDATE}
        await fast.emit("send-new-ice-candidates", {"to": slow.sid, "candidate": CANDIDATE})
        assert await slow.expect("new-ice-candidates") == {"candidate": CANDIDATE}
        server = srv.server.app[MATCH]
        assert set(server.sessions) == {slow.sid, fast.sid}
        assert list(server.fast.sessions) == [fast.sid]
        async with aiohttp.ClientSession() as http, \
                http.get(f"{srv.url}/metrics") as resp:
            assert "rtchub_match_sockets 2.0" in await resp.text()
        await fast.emit("stop-call")
        assert await slow.expect("stop-by-remote-user") is None


async def test_a_websocket_client_gone_leaves_its_partner_told() -> None:
    async with running() as srv, sio_clients(srv.url, 1) as (ann,):
        bob = await SioClient().connect(srv.url, ["websocket"])
        await pair(ann, bob)
        await bob.close()
        assert await ann.expect("stop-by-remote-user") is None
        await srv.hub.changes.wait_for(lambda: len(srv.server.app[MATCH].fast.sessions) == 1,
                                       5)
