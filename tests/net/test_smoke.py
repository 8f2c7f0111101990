"""The server starts, answers its health endpoints and relays between two clients."""

from __future__ import annotations

import aiohttp

from tests.support import Running, WsClient


async def test_health_endpoints(server: Running) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/healthz") as resp:
            assert (resp.status, await resp.text()) == (200, "ok")
        async with http.get(f"{server.url}/readyz") as resp:
            assert resp.status == 200


async def test_two_clients_relay(server: Running) -> None:
    a = await WsClient.connect(server.ws_url)
    b = await WsClient.connect(server.ws_url)
    try:
        await a.join("r", "alice")
        await b.join("r", "bob")
        assert (await a.expect("room_members"))["members"] == ["alice", "bob"]
        await a.send({"type": "hangup", "to": "bob"})
        assert await b.recv() == {"type": "hangup", "room": "r", "from": "alice", "to": "bob"}
    finally:
        await a.close()
        await b.close()
