"""Socket.IO test clients for matchmaking: python-socketio's AsyncClient, events in order."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import socketio

from tests.support import FakeClock, Running, running

TIMEOUT = 5.0
# a real 1x1 PNG as a data: URL thumbnail
PIXEL = "data:image/png;base64," + base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000200a5f1d8a20000000049454e44ae426082"
)).decode()
OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
             "sdpMid": "0", "sdpMLineIndex": 0}


class SioClient:
    """One Socket.IO client; every server event lands in one ordered queue."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.sio.on("*", self._any)
        self.sio.on("disconnect", self._gone)
        self.sio.on("connect_error", self._refused)
        self.disconnected = asyncio.Event()

    async def _any(self, event: str, *args: Any) -> None:
        self.events.put_nowait((event, args[0] if args else None))

    async def _refused(self, data: Any = None) -> None:
        self.events.put_nowait(("connect_error", data))

    async def _gone(self, *args: Any) -> None:
        self.disconnected.set()

    async def connect(self, url: str, transports: list[str] | None = None) -> SioClient:
        await self.sio.connect(url, transports=transports or ["websocket"],
                               wait_timeout=TIMEOUT)
        return self

    @property
    def sid(self) -> str:
        sid = self.sio.get_sid()
        assert isinstance(sid, str)
        return sid

    async def emit(self, event: str, data: Any = None) -> None:
        if data is None:
            await self.sio.emit(event)
        else:
            await self.sio.emit(event, data)

    async def next(self, timeout: float = TIMEOUT) -> tuple[str, Any]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def expect(self, event: str, timeout: float = TIMEOUT) -> Any:
        got, data = await self.next(timeout)
        assert got == event, f"expected {event!r}, got {got!r} {data!r}"
        return data

    async def error(self, code: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        data = await self.expect("error", timeout)
        assert data["code"] == code, data
        return dict(data)

    async def sync(self) -> list[tuple[str, Any]]:
        """Every event the server queued for us before it answered a round trip."""
        await self.sio.emit("rtchub-sync")
        seen: list[tuple[str, Any]] = []
        while True:
            event, data = await self.next()
            if event == "error" and data.get("event") == "rtchub-sync":
                return seen
            seen.append((event, data))

    async def request(self, name: str, room_id: str | None = None,
                      image: str = PIXEL) -> None:
        await self.emit("request-room", {"name": name, "roomId": room_id, "userImage": image})

    async def close(self) -> None:
        await self.sio.disconnect()


async def connect(url: str, n: int, transports: list[str] | None = None) -> list[SioClient]:
    """``n`` connected clients."""
    return list(await asyncio.gather(*(SioClient().connect(url, transports)
                                       for _ in range(n))))


@asynccontextmanager
async def sio_clients(url: str, n: int, transports: list[str] | None = None
                      ) -> AsyncIterator[list[SioClient]]:
    """``n`` connected clients, disconnected afterwards."""
    made = await connect(url, n, transports)
    try:
        yield made
    finally:
        await asyncio.gather(*(c.close() for c in made), return_exceptions=True)


async def pair(a: SioClient, b: SioClient, names: tuple[str, str] = ("Ann", "Bob")
               ) -> str:
    """Queue ``a`` then ``b``; both get match-done; returns the room ID."""
    await a.request(names[0])
    assert await a.sync() == []
    await b.request(names[1])
    done_b = await b.expect("match-done")
    done_a = await a.expect("match-done")
    assert done_a["roomId"] == done_b["roomId"]
    assert done_a["remoteUserDetails"]["socket"] == b.sid
    assert done_b["remoteUserDetails"]["socket"] == a.sid
    return str(done_a["roomId"])


@asynccontextmanager
async def running_clocked(clock: FakeClock, **overrides: Any) -> AsyncIterator[Running]:
    """A real server whose hub reads ``clock``."""
    async with running(clock=clock, **overrides) as srv:
        yield srv


async def status(url: str) -> dict[str, Any]:
    """``GET /api/status``."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/api/status") as resp:
        assert resp.status == 200
        value = await resp.json()
        assert isinstance(value, dict)
        return value
