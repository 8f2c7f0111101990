"""Helpers for the pairing tests: a server on an injected clock, HTTP calls, pair clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from rtchub.app import build_server
from rtchub.features.pairing.routes import PAIRING
from rtchub.features.pairing.service import PairService
from rtchub.hub import Hub
from tests.support import FakeClock, Running, WsClient, make_config


@asynccontextmanager
async def pairing_server(clock: FakeClock | None = None, **overrides: Any
                         ) -> AsyncIterator[tuple[Running, PairService]]:
    """A running server whose hub (and so pairing) uses ``clock``."""
    config = make_config(**overrides)
    hub = Hub(config, clock=clock) if clock is not None else Hub(config)
    server = build_server(config, hub)
    await server.start()
    app = server._listeners[0].app
    try:
        yield Running(server, hub, server.port(), "https" if config.tls else "http"), app[PAIRING]
    finally:
        await server.stop()


async def post(url: str, body: Any = None, headers: dict[str, str] | None = None,
               raw: bytes | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """POST JSON (or ``raw`` bytes); returns status, JSON body ({} if none) and headers."""
    async with aiohttp.ClientSession() as session:
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if raw is not None:
            kwargs["data"] = raw
        elif body is not None:
            kwargs["json"] = body
        async with session.post(url, **kwargs) as resp:
            text = await resp.read()
            try:
                data = await resp.json(content_type=None) if text else {}
            except ValueError:
                data = {"text": text.decode()}
            return resp.status, data if isinstance(data, dict) else {"value": data}, dict(
                resp.headers)


async def mint(srv: Running) -> dict[str, Any]:
    """Mint a code; asserts success."""
    status, body, _ = await post(f"{srv.url}/rendezvous/code")
    assert status == 200, body
    return body


async def side(srv: Running, app_id: str, name: str, **kwargs: Any) -> WsClient:
    """Connect one side of a pair."""
    return await WsClient.connect(f"{srv.ws_url}?appID={app_id}&side={name}", **kwargs)
