"""Plain mesh members hold seats, not call-room records, until something asks for them
(rtchub.features.calls.seats), and seed 003's API sees them exactly as before: real
servers, real WebSocket clients on the /ws fast path."""

from __future__ import annotations

import aiohttp

from rtchub.features.calls.routes import CALLS
from rtchub.features.calls.service import CallService
from tests.support import Running, WsClient, clients, running


def _calls(srv: Running) -> CallService:
    calls: CallService = srv.server.app[CALLS]
    return calls


async def _metric(srv: Running, name: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{srv.url}/metrics") as resp:
        text = await resp.text()
    return "\n".join(line for line in text.splitlines() if line.startswith(name))


async def test_plain_joins_take_seats_and_the_api_still_lists_them() -> None:
    async with running() as srv, clients(srv.ws_url, 3) as (a, b, c):
        calls = _calls(srv)
        await a.join("r", "alice")
        await b.join("r", "bob")
        await a.expect("room_members")
        assert calls.pending("r") == ("alice", "bob")
        assert calls.has_participant("r", "bob") and not calls.has_participant("r", "carol")
        # counted for the metrics without making any record
        assert 'rtchub_call_rooms{rooms="mesh"} 1.0' in await _metric(
            srv, "rtchub_call_rooms")
        assert "rtchub_call_participants 2.0" in await _metric(srv, "rtchub_call_participants")
        assert calls.pending("r") == ("alice", "bob")
        # seed 003's GetParticipants: made now, as the joins would have made them
        people = calls.participants("r")
        assert [p.id for p in people] == ["alice", "bob"]
        assert [(p.display_name, p.metadata, p.audio, p.video, p.screen) for p in people] \
            == [("alice", {}, True, True, False), ("bob", {}, True, True, False)]
        assert 0 < people[0].joined_at <= people[1].joined_at
        assert people[1].grants.identity == "bob" and not people[1].grants.admin
        assert calls.pending("r") == ()
        # a room with records: a newcomer gets its record at once
        await c.join("r", "carol")
        assert [p.id for p in calls.participants("r")] == ["alice", "bob", "carol"]
        assert calls.participant_count() == 3


async def test_a_call_frame_from_a_seated_member_makes_the_records() -> None:
    async with running() as srv, clients(srv.ws_url, 2) as (a, b):
        calls = _calls(srv)
        await a.join("r", "alice")
        await b.join("r", "bob")
        await a.expect("room_members")
        await b.send({"type": "media_state", "audio": False, "screen": True})
        await b.sync()
        assert calls.pending("r") == ()
        bob = calls.participant("r", "bob")
        assert (bob.audio, bob.video, bob.screen) == (False, True, True)
        # SFU requests in a mesh room are refused, seated or not
        await a.send({"type": "subscribe", "track_id": "x"})
        assert (await a.expect("error"))["code"] == "sfu_not_enabled"


async def test_an_sfu_request_from_a_seated_member_is_refused_without_records() -> None:
    async with running() as srv, clients(srv.ws_url, 1) as (a,):
        calls = _calls(srv)
        await a.join("r", "alice")
        await a.send({"type": "subscribe", "track_id": "x"})
        assert (await a.expect("error"))["code"] == "sfu_not_enabled"
        assert calls.pending("r") == ("alice",)


async def test_a_call_aware_join_into_a_seated_room_keeps_the_join_order() -> None:
    async with running() as srv, clients(srv.ws_url, 3) as (a, b, c):
        calls = _calls(srv)
        await a.join("r", "alice")
        await b.join("r", "bob")
        joined = await c.join("r", "carol", display_name="Carol")
        assert [p["id"] for p in joined["participants"]] == ["alice", "bob", "carol"]
        assert joined["participants"][2]["display_name"] == "Carol"
        assert calls.pending("r") == ()
        # an explicit topology is call-aware too; another topology is refused
        async with clients(srv.ws_url, 2) as (d, e):
            await d.join("s", "dave")
            assert calls.pending("s") == ("dave",)
            await e.send({"type": "join", "room": "s", "from": "eve", "topology": "sfu"})
            assert (await e.expect("error"))["code"] == "topology_mismatch"
            assert calls.pending("s") == ("dave",)


async def test_seats_go_with_their_connections_and_the_room_with_the_last() -> None:
    async with running() as srv, clients(srv.ws_url, 2) as (a, b):
        calls = _calls(srv)
        await a.join("r", "alice")
        await b.join("r", "bob")
        await a.expect("room_members")
        await b.close()
        assert (await a.expect("room_members"))["members"] == ["alice"]
        await a.sync()
        assert calls.pending("r") == ("alice",)
        assert calls.participant_count() == 1
        await a.send({"type": "leave"})
        await a.sync()
        assert not calls.holds("r")
        assert calls.participant_count() == 0
        assert calls.room_counts() == {"mesh": 0, "sfu": 0}


async def test_a_resumed_member_keeps_one_seat_on_its_new_connection() -> None:
    async with running() as srv:
        calls = _calls(srv)
        a = await WsClient.connect(srv.ws_url)
        try:
            joined = await a.join("r", "alice")
            async with clients(srv.ws_url, 1) as (again,):
                resumed = await again.join("r", "alice", token=joined["token"])
                assert resumed["type"] == "joined"
                code, _ = await a.closed()
                assert code == 4001   # replaced by the resumed connection
                await again.sync()
                assert calls.pending("r") == ("alice",)
                # the seat follows the new connection: its call frames reach the room
                await again.send({"type": "media_state", "video": False})
                await again.sync()
                assert [(p.id, p.video) for p in calls.participants("r")] \
                    == [("alice", False)]
        finally:
            await a.close()
