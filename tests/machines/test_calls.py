"""Call rooms (seed 003) as a state machine on /ws: SFU and mesh joins, chat lines to the
room, participants' own media state, requests a guest may not make, leaves, junk and
reconnections from four clients over real sockets (see tests/machines/base.py). The
peer connections themselves are left to tests/calls (aiortc) and tests/e2e (Chromium):
here no client negotiates media, so every chat line goes over the sockets."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from tests.machines.base import JUNK, SETTINGS, LoopMachine, bursts
from tests.support import WsClient

CLIENTS = 4
ROOMS = ("c1", "c2")
IDS = ("a", "b", "c")
clients = st.integers(0, CLIENTS - 1)
# each is refused with one error whatever the client's state: not in a room, a mesh room
# (an SFU request), or an SFU room where a dev server's guest may not do it
REFUSED = [
    {"type": "subscribe", "track_id": "no-such-track"},
    {"type": "unsubscribe", "track_id": "no-such-track"},
    {"type": "set_quality", "track_id": "no-such-track", "quality": "ultra"},
    {"type": "mute", "participant": "a", "kind": "audio"},
    {"type": "unmute", "participant": "b", "kind": "video"},
    {"type": "record", "action": "start"},
    {"type": "record", "action": "dance"},
    {"type": "media_state", "audio": "off"},
    {"type": "chat", "text": ""},
    {"type": "chat", "text": "x" * 5000},
    {"type": "sfu_answer", "sdp": {"type": "answer", "sdp": "v=0\r\n"}},
    {"type": "sfu_offer", "sdp": {"type": ["offer"], "sdp": "v=0\r\n"}},
    {"type": "publish", "track_id": 7, "source": "camera"},
]
# broadcasts a participant may receive about its own room
ROOM_STATE = ("participants", "tracks", "active_speaker", "recording", "room_members")


class CallsMachine(LoopMachine):
    """Who is where (room, id, topology) is learned from the server's answers; which
    chat lines may arrive is decided by where everyone was when each was sent."""

    dialect = "calls"

    def __init__(self) -> None:
        super().__init__()
        self.ws: list[WsClient] = [self.run(WsClient.connect(self.srv.ws_url))
                                   for _ in range(CLIENTS)]
        self.where: list[tuple[str, str, str] | None] = [None] * CLIENTS
        self.expected: Counter[tuple[str, int]] = Counter()   # (tag, recipient)
        self.errors_due = [0] * CLIENTS

    def overrides(self) -> dict[str, Any]:
        return {**super().overrides(), "max_room_members": 3}

    async def close_clients(self) -> None:
        for ws in self.ws:
            await ws.close()

    @rule(c=clients, room=st.sampled_from(ROOMS), member=st.sampled_from(IDS),
          topology=st.sampled_from(("sfu", "mesh", None)))
    def join(self, c: int, room: str, member: str, topology: str | None) -> None:
        frame: dict[str, Any] = {"type": "join", "room": room, "from": member}
        if topology is not None:
            frame["topology"] = topology
        self.run(self.ws[c].send(frame))
        self.sent()
        reply = self.run(self.ws[c].recv())
        if reply["type"] == "joined":
            assert self.where[c] is None, f"client {c} joined twice: {reply}"
            assert topology in (None, reply["topology"]), reply
            self.where[c] = (room, member, reply["topology"])
        else:
            assert reply["type"] == "error" and isinstance(reply["code"], str), reply
        self.settle()

    @rule(c=clients, n=bursts)
    def chat(self, c: int, n: int) -> None:
        place = self.where[c]
        for _ in range(n):
            tag = self.tag()
            if place is None:
                self.errors_due[c] += 1
            else:
                for other, there in enumerate(self.where):
                    if other != c and there is not None and there[0] == place[0]:
                        self.expected[(tag, other)] += 1
            self.run(self.ws[c].send({"type": "chat", "text": tag}))
        self.sent(n)
        self.settle()

    @rule(c=clients, audio=st.booleans(), video=st.booleans())
    def media_state(self, c: int, audio: bool, video: bool) -> None:
        place = self.where[c]
        if place is not None and place[2] != "sfu":
            return    # a mesh room's state is the browsers' own business
        if place is None:
            self.errors_due[c] += 1
        self.run(self.ws[c].send({"type": "media_state", "audio": audio, "video": video}))
        self.sent()
        self.settle()

    @rule(c=clients, frame=st.sampled_from(REFUSED), n=bursts)
    def refused(self, c: int, frame: dict[str, Any], n: int) -> None:
        for _ in range(n):
            self.run(self.ws[c].send(frame))
        self.sent(n)
        self.errors_due[c] += n
        self.settle()

    @rule(c=clients)
    def leave(self, c: int) -> None:
        self.run(self.ws[c].send({"type": "leave"}))
        self.sent()
        if self.where[c] is None:
            self.errors_due[c] += 1   # not_in_room
        self.where[c] = None
        self.settle()

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
        self.ws[c] = self.run(WsClient.connect(self.srv.ws_url))
        self.settle()

    def settle(self) -> None:
        """Every client round-trips a ping; check what each received before its pong."""
        seen = self.run(self.sync_all())
        for c, frames in enumerate(seen):
            for msg in frames:
                kind = msg.get("type")
                place = self.where[c]
                if kind == "error":
                    assert isinstance(msg.get("code"), str) and msg["code"], msg
                    assert self.errors_due[c] > 0, f"client {c} got an unasked error {msg}"
                    self.errors_due[c] -= 1
                elif kind == "chat":
                    key = (str(msg.get("text")), c)
                    assert self.expected[key] > 0, \
                        f"client {c} at {place} got {msg} (not meant for it, or twice)"
                    self.expected[key] -= 1
                    assert place is None or msg.get("room") == place[0], msg
                else:
                    assert kind in ROOM_STATE, f"client {c} got {msg}"
                    room = msg.get("room")
                    assert room is None or place is None or room == place[0], \
                        f"client {c} in {place} told about room {room}: {msg}"
        assert not +self.expected, f"chat lines never delivered: {+self.expected}"
        assert self.errors_due == [0] * CLIENTS, f"errors never sent: {self.errors_due}"

    async def sync_all(self) -> list[list[dict[str, Any]]]:
        return list(await asyncio.gather(*(ws.sync() for ws in self.ws)))

    @invariant()
    def connections_stay_open(self) -> None:
        for ws in self.ws:
            assert not ws.ws.closed


CallsMachine.TestCase.settings = SETTINGS
TestCalls = CallsMachine.TestCase
