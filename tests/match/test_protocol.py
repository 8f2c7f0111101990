"""Seed 001 over real Socket.IO connections: matching, relays within a pair, ending."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import socketio

from rtchub.app import build_server
from rtchub.config import OriginPolicy
from tests.match.support import (
    ANSWER,
    CANDIDATE,
    OFFER,
    PIXEL,
    SioClient,
    pair,
    running_clocked,
    sio_clients,
    status,
)
from tests.support import FakeClock, Running, make_config


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def srv(clock: FakeClock) -> AsyncIterator[Running]:
    async with running_clocked(clock) as running:
        yield running


async def test_match_done_to_both_with_details(srv: Running) -> None:
    async with sio_clients(srv.url, 2) as (a, b):
        await a.request("Ann", image=PIXEL)
        assert await a.sync() == []
        assert (await status(srv.url))["queue"] == {"size": 1, "users": ["Ann"]}
        await b.request("Bob", image="")
        done_b = await b.expect("match-done")
        done_a = await a.expect("match-done")
        assert done_a == {"roomId": done_b["roomId"], "remoteUserDetails": {
            "socket": b.sid, "userName": "Bob", "userImage": ""}}
        assert done_b["remoteUserDetails"] == {"socket": a.sid, "userName": "Ann",
                                               "userImage": PIXEL}
        st = await status(srv.url)
        assert st["queue"] == {"size": 0, "users": []}
        assert st["rooms"] == {"active": 1, "total": 1}
        assert st["timestamp"].endswith("Z")


async def test_negotiation_and_ice_relay(srv: Running) -> None:
    async with sio_clients(srv.url, 2) as (a, b):
        room = await pair(a, b)
        await a.emit("negotiation-call-offer", {"offer": OFFER, "roomId": room, "name": "x",
                                                "remoteSocketId": b.sid})
        assert await b.expect("negotiation-call-offer") == {
            "remoteUserDetails": {"socket": a.sid, "userName": "Ann"}, "roomId": room,
            "offer": OFFER}
        await b.emit("negotiation-call-answer", {"ans": ANSWER, "roomId": room, "name": "Bob",
                                                 "remoteSocketId": a.sid})
        assert await a.expect("negotiation-call-answer") == {
            "ans": ANSWER, "roomId": room, "name": "Bob", "remoteSocketId": b.sid}
        for _ in range(50):   # ICE is never rate limited
            await a.emit("send-new-ice-candidates", {"to": b.sid, "candidate": CANDIDATE})
        await a.emit("send-new-ice-candidates", {"to": b.sid, "candidate": None})
        for _ in range(50):
            assert await b.expect("new-ice-candidates") == {"candidate": CANDIDATE}
        assert await b.expect("new-ice-candidates") == {"candidate": None}
        assert await a.sync() == []


async def test_chat_reaches_both(srv: Running) -> None:
    async with sio_clients(srv.url, 2) as (a, b):
        room = await pair(a, b)
        await a.emit("newMessage", {"message": "hi there", "roomId": room,
                                    "remoteSocket": b.sid})
        assert await a.expect("Message:recived") == {"from": a.sid, "message": "hi there"}
        assert await b.expect("Message:recived") == {"from": a.sid, "message": "hi there"}


async def test_stop_call_tells_the_other_side_and_ends_the_room(srv: Running) -> None:
    async with sio_clients(srv.url, 2) as (a, b):
        room = await pair(a, b)
        await a.emit("stop-call", {"roomId": room, "remoteSocketId": b.sid, "name": "Ann"})
        assert await b.expect("stop-by-remote-user") is None
        assert await a.sync() == []
        assert (await status(srv.url))["rooms"] == {"active": 0, "total": 1}
        # the room is over: relays both ways are refused
        await b.emit("send-new-ice-candidates", {"to": a.sid, "candidate": CANDIDATE})
        await b.error("not_in_room")
        await a.emit("newMessage", {"message": "x", "roomId": room, "remoteSocket": b.sid})
        await a.error("not_in_room")
        assert await b.sync() == []
        await a.emit("stop-call")
        await a.error("not_in_room")


async def test_disconnect_of_one_side(srv: Running) -> None:
    async with sio_clients(srv.url, 2) as (a, b):
        await pair(a, b)
        await a.close()
        assert await b.expect("stop-by-remote-user") is None
        st = await status(srv.url)
        assert st["rooms"]["active"] == 0
        assert st["queue"]["size"] == 0


async def test_a_gone_waiter_is_never_matched(srv: Running) -> None:
    async with sio_clients(srv.url, 2) as (a, b):
        await a.request("Ann")
        assert await a.sync() == []
        await a.close()
        await b.request("Bob")
        assert await b.sync() == []
        assert (await status(srv.url))["queue"] == {"size": 1, "users": ["Bob"]}


async def test_next_requeues_and_does_not_rematch_at_once(srv: Running, clock: FakeClock
                                                          ) -> None:
    async with sio_clients(srv.url, 3) as (a, b, c):
        room = await pair(a, b)
        clock.advance(5)
        await a.request("Ann", room_id=room)          # "next"
        assert await b.expect("stop-by-remote-user") is None
        assert await a.sync() == []
        await b.request("Bob", room_id=room)          # both asked not to rematch
        assert await b.sync() == []
        assert (await status(srv.url))["queue"]["users"] == ["Ann", "Bob"]
        await c.request("Cat")                          # first come, first matched: Ann
        done_c = await c.expect("match-done")
        assert done_c["remoteUserDetails"]["socket"] == a.sid
        assert (await a.expect("match-done"))["remoteUserDetails"]["socket"] == c.sid
        assert await b.sync() == []


async def test_without_room_id_the_same_two_may_meet_again(srv: Running, clock: FakeClock
                                                           ) -> None:
    async with sio_clients(srv.url, 2) as (a, b):
        room = await pair(a, b)
        clock.advance(5)
        await a.request("Ann", room_id="someone-elses-room")  # not Ann's last room: ignored
        await b.expect("stop-by-remote-user")
        clock.advance(5)
        await b.request("Bob")
        assert (await b.expect("match-done"))["remoteUserDetails"]["socket"] == a.sid
        assert (await a.expect("match-done"))["roomId"] != room


async def test_never_matched_with_yourself(srv: Running, clock: FakeClock) -> None:
    async with sio_clients(srv.url, 1) as (a,):
        await a.request("Ann")
        assert await a.sync() == []
        clock.advance(5)
        await a.request("Ann again")
        assert await a.sync() == []
        assert (await status(srv.url))["queue"] == {"size": 1, "users": ["Ann again"]}


async def test_stop_call_while_waiting_leaves_the_queue(srv: Running) -> None:
    async with sio_clients(srv.url, 1) as (a,):
        await a.request("Ann")
        await a.emit("stop-call")
        assert await a.sync() == []
        assert (await status(srv.url))["queue"]["size"] == 0


async def test_cross_room_relays_are_refused(srv: Running) -> None:
    async with sio_clients(srv.url, 5) as (a, b, c, d, e):
        room_ab = await pair(a, b)
        room_cd = await pair(c, d, ("Cat", "Dan"))
        await a.emit("negotiation-call-offer", {"offer": OFFER, "roomId": room_ab,
                                                "remoteSocketId": c.sid})
        assert (await a.error("peer_not_found"))["event"] == "negotiation-call-offer"
        await a.emit("negotiation-call-offer", {"offer": OFFER, "roomId": room_cd,
                                                "remoteSocketId": b.sid})
        await a.error("not_in_room")
        await a.emit("negotiation-call-answer", {"ans": ANSWER, "roomId": room_ab,
                                                 "remoteSocketId": d.sid})
        await a.error("peer_not_found")
        await a.emit("send-new-ice-candidates", {"to": c.sid, "candidate": CANDIDATE})
        await a.error("peer_not_found")
        await a.emit("newMessage", {"message": "psst", "roomId": room_ab, "remoteSocket": d.sid})
        await a.error("peer_not_found")
        await a.emit("send-new-ice-candidates", {"to": a.sid, "candidate": CANDIDATE})
        await a.error("invalid_field")
        await e.emit("send-new-ice-candidates", {"to": a.sid, "candidate": CANDIDATE})
        await e.error("not_in_room")
        for other in (b, c, d):
            assert await other.sync() == []


@pytest.mark.parametrize(("event", "payload", "code"), [
    ("request-room", {"roomId": None, "userImage": PIXEL}, "missing_field"),
    ("request-room", {"name": 5, "userImage": PIXEL}, "invalid_field"),
    ("request-room", {"name": "   ", "userImage": PIXEL}, "invalid_field"),
    ("request-room", {"name": "x" * 65, "userImage": PIXEL}, "message_too_large"),
    ("request-room", {"name": "Ann", "userImage": 5}, "invalid_field"),
    ("request-room", {"name": "Ann", "userImage": ["data:image/png;base64,"]},
     "invalid_field"),
    ("request-room", {"name": "Ann", "userImage": "data:image/png;base64,"
                      + "A" * (32 * 1024)}, "message_too_large"),
    ("request-room", "Ann", "bad_message"),
    ("request-room", None, "bad_message"),
    ("no-such-event", {"x": 1}, "unknown_type"),
])
async def test_bad_requests_change_nothing(srv: Running, event: str, payload: object,
                                           code: str) -> None:
    async with sio_clients(srv.url, 1) as (a,):
        await a.emit(event, payload)
        err = await a.error(code)
        assert err["error"] == err["message"] and err["event"] == event
        assert (await status(srv.url))["queue"]["size"] == 0


@pytest.mark.parametrize(("event", "payload", "code"), [
    ("negotiation-call-offer", {"offer": {"type": "offer"}, "roomId": "ROOM",
                                "remoteSocketId": "B"}, "invalid_sdp"),
    ("negotiation-call-offer", {"offer": ANSWER, "roomId": "ROOM", "remoteSocketId": "B"},
     "invalid_sdp"),
    ("negotiation-call-offer", {"offer": OFFER, "remoteSocketId": "B"}, "missing_field"),
    ("negotiation-call-answer", {"ans": "v=0", "roomId": "ROOM", "remoteSocketId": "B"},
     "invalid_sdp"),
    ("send-new-ice-candidates", {"to": "B"}, "missing_field"),
    ("send-new-ice-candidates", {"to": "B", "candidate": "candidate:1"}, "invalid_field"),
    ("send-new-ice-candidates", {"to": "B", "candidate": {"candidate": "c" * 5000}},
     "invalid_field"),
    ("newMessage", {"message": "x" * 1001, "roomId": "ROOM", "remoteSocket": "B"},
     "message_too_large"),
    ("newMessage", {"message": " ", "roomId": "ROOM", "remoteSocket": "B"}, "invalid_field"),
    ("newMessage", {"message": 3, "roomId": "ROOM", "remoteSocket": "B"}, "invalid_field"),
    ("newMessage", {"message": "hi", "roomId": "ROOM"}, "missing_field"),
])
async def test_bad_relays_change_nothing(srv: Running, event: str, payload: dict[str, object],
                                         code: str) -> None:
    async with sio_clients(srv.url, 2) as (a, b):
        room = await pair(a, b)
        filled = {k: (room if v == "ROOM" else b.sid if v == "B" else v)
                  for k, v in payload.items()}
        await a.emit(event, filled)
        await a.error(code)
        assert await b.sync() == []
        # the pair still works
        await a.emit("newMessage", {"message": "ok", "roomId": room, "remoteSocket": b.sid})
        assert (await b.expect("Message:recived"))["message"] == "ok"


async def test_image_size_limit_boundary(srv: Running) -> None:
    prefix = "data:image/png;base64,"
    body = "A" * ((32 * 1024 - len(prefix)) // 4 * 4)
    async with sio_clients(srv.url, 2) as (a, b):
        await a.request("Ann", image=prefix + body + "AAAA")
        assert "limit is 32768" in (await a.error("message_too_large"))["message"]
        await b.request("Bob", image=prefix + body)     # at the limit: accepted
        assert await b.sync() == []
        assert (await status(srv.url))["queue"]["users"] == ["Bob"]


async def test_request_room_rate_limit(srv: Running, clock: FakeClock) -> None:
    async with sio_clients(srv.url, 1) as (a,):
        await a.request("Ann")
        assert await a.sync() == []
        clock.advance(4.5)
        await a.request("Ann")
        err = await a.error("rate_limited")
        assert err["event"] == "request-room"
        assert err["retry_after"] == pytest.approx(0.5, abs=0.01)
        assert "1 per 5s" in err["message"]
        clock.advance(0.5)
        await a.emit("request-room", {"name": ""})    # invalid: refused, not counted
        await a.error("invalid_field")
        await a.request("Ann")
        assert await a.sync() == []


async def test_chat_rate_limit(srv: Running, clock: FakeClock) -> None:
    async with sio_clients(srv.url, 2) as (a, b):
        room = await pair(a, b)
        msg = {"message": "hi", "roomId": room, "remoteSocket": b.sid}
        for _ in range(10):
            await a.emit("newMessage", msg)
        for _ in range(10):
            await b.expect("Message:recived")
        await a.emit("newMessage", msg)
        seen = await a.sync()
        assert [e for e, _ in seen] == ["Message:recived"] * 10 + ["error"]
        assert seen[-1][1]["code"] == "rate_limited"
        assert "10 per 60s" in seen[-1][1]["message"]
        assert await b.sync() == []
        clock.advance(60)
        await a.emit("newMessage", msg)
        assert (await b.expect("Message:recived"))["message"] == "hi"


async def test_rate_limits_are_configurable(clock: FakeClock) -> None:
    async with running_clocked(clock, match_request_rate=(0, 60.0),
                               match_message_rate=(2, 10.0), match_max_name=3) as srv, \
            sio_clients(srv.url, 2) as (a, b):
        await a.request("Annabel")
        await a.error("message_too_large")
        for _ in range(3):
            await a.request("Ann")   # request-room unlimited
        assert await a.sync() == []
        await b.request("Bob")
        room = (await b.expect("match-done"))["roomId"]
        await a.expect("match-done")
        msg = {"message": "hi", "roomId": room, "remoteSocket": a.sid}
        for _ in range(3):
            await b.emit("newMessage", msg)
        seen = await b.sync()
        assert [e for e, _ in seen] == ["Message:recived", "Message:recived", "error"]


async def test_queue_limit(clock: FakeClock) -> None:
    async with running_clocked(clock, match_max_queue=1) as srv, \
            sio_clients(srv.url, 2) as (a, b):
        room = await pair(a, b)
        clock.advance(5)
        await a.request("Ann", room_id=room)
        await b.expect("stop-by-remote-user")
        await b.request("Bob", room_id=room)      # may not rematch Ann; the queue is full
        assert "1 waiting" in (await b.error("queue_full"))["message"]
        assert (await status(srv.url))["queue"]["users"] == ["Ann"]


async def test_many_clients_all_paired_once(srv: Running) -> None:
    n = 60
    async with sio_clients(srv.url, n) as clients:
        await asyncio.gather(*(c.request(f"user{i}") for i, c in enumerate(clients)))
        dones = await asyncio.gather(*(c.expect("match-done") for c in clients))
        partner = {c.sid: d["remoteUserDetails"]["socket"] for c, d in
                   zip(clients, dones, strict=True)}
        assert all(me != other for me, other in partner.items())
        assert all(partner[other] == me for me, other in partner.items())
        rooms = {d["roomId"] for d in dones}
        assert len(rooms) == n // 2
        st = await status(srv.url)
        assert st["rooms"] == {"active": n // 2, "total": n // 2}
        assert st["queue"]["size"] == 0


async def test_polling_transport(clock: FakeClock) -> None:
    # long polls are not HTTP requests to rate limit: Socket.IO has its own limits
    async with running_clocked(clock, http_rate_per_min=3) as srv, \
            sio_clients(srv.url, 2, transports=["polling"]) as (a, b):
        room = await pair(a, b)
        await a.emit("newMessage", {"message": "over polling", "roomId": room,
                                    "remoteSocket": b.sid})
        assert (await b.expect("Message:recived"))["message"] == "over polling"


async def test_status_and_json_index(server: Running) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/",
                            headers={"Accept": "application/json"}) as resp:
            body = await resp.json()
            assert body["status"] == "OK" and isinstance(body["message"], str)
        async with http.get(f"{server.url}/match") as resp:
            assert resp.status == 200
            assert "match.js" in await resp.text()
        async with http.get(f"{server.url}/vendor/socket.io.min.js") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/javascript")
    assert (await status(server.url))["rooms"] == {"active": 0, "total": 0}


async def test_shutdown_disconnects_clients_promptly() -> None:
    config = make_config(shutdown_timeout=5.0)
    server = build_server(config)
    await server.start()
    url = f"http://127.0.0.1:{server.port()}"
    a, b = SioClient(), SioClient()
    try:
        await a.connect(url)
        await b.connect(url, ["polling"])
        await pair(a, b)
    finally:
        stopping = asyncio.create_task(server.stop())
    # the drain disconnects every Socket.IO client at once (no long poll left hanging),
    # so the stop finishes well inside SHUTDOWN_TIMEOUT
    await asyncio.wait_for(a.disconnected.wait(), 1.5)
    await asyncio.wait_for(b.disconnected.wait(), 1.5)
    await asyncio.wait_for(stopping, 1.5)


async def test_connections_obey_the_ws_rate_limit_and_origins(clock: FakeClock) -> None:
    async with running_clocked(clock, ws_rate_per_min=1,
                               origins=OriginPolicy.parse("good.example")) as srv:
        first = SioClient()
        await first.connect(srv.url)
        try:
            # refused at the Engine.IO handshake, before a session exists
            async with aiohttp.ClientSession() as session, session.get(
                    srv.url + "/socket.io/?EIO=4&transport=polling") as resp:
                assert resp.status == 429
                assert resp.headers["Retry-After"] == "60"
                assert (await resp.json())["code"] == "rate_limited"
            second = SioClient()
            with pytest.raises(socketio.exceptions.ConnectionError):
                await second.connect(srv.url)
            clock.advance(60)
            bad = SioClient()
            with pytest.raises(socketio.exceptions.ConnectionError):
                await bad.sio.connect(srv.url, transports=["websocket"],
                                      headers={"Origin": "http://evil.example"},
                                      wait_timeout=5)
            good = SioClient()
            await good.sio.connect(srv.url, transports=["websocket"],
                                   headers={"Origin": "http://good.example"}, wait_timeout=5)
            await good.close()
        finally:
            await first.close()


async def test_no_new_sessions_while_draining(clock: FakeClock) -> None:
    # a refused polling client gives up only when its open long-poll returns, which the
    # Engine.IO server holds for up to its ping interval (the heartbeat): a 1 s heartbeat
    # instead of the default 20 s keeps this test from waiting ~25 s on it
    async with running_clocked(clock, heartbeat=1.0) as srv:
        srv.hub.drain()
        late = SioClient()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await late.connect(srv.url, ["polling"])
        refusal = await late.expect("connect_error")
        assert refusal["data"] == {"code": "capacity"}
        # on the WebSocket fast path the upgrade itself is refused, as on /ws
        async with aiohttp.ClientSession() as http, http.get(
                f"{srv.url}/socket.io/?EIO=4&transport=websocket",
                headers={"Upgrade": "websocket", "Connection": "Upgrade",
                         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                         "Sec-WebSocket-Version": "13"}) as resp:
            assert resp.status == 503
            assert (await resp.json())["code"] == "capacity"


async def test_metrics_count_pairs_events_and_errors(srv: Running) -> None:
    async with sio_clients(srv.url, 3) as (a, b, c):
        await pair(a, b)
        await c.emit("send-new-ice-candidates", {"to": a.sid, "candidate": None})
        await c.error("not_in_room")
        await c.emit("whatever", {})
        await c.error("unknown_type")
        async with aiohttp.ClientSession() as http, \
                http.get(f"{srv.url}/metrics") as resp:
            text = await resp.text()
    assert "rtchub_match_pairs_total 1.0" in text
    assert "rtchub_match_sockets 3.0" in text
    assert 'rtchub_errors_total{code="not_in_room"} 1.0' in text
    assert 'rtchub_ws_frames_in_total{type="request-room"} 2.0' in text
    assert 'rtchub_ws_frames_in_total{type="unknown"} 2.0' in text   # a sync + whatever
    assert 'rtchub_ws_frames_out_total{type="match-done"} 2.0' in text
