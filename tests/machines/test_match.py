"""Matchmaking (seed 001) as a state machine: requests, "next", stops, relays to partners
and to strangers, forged and unknown event names and reconnections from four Socket.IO
clients over real sockets (see tests/machines/base.py). A relayed event may reach only the
sender's partner of the moment; who is matched with whom is learned from match-done."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from tests.machines.base import SETTINGS, LoopMachine, bursts
from tests.match.support import SioClient

CLIENTS = 4
clients = st.integers(0, CLIENTS - 1)
FORGED = ("disconnect", "connect", "*", "connect_error", "message", "no-such-event")


class MatchMachine(LoopMachine):
    """Partners as the server announced them; relays checked against them."""

    dialect = "match"

    def __init__(self) -> None:
        super().__init__()
        self.sio = [self.run(SioClient().connect(self.srv.url)) for _ in range(CLIENTS)]
        self.partner: list[int | None] = [None] * CLIENTS
        self.room: list[str | None] = [None] * CLIENTS
        self.expected: dict[str, int] = {}
        self.errors_due = [0] * CLIENTS

    def overrides(self) -> dict[str, Any]:
        off = (0, 60.0)
        return {**super().overrides(), "match_request_rate": off, "match_message_rate": off,
                "match_offer_rate": off, "match_candidate_rate": off}

    async def close_clients(self) -> None:
        for client in self.sio:
            await client.close()

    def index(self, sid: str) -> int:
        return [c.sid for c in self.sio].index(sid)

    @rule(c=clients)
    def request(self, c: int) -> None:
        room, partner = self.room[c], self.partner[c]
        self.run(self.sio[c].request(f"user{c}", room_id=room))
        self.sent()
        self.part(c, partner)    # "next": the room ends, the partner is told
        self.settle()

    def part(self, c: int, partner: int | None) -> None:
        self.partner[c] = self.room[c] = None
        if partner is not None:
            self.partner[partner] = self.room[partner] = None
            self.expected[f"stopped/{partner}"] = partner

    @rule(c=clients, kind=st.sampled_from(("offer", "answer", "candidate", "chat")),
          stranger=st.booleans(), to=clients, n=bursts)
    def relay(self, c: int, kind: str, stranger: bool, to: int, n: int) -> None:
        for _ in range(n):
            self.relay_one(c, kind, stranger, to)
        self.settle()

    def relay_one(self, c: int, kind: str, stranger: bool, to: int) -> None:
        tag = self.tag()
        partner = self.partner[c]
        target = to if stranger or partner is None else partner
        room = self.room[c] or "no-room"
        sid = self.sio[target].sid
        if kind == "offer":
            event, data = "negotiation-call-offer", {
                "offer": {"type": "offer", "sdp": f"v=0\r\na=tag:{tag}\r\n"},
                "roomId": room, "remoteSocketId": sid}
        elif kind == "answer":
            event, data = "negotiation-call-answer", {
                "ans": {"type": "answer", "sdp": f"v=0\r\na=tag:{tag}\r\n"},
                "roomId": room, "remoteSocketId": sid}
        elif kind == "candidate":
            event, data = "send-new-ice-candidates", {
                "to": sid, "candidate": {"candidate": "", "sdpMid": tag}}
        else:
            event, data = "newMessage", {"message": tag, "roomId": room, "remoteSocket": sid}
        if partner is not None and target == partner:
            self.expected[tag] = target
            if kind == "chat":
                self.expected[tag + "/echo"] = c
        else:
            self.errors_due[c] += 1
        self.run(self.sio[c].emit(event, data))
        self.sent()

    @rule(c=clients)
    def stop(self, c: int) -> None:
        self.run(self.sio[c].emit("stop-call"))
        self.sent()
        self.part(c, self.partner[c])
        self.settle()

    @rule(c=clients, name=st.sampled_from(FORGED), victim=clients)
    def forged(self, c: int, name: str, victim: int) -> None:
        args = [self.sio[victim].sid, {}] if name == "*" else [{"x": 1}]
        self.run(self.sio[c].sio.emit(name, args[0] if len(args) == 1 else tuple(args)))
        self.sent()
        self.errors_due[c] += 1
        self.settle()

    @rule(c=clients, payload=st.one_of(st.none(), st.integers(), st.text(max_size=5),
                                       st.just({"name": 7}), st.just({"to": 1})))
    def bad_payload(self, c: int, payload: Any) -> None:
        event = "request-room" if isinstance(payload, dict) and "name" in payload \
            else "send-new-ice-candidates"
        self.run(self.sio[c].sio.emit(event, payload))
        self.sent()
        self.errors_due[c] += 1
        self.settle()

    @rule(c=clients)
    def reconnect(self, c: int) -> None:
        partner = self.partner[c]
        self.run(self.sio[c].close())
        self.sio[c] = self.run(SioClient().connect(self.srv.url))
        self.part(c, partner)
        self.settle()

    def settle(self) -> None:
        seen = self.run(self.sync_all())
        for c, events in enumerate(seen):
            for event, data in events:
                self.check(c, event, data)
        assert not self.expected, f"never delivered: {self.expected}"
        assert self.errors_due == [0] * CLIENTS, f"errors never sent: {self.errors_due}"
        for c, p in enumerate(self.partner):
            assert p is None or self.partner[p] == c, (c, self.partner)

    def check(self, c: int, event: str, data: Any) -> None:
        if event == "error":
            assert isinstance(data, dict) and isinstance(data.get("code"), str), data
            if data["code"] == "not_in_room" and data.get("event") == "stop-call":
                return     # stop-call while not matched: allowed to say so
            assert self.errors_due[c] > 0, f"client {c} got an unasked error {data}"
            self.errors_due[c] -= 1
        elif event == "match-done":
            other = self.index(data["remoteUserDetails"]["socket"])
            assert other != c and self.partner[other] in (None, c), (c, other, self.partner)
            self.partner[c], self.room[c] = other, data["roomId"]
        elif event == "stop-by-remote-user":
            assert self.expected.pop(f"stopped/{c}", None) == c, \
                f"client {c} told stop-by-remote-user, and its partner did not leave"
        elif event == "Message:recived":
            tag = str(data["message"])
            key = tag + "/echo" if data["from"] == self.sio[c].sid else tag
            assert self.expected.pop(key, None) == c, f"client {c} got chat {data}"
        else:
            assert event in ("negotiation-call-offer", "negotiation-call-answer",
                             "new-ice-candidates"), (event, data)
            tag = self.tag_of(event, data)
            assert self.expected.pop(tag, None) == c, f"client {c} got {event} {data}"

    @staticmethod
    def tag_of(event: str, data: dict[str, Any]) -> str:
        if event == "new-ice-candidates":
            return str(data["candidate"]["sdpMid"])
        desc = data["offer"] if event == "negotiation-call-offer" else data["ans"]
        return str(desc["sdp"]).split("a=tag:")[1].split("\r")[0]

    async def sync_all(self) -> list[list[tuple[str, Any]]]:
        return list(await asyncio.gather(*(client.sync() for client in self.sio)))

    @invariant()
    def connections_stay_open(self) -> None:
        for client in self.sio:
            assert client.sio.connected and not client.disconnected.is_set()


MatchMachine.TestCase.settings = SETTINGS
TestMatch = MatchMachine.TestCase
