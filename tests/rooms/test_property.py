"""Property test: random frames and random join/leave/relay/disconnect sequences.

A model predicts, for every action, exactly which frames every client receives.
After each action every client syncs (ping -> pong), and what it received must
equal the prediction. So: membership is always what the joins and leaves imply,
no message reaches anyone outside the sender's room, nothing crashes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import Running, WsClient, running

CLIENTS = 4
ROOMS = ("r1", "r2", "r3")
IDS = ("a", "b", "c")
MAX_ROOMS = 2
MAX_MEMBERS = 2

Action = tuple[str, int, Any]

actions = st.one_of(
    st.tuples(st.just("join"), st.integers(0, CLIENTS - 1),
              st.tuples(st.sampled_from(ROOMS), st.sampled_from(IDS))),
    st.tuples(st.just("leave"), st.integers(0, CLIENTS - 1), st.none()),
    st.tuples(st.just("relay"), st.integers(0, CLIENTS - 1),
              st.tuples(st.sampled_from(("offer", "answer", "candidate", "hangup")),
                        st.sampled_from(IDS))),
    st.tuples(st.just("garbage"), st.integers(0, CLIENTS - 1),
              st.one_of(st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
                        st.dictionaries(st.sampled_from(("type", "room", "to", "from", "sdp")),
                                        st.one_of(st.none(), st.integers(), st.text(max_size=5)),
                                        max_size=4).map(json.dumps))),
    st.tuples(st.just("disconnect"), st.integers(0, CLIENTS - 1), st.none()),
)

BODIES: dict[str, dict[str, Any]] = {
    "offer": {"sdp": {"type": "offer", "sdp": "v=0\r\n"}},
    "answer": {"sdp": {"type": "answer", "sdp": "v=0\r\n"}},
    "candidate": {"candidate": None},
    "hangup": {},
}


@dataclass
class Model:
    """Who is where, in join order."""

    where: dict[int, tuple[str, str]] = field(default_factory=dict)   # client -> (room, id)
    rooms: dict[str, list[int]] = field(default_factory=dict)         # room -> clients

    def ids(self, room: str) -> list[str]:
        return [self.where[c][1] for c in self.rooms.get(room, [])]

    def holder(self, room: str, member: str) -> int | None:
        for c in self.rooms.get(room, []):
            if self.where[c][1] == member:
                return c
        return None

    def remove(self, client: int) -> tuple[str, list[int]] | None:
        if client not in self.where:
            return None
        room, _ = self.where.pop(client)
        self.rooms[room].remove(client)
        if not self.rooms[room]:
            del self.rooms[room]
        return room, list(self.rooms.get(room, []))


def _members(room: str, model: Model) -> dict[str, Any]:
    return {"type": "room_members", "room": room, "members": model.ids(room)}


async def _apply(srv: Running, conns: list[WsClient], model: Model, action: Action
                 ) -> dict[int, list[dict[str, Any]]]:
    kind, who, arg = action
    expect: dict[int, list[dict[str, Any]]] = {i: [] for i in range(CLIENTS)}
    me = conns[who]
    if kind == "join":
        room, member = arg
        await me.send({"type": "join", "room": room, "from": member})
        if who in model.where:
            expect[who].append({"code": "already_in_room"})
        elif model.holder(room, member) is not None:
            expect[who].append({"code": "id_taken"})
        elif room in model.rooms and len(model.rooms[room]) >= MAX_MEMBERS:
            expect[who].append({"code": "room_full"})
        elif room not in model.rooms and len(model.rooms) >= MAX_ROOMS:
            expect[who].append({"code": "too_many_rooms"})
        else:
            model.where[who] = (room, member)
            model.rooms.setdefault(room, []).append(who)
            expect[who].append({"type": "joined", "room": room, "from": member,
                                "members": model.ids(room), "topology": "mesh"})
            for c in model.rooms[room]:
                expect[c].append(_members(room, model))
    elif kind == "leave":
        await me.send({"type": "leave"})
        left = model.remove(who)
        if left is None:
            expect[who].append({"code": "not_in_room"})
        else:
            room, remaining = left
            for c in remaining:
                expect[c].append(_members(room, model))
    elif kind == "relay":
        signal, to = arg
        await me.send({"type": signal, "to": to, "from": "spoof", **BODIES[signal]})
        if who not in model.where:
            expect[who].append({"code": "not_in_room"})
        else:
            room, member = model.where[who]
            target = model.holder(room, to)
            if target is None:
                expect[who].append({"code": "peer_not_found"})
            elif target == who:
                expect[who].append({"code": "invalid_field"})
            else:
                expect[target].append({"type": signal, "room": room, "from": member, "to": to,
                                       **BODIES[signal]})
    elif kind == "garbage":
        await me.send_raw(arg)
        # garbage may or may not be a valid message; only errors are acceptable replies
        expect[who].append({"garbage": True})
    elif kind == "disconnect":
        placed = model.where.get(who)
        if placed is not None and len(model.rooms[placed[0]]) == 1:
            await me.send({"type": "leave"})      # alone: leave first, so the model is exact
            await me.sync()
        await me.close()
        conns[who] = await WsClient.connect(srv.ws_url)
        left = model.remove(who)
        if left is not None:
            room, remaining = left
            for c in remaining:
                expect[c].append(_members(room, model))
    return expect


def _check(client: int, got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    if want and "garbage" in want[0]:
        assert all(g["type"] == "error" and g["code"] != "server_error" for g in got), got
        return
    assert len(got) == len(want), (client, got, want)
    for g, w in zip(got, want, strict=True):
        if "code" in w:
            assert g["type"] == "error" and g["code"] == w["code"], (client, g, w)
        else:
            seen = {k: v for k, v in g.items() if k != "token"}
            assert seen == w, (client, seen, w)


async def _scenario(steps: list[Action]) -> None:
    async with running(max_rooms=MAX_ROOMS, max_room_members=MAX_MEMBERS) as srv:
        conns = list(await asyncio.gather(*(WsClient.connect(srv.ws_url)
                                            for _ in range(CLIENTS))))
        model = Model()
        try:
            for step in steps:
                expect = await _apply(srv, conns, model, step)
                # the actor's pong comes after its action took effect everywhere: sync it first
                actor = step[1]
                for i in (actor, *(c for c in range(CLIENTS) if c != actor)):
                    got = await conns[i].sync()
                    # other-room frames would show up here as unexpected frames
                    _check(i, got, expect[i])
                for room in ROOMS:
                    assert list(srv.rooms.members(room)) == model.ids(room)
        finally:
            await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=4, max_size=30))
def test_random_sequences_keep_the_invariants(steps: list[Action]) -> None:
    asyncio.run(_scenario(steps))
