"""Test support: a real rtchub server on loopback and real WebSocket clients.

Every client opens its own TCP connection (its own ClientSession), so the first
request on the socket is the WebSocket upgrade and the server's fast path
serves it, as it does for browsers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import heapq
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from rtchub.app import build_server
from rtchub.config import Config, Limits, ListenAddress
from rtchub.features.rooms.routes import ROOMS
from rtchub.features.rooms.service import Rooms
from rtchub.features.voice.http import BROADCASTS, VOICE
from rtchub.features.voice.live import Broadcasts
from rtchub.features.voice.service import VoiceService
from rtchub.hub import Hub
from rtchub.net.server import Server

TIMEOUT = 5.0


def make_config(**overrides: Any) -> Config:
    """A loopback config on a free port; ``limits`` keys may be given flat."""
    limit_fields = {f.name for f in dataclasses.fields(Limits)}
    limits = {k: overrides.pop(k) for k in list(overrides) if k in limit_fields}
    base = Config(addr=ListenAddress("127.0.0.1", 0), stream_addr=None,
                  limits=Limits(**limits), shutdown_timeout=5.0)
    return dataclasses.replace(base, **overrides)


@dataclasses.dataclass
class Running:
    """A started server: its hub, base URLs and the Server to stop."""

    server: Server
    hub: Hub
    port: int
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.scheme == 'https' else 'ws'}://127.0.0.1:{self.port}/ws"

    @property
    def rooms(self) -> Rooms:
        """The rooms service."""
        return self.server.app[ROOMS]

    @property
    def voice(self) -> VoiceService:
        """The voice stream directory."""
        return self.server.app[VOICE]

    @property
    def broadcasts(self) -> Broadcasts:
        """The media of live voice streams."""
        return self.server.app[BROADCASTS]


class _FakeTimer:
    """A timer of :class:`FakeClock`."""

    __slots__ = ("callback", "cancelled", "due")

    def __init__(self, due: float, callback: Callable[[], object]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A :class:`~rtchub.base.clock.Clock` the test moves by hand: expiry, timeouts, rate
    limits and sweeps run in milliseconds of real time.

    ``advance(seconds)`` moves time and runs every timer that fell due, in order; a task
    in ``sleep`` wakes when its time comes (after the test yields to the loop).
    """

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._seq = itertools.count()

    def __call__(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], object]) -> _FakeTimer:
        timer = _FakeTimer(self.now + max(delay, 0.0), callback)
        heapq.heappush(self._timers, (timer.due, next(self._seq), timer))
        return timer

    async def sleep(self, delay: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.call_later(delay, lambda: None if future.done() else future.set_result(None))
        await future

    @property
    def pending(self) -> int:
        """Timers waiting to fall due."""
        return sum(1 for _, _, t in self._timers if not t.cancelled)

    def advance(self, seconds: float) -> None:
        """Move time forward and run the timers that fall due (in due order)."""
        target = self.now + seconds
        while self._timers and self._timers[0][0] <= target:
            due, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self.now = max(self.now, due)
            timer.callback()
        self.now = target


def self_signed(tmp: Path) -> tuple[str, str]:
    """A self-signed certificate and key for ``localhost`` (PEM paths), made for the test."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "server.crt", tmp / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


async def heartbeat_round(srv: Running, clock: FakeClock) -> None:
    """Move ``clock`` one heartbeat period and wait until that sweep is done."""
    beat = srv.server.gateway.heartbeat
    await srv.hub.changes.wait_for(lambda: beat.waiting, TIMEOUT)
    done = beat.rounds
    clock.advance(beat.period)
    await srv.hub.changes.wait_for(lambda: beat.rounds > done, TIMEOUT)


@asynccontextmanager
async def running(config: Config | None = None, clock: FakeClock | None = None,
                  **overrides: Any) -> AsyncIterator[Running]:
    """Start a server for ``config`` (or ``make_config(**overrides)``), its hub reading
    ``clock`` when given; stop it after."""
    config = config if config is not None else make_config(**overrides)
    server = build_server(config, Hub(config, clock=clock) if clock is not None else None)
    await server.start()
    port = server.port() if config.addr.path is None else 0
    try:
        yield Running(server, server.hub, port, "https" if config.tls else "http")
    finally:
        await server.stop()


class WsClient:
    """A WebSocket client that speaks JSON and awaits frames under a timeout.

    Like a browser, it reads all the time (a task takes every message into a queue), so
    it answers the server's pings whether or not the test is waiting for a frame; tests of
    clients that stop reading use :class:`tests.rawws.RawWs`.
    """

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse
                 ) -> None:
        self.session = session
        self.ws = ws
        self.greeting: dict[str, Any] | None = None
        self.messages: asyncio.Queue[aiohttp.WSMessage] = asyncio.Queue()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        while True:
            msg = await self.ws.receive()
            self.messages.put_nowait(msg)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                            aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                return

    async def receive(self, timeout: float = TIMEOUT) -> aiohttp.WSMessage:
        """The next message of any kind.

        ``asyncio.timeout``, not ``wait_for``: CPython 3.11's ``wait_for`` returns the
        message when it arrives in the loop turn that cancels the waiter, swallowing the
        cancellation, and a reader task cancelled at teardown then waits forever.
        """
        async with asyncio.timeout(timeout):
            return await self.messages.get()

    @classmethod
    async def connect(cls, url: str, headers: Mapping[str, str] | None = None,
                      greeting: bool = True, **kwargs: Any) -> WsClient:
        """Connect; on endpoints that speak voice (``/ws``, ``/ws/voice``) the server's
        ``available_streams`` greeting is read into ``greeting`` unless ``greeting`` is
        False."""
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(url, headers=headers, autoping=True, **kwargs)
        except BaseException:
            await session.close()
            raise
        client = cls(session, ws)
        path = url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
        if greeting and path in ("ws", "ws/voice") and "appID=" not in url:
            client.greeting = await client.expect("available_streams")
        return client

    async def send(self, obj: Any) -> None:
        await self.ws.send_str(orjson.dumps(obj).decode())

    async def send_raw(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data)

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        msg = await self.receive(timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"expected a text frame, got {msg.type!r} {msg.data!r} "
                                 f"{msg.extra!r}")
        value = orjson.loads(msg.data)
        assert isinstance(value, dict)
        return value

    async def expect(self, kind: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        msg = await self.recv(timeout)
        assert msg.get("type") == kind, f"expected {kind!r}, got {msg!r}"
        return msg

    async def sync(self) -> list[dict[str, Any]]:
        """Send a ping and return every frame that arrived before its pong."""
        await self.send({"type": "ping"})
        seen: list[dict[str, Any]] = []
        while True:
            msg = await self.recv()
            if msg.get("type") == "pong":
                return seen
            seen.append(msg)

    async def join(self, room: str, client: str | None = None, **extra: Any) -> dict[str, Any]:
        """Join and return the ``joined`` frame (consuming the ``room_members`` that follows)."""
        msg: dict[str, Any] = {"type": "join", "room": room, **extra}
        if client is not None:
            msg["from"] = client
        await self.send(msg)
        joined = await self.recv()
        if joined["type"] == "joined":
            await self.expect("room_members")
        return joined

    async def closed(self, timeout: float = TIMEOUT) -> tuple[int | None, str]:
        """Wait for the server to close; returns (close code, reason)."""
        while True:
            msg = await self.receive(timeout)
            if msg.type == aiohttp.WSMsgType.CLOSE:
                return int(msg.data), str(msg.extra or "")
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return self.ws.close_code, str(msg.extra or "")
            if msg.type == aiohttp.WSMsgType.ERROR:
                return self.ws.close_code, str(msg.data)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.session.close()


@asynccontextmanager
async def clients(url: str, n: int) -> AsyncIterator[list[WsClient]]:
    """``n`` connected clients, closed afterwards."""
    made = await asyncio.gather(*(WsClient.connect(url) for _ in range(n)))
    try:
        yield list(made)
    finally:
        await asyncio.gather(*(c.close() for c in made), return_exceptions=True)
