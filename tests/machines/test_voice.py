"""Voice (seed 002) signaling as a state machine on /ws, where it shares connections with
the rooms dialect: requests the server must refuse, requests it answers, quiet ones and
junk from three clients over real sockets (see tests/machines/base.py). Answers go to the
asker only; media is left to tests/voice and benchmarks/voice_soak.py."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from tests.machines.base import JUNK, SETTINGS, LoopMachine, bursts
from tests.support import WsClient

CLIENTS = 3
clients = st.integers(0, CLIENTS - 1)
REFUSED = [
    {"type": "start_receiving", "stream_id": "nope"},
    {"type": "webrtc_answer", "answer": {"type": "answer", "sdp": "v=0\r\n"}},
    {"type": "webrtc_offer", "offer": {"type": "offer", "sdp": "v=0\r\n"}},
    {"type": "webrtc_offer", "offer": {"type": ["offer"], "sdp": "v=0\r\n"}},
    {"type": "ice_candidate", "candidate": 7},
    {"type": "start_sending", "name": 7},
    {"type": "start_receiving", "stream_id": {"x": 1}},
]
QUIET = [
    {"type": "local_ip", "ip": "10.0.0.1"},
    {"type": "stop_stream"},
    {"type": "ice_candidate", "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 "
                                                         "typ host", "sdpMid": "0"}},
    {"type": "ice_candidate", "candidate": None},
]


class VoiceMachine(LoopMachine):
    """What each client asked for, and so what it (and only it) must hear."""

    dialect = "voice"

    def __init__(self) -> None:
        super().__init__()
        self.ws = [self.run(WsClient.connect(self.srv.ws_url)) for _ in range(CLIENTS)]
        self.answers: list[list[str]] = [[] for _ in range(CLIENTS)]
        self.errors_due = [0] * CLIENTS

    def overrides(self) -> dict[str, Any]:
        off = (0, 60.0)
        return {**super().overrides(), "voice_offer_rate": off, "voice_candidate_rate": off}

    async def close_clients(self) -> None:
        for ws in self.ws:
            await ws.close()

    @rule(c=clients, frame=st.sampled_from(REFUSED), n=bursts)
    def refused(self, c: int, frame: dict[str, Any], n: int) -> None:
        for _ in range(n):
            self.run(self.ws[c].send(frame))
        self.sent(n)
        self.errors_due[c] += n
        self.settle()

    @rule(c=clients, frame=st.sampled_from(QUIET))
    def quiet(self, c: int, frame: dict[str, Any]) -> None:
        self.run(self.ws[c].send(frame))
        self.sent()
        self.settle()

    @rule(c=clients)
    def ask_streams(self, c: int) -> None:
        self.run(self.ws[c].send({"type": "get_available_streams"}))
        self.sent()
        self.answers[c].append("available_streams")
        self.settle()

    @rule(c=clients)
    def start_sending(self, c: int) -> None:
        self.run(self.ws[c].send({"type": "start_sending", "name": f"s{c}"}))
        self.sent()
        self.answers[c].append("sender_ready")
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
        self.ws[c] = self.run(WsClient.connect(self.srv.ws_url))
        self.settle()

    def settle(self) -> None:
        seen = self.run(self.sync_all())
        for c, frames in enumerate(seen):
            for msg in frames:
                kind = msg.get("type")
                if kind == "error":
                    assert isinstance(msg.get("code"), str) and msg["code"], msg
                    assert msg.get("message") == msg.get("error"), msg    # seed 002's field
                    assert self.errors_due[c] > 0, f"client {c} got an unasked error {msg}"
                    self.errors_due[c] -= 1
                else:
                    assert self.answers[c] and self.answers[c][0] == kind, \
                        f"client {c} got {msg}, expected {self.answers[c]}"
                    self.answers[c].pop(0)
        assert self.errors_due == [0] * CLIENTS, f"errors never sent: {self.errors_due}"
        assert self.answers == [[] for _ in range(CLIENTS)], self.answers

    async def sync_all(self) -> list[list[dict[str, Any]]]:
        return list(await asyncio.gather(*(ws.sync() for ws in self.ws)))

    @invariant()
    def connections_stay_open(self) -> None:
        for ws in self.ws:
            assert not ws.ws.closed


VoiceMachine.TestCase.settings = SETTINGS
TestVoice = VoiceMachine.TestCase
