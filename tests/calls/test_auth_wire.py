"""Join tokens on the browser app's socket (/ws): call rooms need one, mesh rooms stay open."""

from __future__ import annotations

import base64
from typing import Any

from rtchub.config import CallSettings
from rtchub.features.calls.auth import mint_join_token
from tests.support import WsClient, make_config, running

SECRET = "wire-secret-" + "x" * 32


def config(**calls: Any) -> Any:
    return make_config(node_ips=("127.0.0.1",), calls=CallSettings(**calls))


def alg_none(token: str) -> str:
    head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    return f"{head}.{token.split('.')[1]}."


async def test_call_room_joins_need_a_valid_token() -> None:
    async with running(config(token_secret=SECRET)) as srv:
        good = mint_join_token(SECRET, identity="alice", room="standup", record=True)
        refused = {
            "none": None,
            "expired": mint_join_token(SECRET, identity="alice", room="standup", ttl=60,
                                       clock=lambda: 1_000_000.0),
            "another room": mint_join_token(SECRET, identity="alice", room="other"),
            "another secret": mint_join_token("y" * 40, identity="alice", room="standup"),
            "alg none": alg_none(good),
            "garbage": "garbage",
        }
        client = await WsClient.connect(srv.ws_url)
        try:
            for why, token in refused.items():
                extra = {} if token is None else {"access_token": token}
                reply = await client.join("standup", "alice", topology="sfu", **extra)
                assert (reply["type"], reply.get("code")) == ("error", "unauthorized"), why
            joined = await client.join("standup", topology="sfu", access_token=good)
            assert joined["type"] == "joined", joined
            assert joined["from"] == "alice" and joined["topology"] == "sfu"
            assert joined["grants"] == {"publish": True, "subscribe": True, "record": True,
                                        "admin": False}
        finally:
            await client.close()


async def test_mesh_rooms_stay_open_and_guests_follow_the_settings() -> None:
    async with running(config(token_secret=SECRET)) as srv:
        client = await WsClient.connect(srv.ws_url)
        try:
            joined = await client.join("lobby", "bob")  # seed 000: no token, no topology
            assert joined["type"] == "joined" and joined.get("topology", "mesh") == "mesh"
        finally:
            await client.close()
    async with running(config(token_secret=SECRET, allow_guests=True)) as srv:
        client = await WsClient.connect(srv.ws_url)
        try:
            joined = await client.join("call", "carol", topology="sfu")
            assert joined["type"] == "joined", joined
            assert joined["grants"]["publish"] and not joined["grants"]["record"]
        finally:
            await client.close()


async def test_a_dev_server_admits_guests_to_call_rooms() -> None:
    async with running(config()) as srv:
        client = await WsClient.connect(srv.ws_url)
        try:
            joined = await client.join("call", "dave", topology="sfu")
            assert joined["type"] == "joined", joined
            assert joined["grants"] == {"publish": True, "subscribe": True, "record": False,
                                        "admin": False}
        finally:
            await client.close()
