"""Match, pairing and voice across two real nodes on one real redis-server, driven by
each dialect's own clients: python-socketio, WebSocket + HTTP, aiortc and an MP3 reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from tests.cluster.nodes import Cluster, cluster
from tests.match.support import CANDIDATE, OFFER, connect, pair, status
from tests.pairing.support import post
from tests.support import WsClient
from tests.voice.voiceclients import mp3_frequency, start_receiver, start_sender

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def two(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """Two nodes, A and B; failed redeems limited to 3 a minute per IP (the IP a test
    names in X-Forwarded-For: the nodes trust loopback as their proxy)."""
    async with cluster(tmp_path_factory.mktemp("redis"), PAIR_REDEEM_FAILURES_PER_MIN="3",
                       TRUST_PROXY="127.0.0.1", CLUSTER_NODE_TTL="3s") as group:
        a, b = await group.add_many("A", "B")
        await a.until("cluster: 2 nodes live")      # each sees the other
        await b.until("cluster: 2 nodes live")
        yield group


async def test_one_match_queue_for_both_nodes(two: Cluster) -> None:
    a, b = two.nodes
    (x,), (y,) = await connect(a.url, 1), await connect(b.url, 1)
    try:
        room = await pair(x, y)        # queued on A, matched from B
        assert (await status(b.url))["rooms"]["active"] == 1
        await x.emit("negotiation-call-offer", {"offer": OFFER, "roomId": room, "name": "x",
                                                "remoteSocketId": y.sid})
        got = await y.expect("negotiation-call-offer")
        assert (got["offer"], got["remoteUserDetails"]["socket"]) == (OFFER, x.sid)
        await y.emit("send-new-ice-candidates", {"to": x.sid, "candidate": CANDIDATE})
        assert await x.expect("new-ice-candidates") == {"candidate": CANDIDATE}
        await y.emit("newMessage", {"message": "hello", "roomId": room, "remoteSocket": x.sid})
        assert (await x.expect("Message:recived"))["message"] == "hello"
        assert (await y.expect("Message:recived"))["from"] == y.sid   # the echo
        await x.emit("stop-call", {"roomId": room, "remoteSocketId": y.sid, "name": "x"})
        assert await y.expect("stop-by-remote-user") is None
        body = await status(a.url)
        assert body["rooms"]["active"] == 0
        assert body["cluster"]["nodes"] == 2 and body["node"]["id"] != \
            (await status(b.url))["node"]["id"]
        # this node's figures are current, the other's as of its last heartbeat
        assert body["node"]["match_sockets"] == 1 <= body["cluster"]["match_sockets"]
        async with aiohttp.ClientSession() as http, http.get(f"{a.url}/metrics") as resp:
            metrics = await resp.text()
        assert "rtchub_cluster_nodes 2.0" in metrics
        assert "rtchub_backplane_up 1.0" in metrics
        assert 'rtchub_backplane_events_total{event="published"}' in metrics
    finally:
        await asyncio.gather(x.close(), y.close(), return_exceptions=True)


async def test_a_code_minted_on_one_node_is_redeemed_once_on_the_other(two: Cluster) -> None:
    a, b = two.nodes
    code, minted, _ = await post(f"{a.url}/rendezvous/code")
    assert code == 200
    code, redeemed, _ = await post(f"{b.url}/rendezvous/redeem", {"code": minted["code"]})
    assert (code, redeemed["appID"]) == (200, minted["appID"])
    code, _, _ = await post(f"{a.url}/rendezvous/redeem", {"code": minted["code"]})
    assert code == 410
    side_a = await WsClient.connect(f"{a.ws_url}?appID={minted['appID']}&side=A")
    side_b = await WsClient.connect(f"{b.ws_url}?appID={minted['appID']}&side=B")
    try:
        await side_a.expect("room_full")
        await side_b.expect("room_full")
        await side_a.send({"type": "offer", "sdp": "v=0", "extra": 1})
        assert await side_b.expect("offer") == {"type": "offer", "sdp": "v=0", "extra": 1}
        await side_b.send({"type": "send", "payload": {"file": "x"}})
        mail = await side_a.expect("send")
        assert (mail["seq"], mail["payload"]) == (1, {"file": "x"})
        await side_a.send({"type": "delivered", "seq": 1})
        assert await side_a.sync() == []
    finally:
        await asyncio.gather(side_a.close(), side_b.close())


async def test_failed_redeems_are_limited_per_ip_across_nodes(two: Cluster) -> None:
    a, b = two.nodes
    statuses = []
    for node in (a, b, a, b):
        code, _, _ = await post(f"{node.url}/rendezvous/redeem", {"code": "0000"},
                                headers={"X-Forwarded-For": "192.0.2.7"})
        statuses.append(code)
    # 3 failures a minute from one IP, counted by both nodes together
    assert statuses[:3] == [410, 410, 410] and statuses[3] == 429


@pytest.mark.webrtc
async def test_a_stream_sent_to_one_node_is_heard_on_the_other(two: Cluster) -> None:
    a, b = two.nodes
    sender = await start_sender(a.ws_url, 440.0)
    listener = await WsClient.connect(b.ws_url, greeting=False)
    try:
        greeting = await listener.expect("available_streams")
        assert sender.stream_id in greeting["streams"]
        receiver = await start_receiver(b.ws_url, sender.stream_id)
        try:
            assert abs(await receiver.frequency() - 440.0) < 20
            async with aiohttp.ClientSession() as http, \
                    http.get(f"{b.url}/stream/{sender.stream_id}.mp3") as resp:
                assert resp.status == 200
                data = await asyncio.wait_for(resp.content.readexactly(16_000), 10)
            frequency, _ = mp3_frequency(data)
            assert abs(frequency - 440.0) < 20
            # the sender, on A, hears B's listeners
            while True:
                counts = await sender.ws.recv(timeout=10)
                if counts["type"] == "stream_listeners" and counts["webrtc"] >= 1:
                    break
        finally:
            await receiver.close()
        await sender.close()
        # (the announcement may reach B after its greeting did: a repeat is harmless)
        ended = await listener.recv(timeout=10)
        if ended["type"] == "stream_available":
            assert ended["stream_id"] == sender.stream_id
            ended = await listener.recv(timeout=10)
        assert (ended["type"], ended["stream_id"]) == ("stream_ended", sender.stream_id)
    finally:
        await listener.close()
