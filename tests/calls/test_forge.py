"""forge's dialect at /webrtc/signal/{roomID}: aiortc clients written to its messages."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import aiohttp
import pytest

from rtchub.config import CallSettings
from rtchub.features.calls.auth import mint_join_token
from rtchub.features.calls.routes import CALLS
from tests.calls.forge_client import ForgeClient
from tests.media.sfu_support import PictureTrack, next_frame
from tests.support import TIMEOUT, make_config, running

pytestmark = pytest.mark.webrtc
SECRET = "forge-secret-" + "x" * 32


def config(**calls: Any) -> Any:
    return make_config(node_ips=("127.0.0.1",), calls=CallSettings(**calls))


async def refusal(url: str) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of an upgrade the server refuses."""
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        text = await resp.text()
        return resp.status, json.loads(text) if text.startswith("{") else {"code": None}


async def test_two_forge_clients_see_each_others_video() -> None:
    async with running(config()) as srv:
        base = f"ws://127.0.0.1:{srv.port}/webrtc/signal/standup"
        carol = await ForgeClient.connect(f"{base}?user_id=carol")  # watches
        cams = [PictureTrack(320, 240, seed) for seed in (1, 2)]
        alice = await ForgeClient.connect(f"{base}?user_id=alice")
        # bob joins once alice has negotiated: see the report on subscriptions noted
        # before a participant's first offer (calls core)
        bob: ForgeClient | None = None
        try:
            assert alice.joined["topology"] == "sfu" and alice.joined["user_id"] == "alice"
            assert alice.joined["grants"]["publish"]
            alice.publish(cams[0])
            answer = await alice.offer()
            # forge's streaming envelope beside the browser shape
            assert answer["data"] == {"Type": "answer", "SDP": answer["sdp"]["sdp"]}
            assert answer["metadata"] == {"peer_id": "alice"} and answer["room_id"] == "standup"
            bob = await ForgeClient.connect(f"{base}?user_id=bob")
            assert [p["id"] for p in bob.joined["participants"]] == ["carol", "alice", "bob"]
            assert [t["publisher"] for t in bob.joined["tracks"]] == ["alice"]
            bob.publish(cams[1])
            await bob.offer()
            await alice.until(lambda: cams[1].id in alice.received)
            await bob.until(lambda: cams[0].id in bob.received)
            frame = await next_frame(alice.received[cams[1].id])
            assert (frame.width, frame.height) == (320, 240)
            frame = await next_frame(bob.received[cams[0].id])
            assert (frame.width, frame.height) == (320, 240)
            assert alice.server_offers >= 1 and bob.server_offers >= 1
            tracks = srv.server.app[CALLS].get_available_tracks("standup")
            assert {(t.publisher, t.kind) for t in tracks} == {("alice", "video"),
                                                               ("bob", "video")}
        finally:
            await alice.close()
            if bob is not None:
                await bob.close()
            for cam in cams:
                cam.stop()
        # both left with their sockets: carol is told
        try:
            while True:
                seen = await carol.next_of("participants")
                if [p["id"] for p in seen["participants"]] == ["carol"]:
                    break
        finally:
            await carol.close()


async def test_a_bad_frame_is_an_error_and_the_connection_stays() -> None:
    async with running(config()) as srv:
        alice = await ForgeClient.connect(
            f"ws://127.0.0.1:{srv.port}/webrtc/signal/r1?user_id=alice")
        try:
            await alice.send({"type": "webrtc.offer", "sdp": {"type": "offer", "sdp": "hello"}})
            error = await alice.next_of("error")
            assert error["code"] == "invalid_sdp"
            await alice.send({"type": "webrtc.offer", "sdp": {"type": "answer",
                                                              "sdp": "v=0\r\n"}})
            assert (await alice.next_of("error"))["code"] == "invalid_sdp"
            await alice.send({"type": "webrtc.ice_candidate", "candidate": "nope"})
            assert (await alice.next_of("error"))["code"] == "invalid_field"
            await alice.send({"type": "webrtc.hangup"})
            assert (await alice.next_of("error"))["code"] == "unknown_type"
            # still served: a real offer gets its answer
            alice.publish(PictureTrack(160, 120))
            answer = await alice.offer()
            assert answer["sdp"]["type"] == "answer"
        finally:
            await alice.close()


async def test_mesh_rooms_relay_by_peer_id() -> None:
    async with running(config()) as srv:
        base = f"ws://127.0.0.1:{srv.port}/webrtc/signal/mesh1?topology=mesh"
        alice = await ForgeClient.connect(f"{base}&user_id=alice")
        bob = await ForgeClient.connect(f"{base}&user_id=bob")
        try:
            assert alice.joined["topology"] == "mesh"
            offer = {"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"}
            await alice.send({"type": "webrtc.offer", "sdp": offer,
                              "metadata": {"peer_id": "bob"}})
            got = await bob.next_of("webrtc.offer")
            assert got["from"] == "alice" and got["sdp"] == offer
            await bob.send({"type": "webrtc.ice_candidate", "peer_id": "alice",
                            "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ "
                                          "host", "sdpMid": "0", "sdpMLineIndex": 0}})
            got = await alice.next_of("webrtc.ice_candidate")
            assert got["from"] == "bob" and got["candidate"]["sdpMid"] == "0"
            await alice.send({"type": "webrtc.offer", "sdp": offer})
            assert (await alice.next_of("error"))["code"] == "peer_not_found"
            await alice.send({"type": "webrtc.offer", "sdp": offer, "peer_id": "carol"})
            assert (await alice.next_of("error"))["code"] == "peer_not_found"
            participants = srv.server.app[CALLS].participants("mesh1")
            assert [p.id for p in participants] == ["alice", "bob"]
        finally:
            await alice.close()
            await bob.close()


@pytest.mark.parametrize("suffix,status,code", [
    ("/webrtc/signal/", 404, None),    # no endpoint: the site's plain 404
    ("/webrtc/signal/a/b", 404, None),
    ("/webrtc/signal/" + "r" * 65, 400, "invalid_id"),
    ("/webrtc/signal/r?user_id=%20x", 400, "invalid_id"),
    ("/webrtc/signal/r?topology=mcu", 400, "invalid_field"),
])
async def test_bad_requests_are_refused_before_the_upgrade(suffix: str, status: int,
                                                           code: str | None) -> None:
    async with running(config()) as srv:
        got, body = await refusal(f"{srv.url}{suffix}")
        assert (got, body["code"]) == (status, code), body


async def test_join_tokens_guard_forge_rooms() -> None:
    async with running(config(token_secret=SECRET)) as srv:
        url = f"{srv.url}/webrtc/signal/standup"
        status, body = await refusal(f"{url}?user_id=alice")
        assert (status, body["code"]) == (401, "unauthorized")
        assert "needs a join token" in body["error"]
        good = mint_join_token(SECRET, identity="alice", room="standup", admin=True)
        expired = mint_join_token(SECRET, identity="alice", room="standup", ttl=60,
                                  clock=lambda: 1_000_000.0)
        other_room = mint_join_token(SECRET, identity="alice", room="elsewhere")
        forged = mint_join_token("z" * 40, identity="alice", room="standup")
        claims = good.split(".")[1]
        none = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
        for token, why in ((expired, "expired"), (other_room, "for room 'elsewhere'"),
                           (forged, "signature"), (f"{none}.{claims}.", "algorithm"),
                           ("garbage", "not a JWT")):
            status, body = await refusal(f"{url}?token={token}")
            assert (status, body["code"]) == (401, "unauthorized"), body
            assert why in body["error"]
        # the token's identity wins; access_token works too
        alice = await ForgeClient.connect(f"ws://127.0.0.1:{srv.port}/webrtc/signal/standup"
                                          f"?access_token={good}")
        try:
            assert alice.joined["user_id"] == "alice" and alice.joined["grants"]["admin"]
            status, body = await refusal(f"{url}?token={good}&user_id=mallory")
            assert status == 401 and "not 'mallory'" in body["error"]
        finally:
            await alice.close()


async def test_guests_are_let_in_when_allowed_and_mesh_rooms_stay_open() -> None:
    async with running(config(token_secret=SECRET, allow_guests=True)) as srv:
        guest = await ForgeClient.connect(
            f"ws://127.0.0.1:{srv.port}/webrtc/signal/lobby?user_id=carol")
        try:
            assert guest.joined["grants"] == {"publish": True, "subscribe": True,
                                              "record": False, "admin": False}
        finally:
            await guest.close()
    async with running(config(token_secret=SECRET)) as srv:
        mesh = await ForgeClient.connect(
            f"ws://127.0.0.1:{srv.port}/webrtc/signal/m?topology=mesh&user_id=dave")
        try:
            assert mesh.joined["topology"] == "mesh"
        finally:
            await mesh.close()


async def test_a_full_room_refuses_with_room_full() -> None:
    async with running(config()) as srv:
        srv.server.app[CALLS].create_room("tiny", max_members=1, topology="sfu")
        base = f"ws://127.0.0.1:{srv.port}/webrtc/signal/tiny"
        first = await ForgeClient.connect(f"{base}?user_id=a")
        try:
            async with aiohttp.ClientSession() as session, \
                    session.ws_connect(f"{base}?user_id=b") as ws:
                msg = await ws.receive(TIMEOUT)
                assert json.loads(msg.data)["code"] == "room_full"
                closing = await ws.receive(TIMEOUT)
                assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        finally:
            await first.close()
