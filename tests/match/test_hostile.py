"""Hostile Socket.IO clients: reserved and unknown event names, Engine.IO handshakes past
the per-IP limits, signaling floods, malformed packets and what the log says about them.

Each case was reproduced against ``rtchub serve`` before the fix (issue 15): ``42["*",
"<victim sid>",{}]`` made the server send errors naming the attacker to the victim,
``42["disconnect"]`` ran the disconnect handler of a connected client, 20,000 handshakes
from one IP passed every limit, offers and candidates were not rate limited, and every
malformed packet was a traceback at ERROR.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import orjson
import pytest

from rtchub.features.match.routes import MATCH
from tests.match.support import CANDIDATE, OFFER, pair, sio_clients, status
from tests.net.test_limits import captured
from tests.rawws import RawWs
from tests.support import FakeClock, Running, running

HANDSHAKE = "/socket.io/?EIO=4&transport=websocket"


# a WebSocket-only Socket.IO client is served by the fast path when its upgrade is its
# socket's first request (features/match/eio.py), by python-socketio on a kept-alive socket
PATHS = pytest.mark.parametrize("kept_alive", [False, True], ids=["fast", "python-socketio"])


async def raw_socketio(srv: Running, kept_alive: bool = False) -> tuple[RawWs, str]:
    """A Socket.IO client by hand (Engine.IO open, Socket.IO connect); its socket ID."""
    raw, head = await RawWs.open(srv.port, HANDSHAKE, kept_alive=kept_alive)
    assert head.startswith(b"HTTP/1.1 101"), head
    _, packet = await raw.recv()
    assert packet.startswith(b"0{")
    await raw.send(0x1, b"40")
    _, packet = await raw.recv()
    assert packet.startswith(b"40{")
    return raw, str(orjson.loads(packet[2:])["sid"])


async def next_event(raw: RawWs) -> tuple[str, object]:
    """The next Socket.IO event (answering Engine.IO pings on the way)."""
    while True:
        _, packet = await raw.recv()
        if packet == b"2":
            await raw.send(0x1, b"3")
            continue
        assert packet.startswith(b"42"), packet
        event, *args = orjson.loads(packet[2:])
        return str(event), args[0] if args else None


@PATHS
async def test_reserved_and_unknown_event_names_never_dispatch(kept_alive: bool) -> None:
    async with running() as srv, sio_clients(srv.url, 2) as (victim, partner):
        await pair(victim, partner)
        attacker, _ = await raw_socketio(srv, kept_alive)
        forged = [b'42["*","%s",{}]' % victim.sid.encode(), b'42["disconnect"]',
                  b'42["disconnect","transport close"]', b'42["connect",{"x":1}]',
                  b'42["connect_error"]', b"42[7]", b'42[{"a":1}]', b'42["__class__"]',
                  b'42["message","hi"]', b'42["' + b"x" * 500 + b'"]']
        for packet in forged:
            await attacker.send(0x1, packet)
        for packet in forged:   # one unknown_type each, in order, to the sender only
            event, data = await next_event(attacker)
            assert event == "error", (packet, data)
            assert isinstance(data, dict) and data["code"] == "unknown_type", (packet, data)
        # the victim and its partner heard nothing; both are still matched and connected
        assert await victim.sync() == []
        assert await partner.sync() == []
        assert len(srv.server.app[MATCH].sessions) == 3
        await partner.emit("send-new-ice-candidates", {"to": victim.sid,
                                                       "candidate": CANDIDATE})
        assert await victim.expect("new-ice-candidates") == {"candidate": CANDIDATE}
        attacker.close()


async def test_api_status_lists_waiting_users_by_name_not_socket_id() -> None:
    async with running() as srv, sio_clients(srv.url, 1) as (a,):
        await a.request("Ann")
        assert await a.sync() == []
        body = orjson.dumps(await status(srv.url))
        assert (await status(srv.url))["queue"]["users"] == ["Ann"]
        assert a.sid.encode() not in body


@PATHS
async def test_engineio_sessions_count_against_the_per_ip_limit(kept_alive: bool) -> None:
    async with running(max_conns_per_ip=2) as srv:
        held = []
        for _ in range(2):   # Engine.IO sessions alone (no Socket.IO connect) count
            raw, head = await RawWs.open(srv.port, HANDSHAKE, kept_alive=kept_alive)
            assert head.startswith(b"HTTP/1.1 101"), head
            assert (await raw.recv())[1].startswith(b"0{")
            held.append(raw)
        _, head = await RawWs.open(srv.port, HANDSHAKE, kept_alive=kept_alive)
        assert head.startswith(b"HTTP/1.1 429"), head
        async with aiohttp.ClientSession() as http, http.get(
                srv.url + "/socket.io/?EIO=4&transport=polling") as resp:
            assert resp.status == 429              # the polling transport too
            assert (await resp.json())["code"] == "rate_limited"
        held.pop().close()
        # Engine.IO ends the session (however it ends) and the IP gets its slot back
        await srv.hub.changes.wait_for(lambda: srv.hub.ip_connections.held("127.0.0.1") == 1,
                                       5)
        raw, head = await RawWs.open(srv.port, HANDSHAKE)
        assert head.startswith(b"HTTP/1.1 101"), head
        held.append(raw)
        for raw in held:
            raw.close()
        await srv.hub.changes.wait_for(lambda: len(srv.hub.ip_connections) == 0, 5)


async def test_handshakes_count_against_the_http_and_websocket_rates() -> None:
    clock = FakeClock()
    async with running(clock=clock, http_rate_per_min=2) as srv, \
            aiohttp.ClientSession() as http:
        url = srv.url + "/socket.io/?EIO=4&transport=polling"
        for expected in (200, 200, 429):
            async with http.get(url) as resp:
                assert resp.status == expected
        clock.advance(60)
        async with http.get(url) as resp:
            assert resp.status == 200
    async with running(clock=clock, ws_rate_per_min=1) as srv:
        raw, head = await RawWs.open(srv.port, HANDSHAKE)
        assert head.startswith(b"HTTP/1.1 101"), head
        _, head = await RawWs.open(srv.port, HANDSHAKE)
        assert head.startswith(b"HTTP/1.1 429"), head
        raw.close()


async def test_offers_and_candidates_past_their_rates_are_refused() -> None:
    async with running(match_offer_rate=(2, 60.0), match_candidate_rate=(3, 60.0)) as srv, \
            sio_clients(srv.url, 2) as (a, b):
        room = await pair(a, b)
        offer = {"offer": OFFER, "roomId": room, "remoteSocketId": b.sid}
        for _ in range(2):
            await a.emit("negotiation-call-offer", offer)
            await b.expect("negotiation-call-offer")
        await a.emit("negotiation-call-offer", offer)
        assert "negotiation-call-offer" in (await a.error("rate_limited"))["message"]
        for _ in range(3):
            await a.emit("send-new-ice-candidates", {"to": b.sid, "candidate": CANDIDATE})
            await b.expect("new-ice-candidates")
        await a.emit("send-new-ice-candidates", {"to": b.sid, "candidate": CANDIDATE})
        refused = await a.error("rate_limited")
        assert refused["retry_after"] > 0
        assert await b.sync() == []


MALFORMED = [b'42["x"', b"4zz", b"9", b"42[", b"45-[\"x\"]", b"40/admin,"]


async def test_malformed_packets_on_the_fast_path_get_an_error_each() -> None:
    """Each packet that is not Engine.IO 4 / Socket.IO 5 as a client sends it is answered
    with seed 001's error event (bad_message), in order, and nothing is logged above
    INFO; another namespace gets Socket.IO's CONNECT_ERROR."""
    with captured("rtchub") as lines:
        async with running() as srv:
            raw, _ = await raw_socketio(srv)
            for packet in MALFORMED:
                await raw.send(0x1, packet)
            for packet in MALFORMED[:-1]:
                event, data = await next_event(raw)
                assert event == "error" and isinstance(data, dict), (packet, data)
                assert data["code"] == "bad_message", (packet, data)
            _, packet = await raw.recv()
            assert packet == b'44/admin,{"message":"Invalid namespace"}', packet
            await raw.send(0x1, b'42["rtchub-sync"]')
            assert (await next_event(raw))[0] == "error"
            raw.close()
        assert not [r for r in lines.records if r.levelno > logging.INFO]


async def test_malformed_packets_log_one_info_line_each_within_the_bound() -> None:
    """python-socketio's path (a kept-alive socket) logs what it refuses, boundedly."""
    with captured("rtchub.socketio") as lines, captured("engineio.server") as engine:
        async with running(log_fault_rate=(5, 60.0)) as srv:
            raw, _ = await raw_socketio(srv, kept_alive=True)
            for n in range(50):
                await raw.send(0x1, [b'42["x"', b"4zz", b"9", b"42[", b"4" + b"{" * n][n % 5])
            await raw.send(0x1, b'42["rtchub-sync"]')
            event, _ = await next_event(raw)
            assert event == "error"
            raw.close()
        assert 1 <= len(lines.records) <= 5, [r.getMessage() for r in lines.records]
        for record in lines.records:
            assert record.levelno == logging.INFO, record.getMessage()
            assert record.exc_info is None
        assert not engine.records     # engine.io's own logger (and its handler) is not used


@pytest.mark.parametrize("transport,allowed", [
    ("websocket", 9),   # the fast path counts every frame: the client's CONNECT (40) too
    ("polling", 10),    # python-socketio's path counts events
])
async def test_a_client_past_the_message_rate_is_disconnected(transport: str,
                                                               allowed: int) -> None:
    async with running(ws_msg_rate=(10, 60.0)) as srv, \
            sio_clients(srv.url, 2, [transport]) as (a, b):
        for _ in range(allowed):
            await a.emit("no-such-event")
            assert (await a.error("unknown_type"))["event"] == "no-such-event"
        await a.emit("no-such-event")
        await asyncio.wait_for(a.disconnected.wait(), 5)
        assert srv.hub.stats.closes["msg_rate"] == 1
        assert await b.sync() == []


async def test_a_client_past_the_error_rate_is_disconnected() -> None:
    async with running(ws_error_rate=(5, 60.0)) as srv, sio_clients(srv.url, 2) as (a, b):
        for _ in range(5):
            await a.emit("request-room", {"name": 7})
            await a.error("invalid_field")
        await a.emit("request-room", {"name": 7})     # the sixth refusal: disconnected
        await asyncio.wait_for(a.disconnected.wait(), 5)
        assert srv.hub.stats.closes["error_rate"] == 1
        assert await b.sync() == []
