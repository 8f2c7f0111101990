"""The rooms protocol over real WebSockets: every message type and every error code."""

from __future__ import annotations

import pytest

from tests.rawws import RawWs
from tests.support import FakeClock, Running, WsClient, clients, running

SDP = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"}


async def test_join_assigns_members_and_token(server: Running) -> None:
    async with clients(server.ws_url, 2) as (a, b):
        joined = await a.join("standup", "alice")
        assert joined["type"] == "joined"
        assert joined["room"] == "standup" and joined["from"] == "alice"
        assert joined["members"] == ["alice"]
        assert isinstance(joined["token"], str) and len(joined["token"]) >= 16
        joined_b = await b.join("standup", "bob")
        assert joined_b["members"] == ["alice", "bob"]
        assert await a.recv() == {"type": "room_members", "room": "standup",
                                  "members": ["alice", "bob"]}


async def test_join_without_id_gets_a_server_id(server: Running) -> None:
    async with clients(server.ws_url, 1) as (a,):
        joined = await a.join("r")
        assert isinstance(joined["from"], str) and joined["from"]
        assert joined["members"] == [joined["from"]]


@pytest.mark.parametrize("kind,extra", [
    ("offer", {"sdp": SDP}),
    ("answer", {"sdp": {"type": "answer", "sdp": "v=0\r\n"}}),
    ("candidate", {"candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
                                 "sdpMid": "0", "sdpMLineIndex": 0}}),
    ("candidate", {"candidate": None}),
    ("hangup", {}),
])
async def test_signaling_is_relayed_with_server_set_from(server: Running, kind: str,
                                                         extra: dict[str, object]) -> None:
    async with clients(server.ws_url, 2) as (a, b):
        await a.join("r", "alice")
        await b.join("r", "bob")
        await a.expect("room_members")
        await a.send({"type": kind, "to": "bob", "from": "mallory", **extra})
        assert await b.recv() == {"type": kind, "room": "r", "from": "alice", "to": "bob",
                                  **extra}


async def test_ping_pong_and_leave(server: Running) -> None:
    async with clients(server.ws_url, 2) as (a, b):
        await a.send({"type": "ping"})
        assert await a.recv() == {"type": "pong"}
        await a.join("r", "alice")
        await b.join("r", "bob")
        await a.expect("room_members")
        await b.send({"type": "leave"})
        assert await a.recv() == {"type": "room_members", "room": "r", "members": ["alice"]}
        assert await b.sync() == []
        await a.send({"type": "leave"})
        assert await a.sync() == []
        assert server.rooms.room_ids() == ()


async def test_disconnect_leaves_and_last_member_deletes_room(server: Running) -> None:
    a = await WsClient.connect(server.ws_url)
    b = await WsClient.connect(server.ws_url)
    try:
        await a.join("r", "alice")
        await b.join("r", "bob")
        await a.expect("room_members")
        await b.close()
        assert (await a.expect("room_members"))["members"] == ["alice"]
        await a.close()
        async with clients(server.ws_url, 1) as (c,):
            assert (await c.join("r", "carol"))["members"] == ["carol"]
    finally:
        await a.close()


async def test_messages_never_cross_rooms(server: Running) -> None:
    async with clients(server.ws_url, 3) as (a, b, c):
        await a.join("one", "alice")
        await b.join("two", "bob")
        await c.join("one", "carol")
        await a.expect("room_members")
        await a.send({"type": "hangup", "to": "bob"})
        err = await a.expect("error")
        assert err["code"] == "peer_not_found"
        assert await b.sync() == []
        await a.send({"type": "hangup", "to": "carol"})
        assert (await c.recv())["from"] == "alice"


async def test_resume_token_takes_the_place_back(server: Running) -> None:
    async with clients(server.ws_url, 3) as (a, b, a2):
        joined = await a.join("r", "alice")
        await b.join("r", "bob")
        await a.expect("room_members")
        # the stale connection is still open; a stranger cannot take the ID
        await b.send({"type": "leave"})
        await a.expect("room_members")
        await b.send({"type": "join", "room": "r", "from": "alice"})
        err = await b.expect("error")
        assert err["code"] == "id_taken"
        await b.send({"type": "join", "room": "r", "from": "alice", "token": "wrong"})
        assert (await b.expect("error"))["code"] == "id_taken"
        # the owner comes back with its token: the stale connection is closed with 4001
        resumed = await a2.join("r", "alice", token=joined["token"])
        assert resumed["type"] == "joined" and resumed["token"] == joined["token"]
        assert resumed["members"] == ["alice"]
        code, _ = await a.closed()
        assert code == 4001
        # the resumed connection is the member now: relays reach it
        await b.join("r", "bob")
        assert (await a2.expect("room_members"))["members"] == ["alice", "bob"]
        await b.send({"type": "hangup", "to": "alice"})
        assert (await a2.recv())["type"] == "hangup"


async def test_stale_connection_close_does_not_remove_the_resumed_member(server: Running
                                                                          ) -> None:
    a = await WsClient.connect(server.ws_url)
    async with clients(server.ws_url, 2) as (a2, b):
        joined = await a.join("r", "alice")
        await b.join("r", "bob")
        await a2.join("r", "alice", token=joined["token"])
        await a.closed()
        await a.close()
        assert (await b.expect("room_members"))["members"] == ["alice", "bob"]
        assert await b.sync() == []
        assert server.rooms.members("r") == ("alice", "bob")


ERROR_CASES = [
    ("not json", "bad_message"),
    ("[1, 2]", "bad_message"),
    ('"text"', "bad_message"),
    ("12345678901234567890123456789012345678901234567890", "bad_message"),
    ("{}", "missing_field"),
    ('{"type": 7}', "invalid_field"),
    ('{"type": "dance"}', "unknown_type"),
    ('{"type": "join"}', "missing_field"),
    ('{"type": "join", "room": 5}', "invalid_field"),
    ('{"type": "join", "room": ""}', "invalid_id"),
    ('{"type": "join", "room": "a\\u0000b"}', "invalid_id"),
    ('{"type": "join", "room": " padded"}', "invalid_id"),
    ('{"type": "join", "room": "r", "from": 9}', "invalid_field"),
    ('{"type": "join", "room": "r", "token": 9}', "invalid_field"),
    ('{"type": "offer", "sdp": {"type": "offer", "sdp": "v=0"}}', "missing_field"),
    ('{"type": "offer", "to": 5, "sdp": {"type": "offer", "sdp": "v=0"}}', "invalid_field"),
    ('{"type": "offer", "to": "b"}', "missing_field"),
    ('{"type": "offer", "to": "b", "sdp": "v=0"}', "invalid_sdp"),
    ('{"type": "offer", "to": "b", "sdp": {"type": "nope", "sdp": "v=0"}}', "invalid_sdp"),
    ('{"type": "answer", "to": "b", "sdp": {"type": "answer", "sdp": "hello"}}', "invalid_sdp"),
    ('{"type": "candidate", "to": "b"}', "missing_field"),
    ('{"type": "candidate", "to": "b", "candidate": 5}', "invalid_field"),
    ('{"type": "candidate", "to": "b", "candidate": {"sdpMLineIndex": "x"}}', "invalid_field"),
    ('{"type": "candidate", "to": "b", "candidate": {"sdpMid": 1}}', "invalid_field"),
    ('{"type": "hangup", "to": "b"}', "not_in_room"),
    ('{"type": "leave"}', "not_in_room"),
]


@pytest.mark.parametrize("frame,code", ERROR_CASES)
async def test_malformed_frames_get_errors_and_change_nothing(server: Running, frame: str,
                                                              code: str) -> None:
    async with clients(server.ws_url, 2) as (bad, good):
        await good.join("r", "good")
        await bad.send_raw(frame)
        err = await bad.expect("error")
        assert err["code"] == code, err
        assert err["error"] == err["message"] and err["error"]
        # the connection survives and the bystander saw nothing
        assert await bad.sync() == []
        assert await good.sync() == []
        assert server.rooms.members("r") == ("good",)


async def test_binary_and_invalid_utf8_frames(server: Running) -> None:
    async with clients(server.ws_url, 1) as (c,):
        await c.send_raw(b'{"type": "ping"}')
        assert (await c.expect("error"))["code"] == "bad_message"
        assert await c.sync() == []


async def test_relay_errors_in_room(server: Running) -> None:
    async with clients(server.ws_url, 1) as (a,):
        await a.join("r", "alice")
        await a.send({"type": "hangup", "to": "alice"})
        assert (await a.expect("error"))["code"] == "invalid_field"
        await a.send({"type": "hangup", "to": "ghost"})
        assert (await a.expect("error"))["code"] == "peer_not_found"
        await a.send({"type": "join", "room": "other", "from": "alice"})
        assert (await a.expect("error"))["code"] == "already_in_room"


async def test_join_then_offer_back_to_back_keeps_order(server: Running) -> None:
    async with clients(server.ws_url, 2) as (a, b):
        await b.join("r", "bob")
        await a.send({"type": "join", "room": "r", "from": "alice"})
        await a.send({"type": "offer", "to": "bob", "sdp": SDP})
        assert (await a.recv())["type"] == "joined"
        assert (await b.expect("room_members"))["members"] == ["bob", "alice"]
        assert (await b.expect("offer"))["from"] == "alice"


async def test_limits_crossed_by_one() -> None:
    async with (running(max_rooms=2, max_room_members=2, max_id_length=8) as srv,
                clients(srv.ws_url, 5) as (a, b, c, d, e)):
        await a.join("r1", "a")
        await b.join("r1", "b")
        await c.send({"type": "join", "room": "r1", "from": "c"})
        err = await c.expect("error")
        assert err["code"] == "room_full" and "2 members" in err["error"]
        await c.join("r2", "c")
        await d.send({"type": "join", "room": "r3", "from": "d"})
        assert (await d.expect("error"))["code"] == "too_many_rooms"
        await e.send({"type": "join", "room": "r2", "from": "x" * 9})
        assert (await e.expect("error"))["code"] == "invalid_id"
        await e.send({"type": "join", "room": "y" * 9, "from": "e"})
        assert (await e.expect("error"))["code"] == "invalid_id"
        assert (await e.join("r2", "x" * 8))["members"] == ["c", "x" * 8]


async def test_a_half_open_holder_loses_its_id_to_a_newcomer() -> None:
    # a seed-000 client has no resume token: after a network change it reconnects with the
    # same ID while its old socket is often still half-open
    clock = FakeClock()
    async with running(clock=clock) as srv:
        old, _ = await RawWs.open(srv.port, "/ws/rooms")
        await old.send(0x1, b'{"type":"join","room":"r","from":"alice"}')
        assert (await old.recv())[1].startswith(b'{"type":"joined"')
        assert (await old.recv())[1].startswith(b'{"type":"room_members"')
        # from now on the old socket answers nothing
        async with clients(srv.ws_url + "/rooms", 1) as (new,):
            await new.send({"type": "join", "room": "r", "from": "alice"})
            assert await old.recv() == (0x9, b"probe")  # the server pings the holder at once
            clock.advance(srv.hub.config.limits.id_probe_timeout)
            joined = await new.expect("joined")
            assert (joined["from"], joined["members"]) == ("alice", ["alice"])
            assert srv.rooms.members("r") == ("alice",)
            await new.expect("room_members")
        assert await old.close_code() == 4001
        old.close()


async def test_a_live_holder_keeps_its_id() -> None:
    async with running() as srv, clients(srv.ws_url + "/rooms", 2) as (holder, newcomer):
        await holder.join("r", "bob")  # its client answers pings (aiohttp's autoping)
        await newcomer.send({"type": "join", "room": "r", "from": "bob"})
        assert (await newcomer.expect("error"))["code"] == "id_taken"
        assert await holder.sync() == []
        assert srv.rooms.members("r") == ("bob",)
