"""Talking to an rtchub server: mint and redeem codes, and one side's pair relay socket."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

__all__ = ["ClientError", "PairSocket", "Rendezvous", "ws_url"]


class ClientError(Exception):
    """Something the user should read: the server said no, or the peer went away."""


def ws_url(server: str) -> str:
    """``http://host:port`` -> ``ws://host:port/ws`` (https -> wss)."""
    parts = urlsplit(server if "://" in server else f"http://{server}")
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None:
        raise ClientError(f"server URL {server!r}: expected http:// or https://")
    return urlunsplit((scheme, parts.netloc, "/ws", "", ""))


def http_url(server: str) -> str:
    """The server's base URL without a trailing slash."""
    server = server if "://" in server else f"http://{server}"
    return server.rstrip("/")


@dataclass(frozen=True, slots=True)
class Pairing:
    """A pair's appID, and the code when we minted it."""

    app_id: str
    code: str | None = None


class Rendezvous:
    """The server's HTTP side."""

    def __init__(self, session: aiohttp.ClientSession, server: str) -> None:
        self._session = session
        self._base = http_url(server)

    async def _post(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            async with self._session.post(self._base + path, json=body) as resp:
                data = await resp.json(content_type=None)
                if resp.status != 200:
                    error = data.get("error") if isinstance(data, dict) else None
                    raise ClientError(f"{path}: HTTP {resp.status}: {error or data}")
                assert isinstance(data, dict)
                return data
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise ClientError(f"cannot reach the rtchub server at {self._base}: {exc}"
                              ) from None
        except ValueError:
            raise ClientError(f"{path}: the server did not answer with JSON") from None

    async def mint(self) -> Pairing:
        """A fresh code and its appID."""
        data = await self._post("/rendezvous/code", None)
        return Pairing(str(data["appID"]), str(data["code"]))

    async def redeem(self, code: str) -> Pairing:
        """The appID behind ``code`` (each code works once)."""
        try:
            data = await self._post("/rendezvous/redeem", {"code": code})
        except ClientError as exc:
            if "HTTP 410" in str(exc):
                raise ClientError(f"code {code} is used, expired or unknown") from None
            raise
        return Pairing(str(data["appID"]))

    async def ice_servers(self) -> list[dict[str, Any]]:
        """The iceServers the server recommends (RTC_CONFIG_JSON); [] when none."""
        try:
            async with self._session.get(self._base + "/api/rtc-config") as resp:
                if resp.status != 200:
                    return []
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, ValueError):
            return []
        servers = data.get("iceServers", []) if isinstance(data, dict) else []
        return servers if isinstance(servers, list) else []


class PairSocket:
    """One side's relay socket: send frames, await a frame of a given type."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, server: str, app_id: str,
                      side: str) -> PairSocket:
        """Open ``/ws?appID=...&side=...``."""
        try:
            ws = await session.ws_connect(f"{ws_url(server)}?appID={app_id}&side={side}",
                                          heartbeat=20.0)
        except aiohttp.ClientError as exc:
            raise ClientError(f"cannot open the pair relay: {exc}") from None
        return cls(ws)

    async def send(self, obj: dict[str, Any]) -> None:
        """Send one JSON frame."""
        await self._ws.send_str(orjson.dumps(obj).decode())

    async def wait_for(self, *kinds: str, timeout: float) -> dict[str, Any]:
        """The next frame whose type is in ``kinds``; a server error frame raises."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise ClientError(f"timed out after {timeout:g} s waiting for {'/'.join(kinds)}")
            msg = await self._ws.receive(left)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                            aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                raise ClientError(f"the relay closed the connection ({self._ws.close_code})")
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = orjson.loads(msg.data)
            if not isinstance(frame, dict):
                continue
            if frame.get("type") == "error":
                raise ClientError(f"relay error: {frame.get('error')}")
            if frame.get("type") in kinds:
                return frame

    async def close(self) -> None:
        """Close the socket."""
        await self._ws.close()
