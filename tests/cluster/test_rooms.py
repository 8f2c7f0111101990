"""Rooms across nodes: real ``rtchub serve`` processes sharing a real redis-server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from tests.cluster.nodes import Cluster, cluster
from tests.support import WsClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

SDP = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def two(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """Two nodes, A and B, with at most 2 members per room."""
    async with cluster(tmp_path_factory.mktemp("redis"), MAX_ROOM_MEMBERS="2") as group:
        await group.add_many("A", "B")
        yield group


async def test_members_on_two_nodes_see_each_other_and_relay(two: Cluster) -> None:
    a, b = two.nodes
    alice = await WsClient.connect(a.ws_url)
    bob = await WsClient.connect(b.ws_url)
    try:
        assert (await alice.join("r1", "alice"))["members"] == ["alice"]
        joined = await bob.join("r1", "bob")
        assert joined["members"] == ["alice", "bob"]
        assert (await alice.expect("room_members"))["members"] == ["alice", "bob"]
        # both ways, every signaling kind, ``from`` set by the server
        await alice.send({"type": "offer", "to": "bob", "sdp": SDP})
        got = await bob.expect("offer")
        assert (got["from"], got["sdp"]) == ("alice", SDP)
        await bob.send({"type": "answer", "to": "alice", "sdp": {**SDP, "type": "answer"}})
        assert (await alice.expect("answer"))["from"] == "bob"
        candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host",
                     "sdpMid": "0", "sdpMLineIndex": 0}
        await bob.send({"type": "candidate", "to": "alice", "candidate": candidate})
        assert (await alice.expect("candidate"))["candidate"] == candidate
        # the ID is taken cluster-wide
        eve = await WsClient.connect(b.ws_url)
        await eve.send({"type": "join", "room": "r1", "from": "alice"})
        assert (await eve.expect("error"))["code"] in ("id_taken", "room_full")
        await eve.close()
        await bob.send({"type": "leave"})
        assert (await alice.expect("room_members"))["members"] == ["alice"]
    finally:
        await alice.close()
        await bob.close()


async def test_two_nodes_racing_for_the_last_seat_give_one_room_full(two: Cluster) -> None:
    a, b = two.nodes
    for round_ in range(5):
        room = f"race{round_}"
        host = await WsClient.connect(a.ws_url)
        first = await WsClient.connect(a.ws_url)
        second = await WsClient.connect(b.ws_url)
        try:
            await host.join(room, "host")
            await asyncio.gather(first.send({"type": "join", "room": room, "from": "x"}),
                                 second.send({"type": "join", "room": room, "from": "y"}))
            answers = await asyncio.gather(first.recv(), second.recv())
            kinds = sorted(m["type"] if m["type"] == "joined" else m["code"] for m in answers)
            assert kinds == ["joined", "room_full"], answers
            members = (await host.expect("room_members"))["members"]
            assert len(members) == 2 and members[0] == "host"
        finally:
            await asyncio.gather(host.close(), first.close(), second.close())


async def test_a_resumed_identity_moves_to_another_node(two: Cluster) -> None:
    a, b = two.nodes
    peer = await WsClient.connect(a.ws_url)
    old = await WsClient.connect(a.ws_url)
    try:
        await peer.join("resume", "peer")
        token = (await old.join("resume", "mover"))["token"]
        await peer.expect("room_members")
        new = await WsClient.connect(b.ws_url)
        joined = await new.join("resume", "mover", token=token)
        assert joined["members"] == ["peer", "mover"]
        assert (await peer.expect("room_members"))["members"] == ["peer", "mover"]
        code, _ = await old.closed()
        assert code == 4001
        await peer.send({"type": "offer", "to": "mover", "sdp": SDP})
        assert (await new.expect("offer"))["from"] == "peer"
        await new.close()
        assert (await peer.expect("room_members"))["members"] == ["peer"]
    finally:
        await asyncio.gather(peer.close(), old.close())


async def test_an_sfu_room_lives_on_one_node_and_others_are_sent_there(two: Cluster) -> None:
    """A call room in SFU topology is placed on the node of its first participant; a
    join on another node, naming the topology or not, is refused with room_elsewhere
    naming that node and its NODE_URL (the client connects there); once the room is
    gone, any node may hold it again."""
    a, b = two.nodes
    ann = await WsClient.connect(a.ws_url)
    ben = await WsClient.connect(b.ws_url)
    try:
        joined = await ann.join("call1", "ann", topology="sfu")
        assert (joined["type"], joined["topology"]) == ("joined", "sfu"), joined
        for extra in ({"topology": "sfu"}, {}):   # named, or the room's own
            refused = await ben.join("call1", "ben", **extra)
            assert refused.get("code") == "room_elsewhere", refused
            assert isinstance(refused["node"], str) and refused["node"] in refused["error"]
            assert refused["url"] == a.url, refused    # where a client reaches node A
        await ann.send({"type": "leave"})
        await ann.send({"type": "ping"})   # frames apply in order: the pong follows the leave
        await ann.expect("pong")
        # the room is gone with its last participant: node B may place it now
        rejoined = await ben.join("call1", "ben", topology="sfu")
        assert rejoined["type"] == "joined", rejoined
    finally:
        await ann.close()
        await ben.close()


async def test_forge_clients_keep_an_sfu_room_on_one_node(two: Cluster) -> None:
    """forge's endpoint places SFU rooms like /ws does: a forge client on the wrong node
    is refused with room_elsewhere (and its socket closed), a room a forge client placed
    sends /ws joins to its node, and a room left empty by forge may be placed again."""
    a, b = two.nodes
    ann = await WsClient.connect(a.ws_url)
    cy = await WsClient.connect(a.ws_url)
    try:
        await ann.join("call2", "ann", topology="sfu")
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(
                    f"ws://127.0.0.1:{b.port}/webrtc/signal/call2?user_id=fox") as ws:
                refused = json.loads((await ws.receive(20)).data)
                assert (refused["code"], refused["url"]) == ("room_elsewhere", a.url), refused
                closing = await ws.receive(20)
                assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            # a fresh room placed by a forge client on B: a /ws join on A goes to B
            since = b.mark()
            async with session.ws_connect(
                    f"ws://127.0.0.1:{b.port}/webrtc/signal/call3?user_id=fox") as ws:
                joined = json.loads((await ws.receive(20)).data)
                assert joined["type"] == "joined", joined
                refused = await cy.join("call3", "cy")
                assert (refused.get("code"), refused.get("url")) == ("room_elsewhere", b.url)
        # forge's client left: the room is gone from B, node A may place it now
        await b.until(r"call room unplaced\" room=call3", since)
        assert (await cy.join("call3", "cy", topology="sfu"))["type"] == "joined"
    finally:
        await asyncio.gather(ann.close(), cy.close())


async def test_a_refused_join_leaves_no_placement_behind(two: Cluster) -> None:
    """A join that claimed an SFU room's placement and was then refused by the rooms
    part (here: a resume token that is too long) frees it: the room may live elsewhere."""
    a, b = two.nodes
    ann = await WsClient.connect(a.ws_url)
    ben = await WsClient.connect(b.ws_url)
    try:
        refused = await ben.join("call4", "ben", topology="sfu", token="t" * 1000)
        assert refused.get("code") == "invalid_field", refused
        joined = await ann.join("call4", "ann", topology="sfu")
        assert joined["type"] == "joined", joined
    finally:
        await asyncio.gather(ann.close(), ben.close())
