"""Talking to an rtchub server: its URL, minting and redeeming codes, one side's relay.

Every request and every wait here has a deadline, and each failure is a
:class:`ClientError` whose text is the one line the user reads::

    ClientError            exit status 1: the transfer failed (the text says why)
     +-- SetupError        exit status 2: --server/RTCHUB_SERVER is wrong or unreachable
     +-- PeerGone          the other side went away (disconnected, cancelled, refused)
     +-- Declined          this side refused the transfer (the other side was told)
     +-- Stalled           a deadline passed (the other side is silent)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

__all__ = ["PEER_LEFT_GRACE", "SERVER_SETTING", "ClientError", "Declined", "Pairing",
           "PeerGone", "Relay", "Rendezvous", "SetupError", "Stalled", "server_url"]

#: How the user sets the server, named in every message about it.
SERVER_SETTING: Final = "--server/RTCHUB_SERVER"
#: Deadline of one HTTP request to the server (connecting included).
HTTP_TIMEOUT: Final = 15.0
#: Ping interval on the relay (a dead server is noticed within two).
HEARTBEAT: Final = 20.0
#: How long the news that the other side left (the relay's ``peer_left``, the data
#: channel's close) waits for what may still be on its way: the data channel's last
#: message, the other side's reason through the relay.
PEER_LEFT_GRACE: Final = 1.0


class ClientError(Exception):
    """Something the user should read: the server said no, or the peer went away."""

    exit_status = 1


class SetupError(ClientError):
    """The server URL is wrong or the server cannot be reached (exit status 2)."""

    exit_status = 2


class PeerGone(ClientError):
    """The other side disconnected, cancelled or refused."""


class Declined(ClientError):
    """This side refused the transfer, and told the other side."""


class Stalled(ClientError):
    """A wait passed its deadline."""


def server_url(value: str) -> str:
    """Check the server setting: ``http(s)://host[:port][/prefix]``, returned without a
    trailing slash; anything else raises :class:`SetupError` naming the setting."""
    where = f"{SERVER_SETTING} is {value!r}"
    text = value.strip()
    if "://" not in text:
        raise SetupError(f"{where}: it has no scheme; write it as a URL, such as "
                         f"http://{text or 'localhost:8080'}")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in ("ws", "wss"):
        http = "https" if scheme == "wss" else "http"
        raise SetupError(f"{where}: give the server's {http}:// address, such as "
                         f"{http}://{parts.netloc}, and the CLI finds the relay itself")
    if scheme not in ("http", "https"):
        raise SetupError(f"{where}: expected an http:// or https:// URL, such as "
                         "http://localhost:8080")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port == -1:
        raise SetupError(f"{where}: expected http://HOST[:PORT], such as "
                         "http://localhost:8080")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _ws_base(base: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(("wss" if parts.scheme == "https" else "ws", parts.netloc,
                       parts.path + "/ws", "", ""))


@dataclass(frozen=True, slots=True)
class Pairing:
    """A pair's appID; when we minted it, the code and how long it lives."""

    app_id: str
    code: str | None = None
    lifetime: float | None = None  # seconds from now until the code expires


def _lifetime(expires_at: object, date_header: str | None) -> float | None:
    """Seconds until ``expiresAt``. The local clock is precise; the server's ``Date``
    header (whole seconds) stands in for it when the two disagree by more than that."""
    if not isinstance(expires_at, str):
        return None
    try:
        expires = dt.datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if expires.tzinfo is None:
        return None
    now = dt.datetime.now(dt.UTC)
    if date_header:
        with contextlib.suppress(TypeError, ValueError):
            server_now = email.utils.parsedate_to_datetime(date_header)
            if server_now.tzinfo is not None and abs((now - server_now).total_seconds()) > 2:
                now = server_now
    return max((expires - now).total_seconds(), 0.0)


class Rendezvous:
    """The server's HTTP side."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self._session = session
        self._base = base

    def _unreachable(self, reason: str) -> SetupError:
        return SetupError(f"cannot reach the rtchub server at {self._base} ({SERVER_SETTING}): "
                          f"{reason}; check the address, and that 'rtchub serve' runs there")

    async def _post(self, path: str, body: dict[str, Any] | None
                    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        try:
            async with asyncio.timeout(HTTP_TIMEOUT):
                async with self._session.post(self._base + path, json=body) as resp:
                    raw = await resp.read()
        except TimeoutError:
            raise self._unreachable(f"no answer within {HTTP_TIMEOUT:g} s") from None
        except aiohttp.ClientConnectorError as exc:
            raise self._unreachable(str(exc.os_error.strerror or exc.os_error)) from None
        except aiohttp.ClientError as exc:
            raise self._unreachable(str(exc) or type(exc).__name__) from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if resp.status == 404 or not isinstance(data, dict):
            raise SetupError(f"{self._base} ({SERVER_SETTING}) is not an rtchub server: "
                             f"POST {path} answered HTTP {resp.status}")
        return resp.status, data, resp

    @staticmethod
    def _retry_after(resp: aiohttp.ClientResponse) -> str:
        after = resp.headers.get("Retry-After", "")
        return f" in {after} s" if after.isdigit() else " later"

    async def mint(self) -> Pairing:
        """A fresh code, its appID and its lifetime."""
        status, data, resp = await self._post("/rendezvous/code", None)
        if status == 503:
            raise ClientError("the server has no free code right now; try again"
                              + self._retry_after(resp))
        if status != 200 or "code" not in data or "appID" not in data:
            raise ClientError(f"the server refused a code: HTTP {status}: "
                              f"{data.get('error', data)}")
        return Pairing(str(data["appID"]), str(data["code"]),
                       _lifetime(data.get("expiresAt"), resp.headers.get("Date")))

    async def redeem(self, code: str) -> Pairing:
        """The appID behind ``code`` (each code works once)."""
        status, data, resp = await self._post("/rendezvous/redeem", {"code": code})
        if status == 410:
            raise ClientError(f"code {code} is used, expired or unknown; ask the sender for "
                              "a new one")
        if status == 429:
            raise ClientError("too many wrong codes from this address; try again"
                              + self._retry_after(resp))
        if status == 400:
            raise ClientError(f"{code!r} is not a code: {data.get('error', '')}")
        if status != 200 or "appID" not in data:
            raise ClientError(f"the server refused the code: HTTP {status}: "
                              f"{data.get('error', data)}")
        return Pairing(str(data["appID"]))

    async def ice_servers(self) -> list[dict[str, Any]]:
        """The iceServers the server recommends (RTC_CONFIG_JSON); [] when none."""
        try:
            async with asyncio.timeout(HTTP_TIMEOUT):
                async with self._session.get(self._base + "/api/rtc-config") as resp:
                    if resp.status != 200:
                        return []
                    data = orjson.loads(await resp.read())
        except TimeoutError:
            raise self._unreachable(f"no answer within {HTTP_TIMEOUT:g} s") from None
        except aiohttp.ClientConnectorError as exc:
            raise self._unreachable(str(exc.os_error.strerror or exc.os_error)) from None
        except aiohttp.ClientError as exc:
            raise self._unreachable(str(exc) or type(exc).__name__) from None
        except orjson.JSONDecodeError:
            return []
        servers = data.get("iceServers", []) if isinstance(data, dict) else []
        return servers if isinstance(servers, list) else []


#: What :meth:`Relay.watch` calls when the other side is gone.
GoneCallback = Callable[[PeerGone], None]


class Relay:
    """One side's pair relay socket.

    One owned task reads it. Until :meth:`watch`, frames queue up for
    :meth:`expect`; after it, only the other side's departure matters (a
    ``peer_left``, or an ``abort`` it left in our mailbox), and the callback hears
    of it. A relay that closes after the peer-to-peer connection exists is no
    failure: the data does not go through the server.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, peer: str) -> None:
        self._ws = ws
        self._peer = peer
        self._frames: asyncio.Queue[dict[str, Any] | ClientError] = asyncio.Queue()
        self._watcher: GoneCallback | None = None
        self._grace: asyncio.TimerHandle | None = None
        self._pong: asyncio.Future[None] | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="relay")

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, base: str, app_id: str, side: str,
                   peer: str) -> Relay:
        """Open ``/ws?appID=...&side=...``; ``peer`` names the other side in messages."""
        url = f"{_ws_base(base)}?appID={app_id}&side={side}"
        try:
            async with asyncio.timeout(HTTP_TIMEOUT):
                ws = await session.ws_connect(url, heartbeat=HEARTBEAT,
                                              timeout=aiohttp.ClientWSTimeout(ws_close=2.0))
        except TimeoutError:
            raise SetupError(f"the rtchub server at {base} ({SERVER_SETTING}) did not open "
                             f"the pair relay within {HTTP_TIMEOUT:g} s") from None
        except aiohttp.WSServerHandshakeError as exc:
            raise ClientError(f"the server refused the pair relay: HTTP {exc.status}"
                              ) from None
        except aiohttp.ClientError as exc:
            raise SetupError(f"cannot open the pair relay at {base} ({SERVER_SETTING}): "
                             f"{exc}") from None
        return cls(ws, peer)

    async def _read(self) -> None:
        while True:
            try:
                msg = await self._ws.receive()
            except (aiohttp.ClientError, RuntimeError, OSError) as exc:
                self._frames.put_nowait(ClientError(f"the pair relay failed: {exc}"))
                return
            if msg.type != aiohttp.WSMsgType.TEXT:
                if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.PING,
                                aiohttp.WSMsgType.PONG):
                    continue
                self._frames.put_nowait(ClientError(
                    f"the server closed the pair relay (code {self._ws.close_code})"))
                return
            try:
                frame = orjson.loads(msg.data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(frame, dict):
                self._dispatch(frame)

    def _dispatch(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "pong":
            if self._pong is not None and not self._pong.done():
                self._pong.set_result(None)
            return
        payload = frame.get("payload")
        gone: PeerGone | None = None
        if kind == "peer_left":
            gone = PeerGone(f"{self._peer} disconnected")
        elif kind == "send" and isinstance(payload, dict) and payload.get("kind") == "abort":
            gone = PeerGone(str(payload.get("reason") or f"{self._peer} stopped"))
        if self._watcher is None:
            self._frames.put_nowait(gone if gone is not None else frame)
        elif gone is not None and kind == "peer_left":
            # what the data channel still carries (a last result, an abort with its reason)
            # may be on its way: let it arrive first
            if self._grace is None:
                self._grace = asyncio.get_running_loop().call_later(
                    PEER_LEFT_GRACE, self._watcher, gone)
        elif gone is not None:
            self._watcher(gone)

    async def expect(self, kind: str, timeout: float, late: str) -> dict[str, Any]:
        """The next frame of type ``kind`` within ``timeout`` seconds (``late``: the message
        when it does not come). The other side's departure or a server error raises."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    item = await self._frames.get()
                    if isinstance(item, ClientError):
                        self._frames.put_nowait(item)  # the relay stays gone for later calls
                        raise item
                    if item.get("type") == "error":
                        raise ClientError(f"the server refused: {item.get('error')}")
                    if item.get("type") == kind:
                        return item
        except TimeoutError:
            raise Stalled(late) from None

    def watch(self, gone: GoneCallback) -> None:
        """From now on, report the other side's departure to ``gone`` (once)."""
        fired = False

        def once(exc: PeerGone) -> None:
            nonlocal fired
            if not fired:
                fired = True
                gone(exc)

        self._watcher = once
        while not self._frames.empty():
            item = self._frames.get_nowait()
            if isinstance(item, PeerGone):
                once(item)

    async def send(self, obj: dict[str, Any]) -> None:
        """Send one JSON frame (a closed relay drops it)."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._ws.send_str(orjson.dumps(obj).decode())

    async def tell(self, reason: str, timeout: float) -> None:
        """Leave ``reason`` in the other side's mailbox: why we stop. Waits (up to
        ``timeout``) for the pong to a ping sent after it: the server applies a side's
        frames in order, and may drop those still queued when the side disconnects."""
        self._pong = asyncio.get_running_loop().create_future()
        await self.send({"type": "send", "payload": {"kind": "abort", "reason": reason}})
        await self.send({"type": "ping"})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._pong

    async def close(self) -> None:
        """Stop reading and close the socket."""
        if self._grace is not None:
            self._grace.cancel()
        self._reader.cancel()
        await asyncio.wait({self._reader})  # our own cancellation still propagates
        await self._ws.close()
