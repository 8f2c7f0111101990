"""Faults across nodes: a node SIGKILLed, Redis killed and started again (with and without
persistence). Real redis-server and ``rtchub serve`` processes, real signals, real clients.

Nodes run with ``CLUSTER_NODE_TTL=1s`` so a lost node is swept within about 1.3 s; every
wait is for an event (a frame, a node's log line), under a timeout.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp

from tests.cluster.nodes import Node, cluster
from tests.match.support import SioClient
from tests.pairing.support import post
from tests.support import WsClient

SDP = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
TTL = "1s"  # CLUSTER_NODE_TTL: a lost node is swept within about 1.3 s


async def status(node: Node) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{node.url}/api/status") as resp:
        assert resp.status == 200
        body = await resp.json()
        assert isinstance(body, dict)
        return body


async def readyz(node: Node) -> int:
    async with aiohttp.ClientSession() as http, http.get(f"{node.url}/readyz") as resp:
        return resp.status


async def frame(client: WsClient, kind: str) -> dict[str, Any]:
    """The next ``kind`` frame, past any ``room_members`` (the room being put back)."""
    while True:
        msg = await client.recv(timeout=10)
        if msg["type"] == kind:
            return msg
        assert msg["type"] == "room_members", msg


async def mint(node: Node) -> str:
    code, body, _ = await post(f"{node.url}/rendezvous/code")
    assert code == 200, body
    return str(body["appID"])


async def pair_side(node: Node, app_id: str, side: str) -> WsClient:
    return await WsClient.connect(f"{node.ws_url}?appID={app_id}&side={side}")


async def test_a_killed_node_is_swept_from_rooms_match_and_pairs(tmp_path: Path) -> None:
    async with cluster(tmp_path, CLUSTER_NODE_TTL=TTL) as group:
        a, b = await group.add_many("A", "B")
        alice, bob = await WsClient.connect(a.ws_url), await WsClient.connect(b.ws_url)
        waiting = await SioClient().connect(b.url)
        app_id = await mint(a)
        side_a, side_b = await pair_side(a, app_id, "A"), await pair_side(b, app_id, "B")
        try:
            await alice.join("room", "alice")
            await bob.join("room", "bob")
            assert (await alice.expect("room_members"))["members"] == ["alice", "bob"]
            await waiting.request("w")
            assert await waiting.sync() == []
            assert (await side_a.expect("room_full"))["type"] == "room_full"
            await side_b.expect("room_full")
            assert (await status(a))["queue"]["size"] == 1
            mark = a.mark()

            b.kill(signal.SIGKILL)   # no goodbye

            # within the TTL (1 s) plus a heartbeat, A sweeps B: rooms, pairs, the queue
            assert (await alice.expect("room_members", timeout=10))["members"] == ["alice"]
            assert (await side_a.expect("peer_left", timeout=10))["side"] == "B"
            await a.until(r"swept lost node", mark)
            body = await status(a)
            assert body["queue"]["size"] == 0
            assert body["cluster"]["nodes"] == 1
            # the pair's mailbox stays: mail for B waits, and B picks it up on a new node
            await side_a.send({"type": "send", "payload": {"n": 1}})
            c = group.add("C")
            side_b2 = await pair_side(c, app_id, "B")
            await side_b2.expect("room_full")
            await side_b2.send({"type": "hello", "deliveredUpTo": 0})
            mail = await side_b2.expect("send")
            assert (mail["seq"], mail["payload"]) == (1, {"n": 1})
            await side_b2.close()
        finally:
            await asyncio.gather(alice.close(), bob.close(), side_a.close(), side_b.close(),
                                 waiting.sio.disconnect(), return_exceptions=True)


async def test_redis_goes_away_and_comes_back_with_persistence(tmp_path: Path) -> None:
    async with cluster(tmp_path, persistence=True, CLUSTER_NODE_TTL=TTL) as group:
        a, b = await group.add_many("A", "B")
        one, two = await WsClient.connect(a.ws_url), await WsClient.connect(a.ws_url)
        near, far = await WsClient.connect(a.ws_url), await WsClient.connect(b.ws_url)
        leaver = await WsClient.connect(b.ws_url)
        app_id = await mint(a)
        side_a = await pair_side(a, app_id, "A")
        try:
            await one.join("local", "one")
            await two.join("local", "two")
            await one.expect("room_members")
            await near.join("cross", "near")
            await far.join("cross", "far")
            await leaver.join("cross", "leaver")
            await near.expect("room_members")
            await near.expect("room_members")
            await far.expect("room_members")
            # an acknowledged mailbox message (B is not connected: it waits in Redis)
            await side_a.send({"type": "send", "payload": "kept"})
            await side_a.sync()
            marks = (a.mark(), b.mark())

            await group.redis.stop(signal.SIGKILL)

            await a.until("Redis is unreachable", marks[0])
            await b.until("Redis is unreachable", marks[1])
            assert await readyz(a) == 503
            # a room whose members are all on A keeps relaying
            await one.send({"type": "offer", "to": "two", "sdp": SDP})
            assert (await two.expect("offer"))["from"] == "one"
            # what needs the cluster is refused, clearly
            await near.send({"type": "offer", "to": "far", "sdp": SDP})
            assert (await near.expect("error"))["code"] == "cluster_unavailable"
            late = await WsClient.connect(a.ws_url)
            await late.send({"type": "join", "room": "x", "from": "late"})
            assert (await late.expect("error"))["code"] == "cluster_unavailable"
            await late.close()
            await leaver.close()     # its leave cannot be written now: a ghost to be
            await b.until("releasing a dialect failed|cluster_unavailable|unreachable",
                          marks[1])

            marks = (a.mark(), b.mark())
            await group.redis.start()
            await a.until("backplane connected", marks[0])
            await b.until("backplane connected", marks[1])
            assert await readyz(a) == 200, a.tail(40)
            # no ghost: B's sweep of its own closed connections took "leaver" out
            members = (await near.expect("room_members", timeout=10))["members"]
            assert members == ["near", "far"]
            await near.send({"type": "offer", "to": "far", "sdp": SDP})
            assert (await frame(far, "offer"))["from"] == "near"
            # the acknowledged message survived Redis's restart (appendonly, fsync always)
            side_b = await pair_side(b, app_id, "B")
            await side_b.expect("room_full")
            await side_b.send({"type": "hello", "deliveredUpTo": 0})
            assert (await side_b.expect("send"))["payload"] == "kept"
            await side_b.close()
        finally:
            await asyncio.gather(one.close(), two.close(), near.close(), far.close(),
                                 side_a.close(), return_exceptions=True)


async def test_redis_restarted_empty_gets_the_live_members_back(tmp_path: Path) -> None:
    async with cluster(tmp_path, CLUSTER_NODE_TTL=TTL) as group:
        a, b = await group.add_many("A", "B")
        near, far = await WsClient.connect(a.ws_url), await WsClient.connect(b.ws_url)
        try:
            await near.join("cross", "near")
            await far.join("cross", "far")
            await near.expect("room_members")
            marks = (a.mark(), b.mark())
            await group.redis.stop(signal.SIGKILL)
            await a.until("Redis is unreachable", marks[0])
            marks = (a.mark(), b.mark())
            await group.redis.start()       # no persistence: every key is gone
            await a.until("backplane connected", marks[0])
            await b.until("backplane connected", marks[1])
            # each node put its live members back: the room is whole again
            while sorted((await frame(near, "room_members"))["members"]) != ["far", "near"]:
                pass
            await near.send({"type": "offer", "to": "far", "sdp": SDP})
            assert (await frame(far, "offer"))["from"] == "near"
            await far.send({"type": "answer", "to": "near", "sdp": {**SDP, "type": "answer"}})
            assert (await frame(near, "answer"))["from"] == "far"
        finally:
            await asyncio.gather(near.close(), far.close(), return_exceptions=True)
