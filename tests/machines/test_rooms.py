"""Rooms (seed 000) as a state machine: joins, leaves, relays to members and strangers,
junk and reconnections from four clients over real sockets (see tests/machines/base.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from tests.machines.base import JUNK, SETTINGS, LoopMachine, bursts
from tests.support import WsClient

CLIENTS = 4
ROOMS = ("r1", "r2")
IDS = ("a", "b", "c")
clients = st.integers(0, CLIENTS - 1)


class RoomsMachine(LoopMachine):
    """Who is where is learned from the server's own answers; what may arrive is decided
    by where everyone was when a frame was sent."""

    dialect = "rooms"

    def __init__(self) -> None:
        super().__init__()
        self.ws: list[WsClient] = [self.run(WsClient.connect(self.srv.ws_url + "/rooms"))
                                   for _ in range(CLIENTS)]
        self.where: list[tuple[str, str] | None] = [None] * CLIENTS
        self.expected: dict[str, int] = {}   # tag -> the client that must get it
        # a hangup is relayed as {type, from} only: counted per (recipient, sender ID)
        self.hangups: Counter[tuple[int, str]] = Counter()
        self.errors_due = [0] * CLIENTS

    def overrides(self) -> dict[str, Any]:
        return {**super().overrides(), "max_room_members": 3}

    async def close_clients(self) -> None:
        for ws in self.ws:
            await ws.close()

    def holder(self, room: str, member: str) -> int | None:
        for i, place in enumerate(self.where):
            if place == (room, member):
                return i
        return None

    @rule(c=clients, room=st.sampled_from(ROOMS), member=st.sampled_from(IDS))
    def join(self, c: int, room: str, member: str) -> None:
        self.run(self.ws[c].send({"type": "join", "room": room, "from": member}))
        self.sent()
        reply = self.run(self.ws[c].recv())
        if reply["type"] == "joined":
            self.where[c] = (room, member)
        else:
            assert reply["type"] == "error" and isinstance(reply["code"], str), reply
        self.settle()

    @rule(c=clients)
    def leave(self, c: int) -> None:
        self.run(self.ws[c].send({"type": "leave"}))
        self.sent()
        if self.where[c] is None:
            self.errors_due[c] += 1   # not_in_room
        self.where[c] = None
        self.settle()

    @rule(c=clients, kind=st.sampled_from(("offer", "answer", "candidate", "hangup")),
          to=st.sampled_from(IDS), n=bursts)
    def relay(self, c: int, kind: str, to: str, n: int) -> None:
        for _ in range(n):
            self.relay_one(c, kind, to)
        self.settle()

    def relay_one(self, c: int, kind: str, to: str) -> None:
        tag = self.tag()
        body: dict[str, Any] = {"type": kind, "to": to, "tag": tag}
        if kind in ("offer", "answer"):
            body["sdp"] = {"type": kind, "sdp": f"v=0\r\na=tag:{tag}\r\n"}
        elif kind == "candidate":
            body["candidate"] = {"candidate": "", "sdpMid": tag}
        place = self.where[c]
        target = self.holder(place[0], to) if place is not None else None
        if target is not None and target != c and place is not None:
            if kind == "hangup":
                self.hangups[(target, place[1])] += 1
            else:
                self.expected[tag] = target
        else:
            self.errors_due[c] += 1   # not in a room, or nobody by that ID there
        self.run(self.ws[c].send(body))
        self.sent()

    @rule(c=clients, junk=JUNK, n=bursts)
    def junk(self, c: int, junk: str, n: int) -> None:
        for _ in range(n):
            self.run(self.ws[c].send_raw(junk))
        self.sent(n)
        self.errors_due[c] += n
        self.settle()

    @rule(c=clients)
    def reconnect(self, c: int) -> None:
        self.run(self.ws[c].close())
        self.where[c] = None
        self.ws[c] = self.run(WsClient.connect(self.srv.ws_url + "/rooms"))
        self.settle()

    def settle(self) -> None:
        """Every client round-trips a ping; check what each received before its pong."""
        seen = self.run(self.sync_all())
        for c, frames in enumerate(seen):
            for msg in frames:
                kind = msg.get("type")
                if kind == "error":
                    assert isinstance(msg.get("code"), str) and msg["code"], msg
                    assert self.errors_due[c] > 0, f"client {c} got an unasked error {msg}"
                    self.errors_due[c] -= 1
                elif kind == "hangup":
                    key = (c, str(msg.get("from")))
                    assert self.hangups[key] > 0, f"client {c} got {msg} (meant for another)"
                    self.hangups[key] -= 1
                elif "tag" in msg or kind in ("offer", "answer", "candidate"):
                    tag = self.tag_of(msg)
                    assert self.expected.pop(tag, None) == c, \
                        f"client {c} at {self.where[c]} got {msg} (meant for another)"
                else:
                    assert kind in ("room_members", "joined", "left", "peer_left",
                                    "member_left", "member_joined"), msg
                    room, place = msg.get("room"), self.where[c]
                    assert room is None or place is None or room == place[0], \
                        f"client {c} in {place} told about room {room}: {msg}"
        assert not self.expected, f"relays never delivered: {self.expected}"
        assert not +self.hangups, f"hangups never delivered: {+self.hangups}"
        assert self.errors_due == [0] * CLIENTS, f"errors never sent: {self.errors_due}"

    async def sync_all(self) -> list[list[dict[str, Any]]]:
        return list(await asyncio.gather(*(ws.sync() for ws in self.ws)))

    @staticmethod
    def tag_of(msg: dict[str, Any]) -> str:
        if "tag" in msg:
            return str(msg["tag"])
        sdp = msg.get("sdp")
        if isinstance(sdp, dict):
            return str(sdp["sdp"]).split("a=tag:")[1].split("\r")[0]
        return str(msg["candidate"]["sdpMid"])

    @invariant()
    def connections_stay_open(self) -> None:
        for ws in self.ws:
            assert not ws.ws.closed


RoomsMachine.TestCase.settings = SETTINGS
TestRooms = RoomsMachine.TestCase
