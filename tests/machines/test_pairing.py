"""Pairing (seed 004) as a state machine: two pairs, relays, mailbox sends and acks, junk and
reconnections over real sockets (see tests/machines/base.py). A frame or a mailbox message
may reach only the other side of its own pair."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from tests.machines.base import JUNK, SETTINGS, LoopMachine, bursts
from tests.pairing.support import post
from tests.support import WsClient

SIDES = ("A", "B")
clients = st.integers(0, 3)   # pair = c // 2, side = SIDES[c % 2]


class PairingMachine(LoopMachine):
    """Sides of two pairs; mail must reach the other side of the same pair only."""

    dialect = "pairing"

    def __init__(self) -> None:
        super().__init__()
        self.apps = [self.run(self.mint()) for _ in range(2)]
        self.ws: list[WsClient] = [self.run(self.connect(c)) for c in range(4)]
        self.expected: dict[str, int] = {}     # relay tag -> recipient client
        self.mail: dict[str, int] = {}         # mail tag -> recipient client
        self.unseen: set[str] = set()          # mail not yet delivered
        self.errors_due = [0] * 4
        self.settle()
        self.background = len(self.srv.hub.tasks)   # the heartbeat, the janitor

    def overrides(self) -> dict[str, Any]:
        # bursts of mail cross the recipient's acks on another connection
        return {**super().overrides(), "pair_mailbox_size": 100_000}

    async def mint(self) -> str:
        status, body, _ = await post(self.srv.url + "/rendezvous/code")
        assert status == 200, body
        return str(body["appID"])

    async def connect(self, c: int) -> WsClient:
        return await WsClient.connect(
            f"{self.srv.ws_url}?appID={self.apps[c // 2]}&side={SIDES[c % 2]}")

    async def close_clients(self) -> None:
        for ws in self.ws:
            await ws.close()

    @staticmethod
    def other(c: int) -> int:
        return c ^ 1

    @rule(c=clients, kind=st.sampled_from(("offer", "answer", "ice", "sender_ready")),
          n=bursts)
    def relay(self, c: int, kind: str, n: int) -> None:
        for _ in range(n):
            tag = self.tag()
            self.expected[tag] = self.other(c)
            self.run(self.ws[c].send({"type": kind, "tag": tag}))
        self.sent(n)
        self.settle()

    @rule(c=clients, n=bursts)
    def send_mail(self, c: int, n: int) -> None:
        for _ in range(n):
            tag = self.tag()
            self.mail[tag] = self.other(c)
            self.unseen.add(tag)
            self.run(self.ws[c].send({"type": "send", "payload": {"tag": tag}}))
        self.sent(n)
        self.settle()

    @rule(c=clients, junk=JUNK, n=bursts)
    def junk(self, c: int, junk: str, n: int) -> None:
        for _ in range(n):
            self.run(self.ws[c].send_raw(junk))
        self.sent(n)
        self.errors_due[c] += n
        self.settle()

    @rule(c=clients, to=st.sampled_from(("Z", 7, None, "")))
    def bad_send(self, c: int, to: Any) -> None:
        self.run(self.ws[c].send({"type": "send", "to": to, "payload": 1}
                                 if to is not None else {"type": "send"}))
        self.sent()
        self.errors_due[c] += 1
        self.settle()

    @rule(c=clients)
    def reconnect(self, c: int) -> None:
        self.run(self.ws[c].close())
        # the side is free once the server left the pair for the old connection
        hub = self.srv.hub
        self.run(hub.changes.wait_for(
            lambda: len(self.srv.server.gateway.connections) == 3
            and len(hub.tasks) == self.background, 5))
        self.ws[c] = self.run(self.connect(c))
        self.settle()

    def settle(self) -> None:
        """Every side round-trips a ping; check what each received before its pong."""
        seen = self.run(self.sync_all())
        for c, frames in enumerate(seen):
            for msg in frames:
                kind = msg.get("type")
                if kind == "error":
                    code = msg.get("code")
                    assert isinstance(code, str) and code, msg
                    assert self.errors_due[c] > 0, f"side {c} got an unasked error {msg}"
                    self.errors_due[c] -= 1
                elif kind in ("offer", "answer", "ice", "sender_ready"):
                    assert self.expected.pop(msg["tag"], None) == c, \
                        f"side {c} got {msg}, meant for another side"
                elif kind == "send":
                    tag = msg["payload"]["tag"]
                    assert self.mail[tag] == c, f"side {c} got mail {msg} of another"
                    self.unseen.discard(tag)
                    self.run(self.ws[c].send({"type": "delivered", "seq": msg["seq"]}))
                else:
                    assert kind in ("room_full", "peer_left"), msg
        assert not self.expected, f"relays never delivered: {self.expected}"
        assert not self.unseen, f"mail never delivered: {self.unseen}"
        assert self.errors_due == [0] * 4, f"errors never sent: {self.errors_due}"

    async def sync_all(self) -> list[list[dict[str, Any]]]:
        return list(await asyncio.gather(*(ws.sync() for ws in self.ws)))

    @invariant()
    def connections_stay_open(self) -> None:
        for ws in self.ws:
            assert not ws.ws.closed


PairingMachine.TestCase.settings = SETTINGS
TestPairing = PairingMachine.TestCase
