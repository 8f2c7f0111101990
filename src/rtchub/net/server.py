"""Listeners, TLS, the front router, and graceful shutdown.

``Server.start`` binds every listener (TCP, IPv6, Unix socket; TLS when
configured); each accepted socket goes through the front protocol to picows
(fast WebSocket paths) or aiohttp (everything else). ``Server.stop`` stops
accepting, closes every WebSocket with 1001, waits for the drain up to
``SHUTDOWN_TIMEOUT``, then cleans up the app and the hub.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import picows
from aiohttp import web

from rtchub.config import Config, ListenAddress
from rtchub.errors import RtcHubError
from rtchub.hub import Hub
from rtchub.net.clientip import client_ip
from rtchub.net.fastws import FastListener, Heartbeat, Upgrade, build_protocol
from rtchub.net.sniffer import FrontProtocol

__all__ = ["Listener", "Server", "ssl_context"]

log = logging.getLogger("rtchub")


def ssl_context(config: Config) -> ssl.SSLContext | None:
    """The server TLS context, or None without TLS."""
    if not config.tls_cert_file or not config.tls_key_file:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    return ctx


@dataclass(frozen=True, slots=True)
class Listener:
    """One bound address and the app it serves; ``fast`` enables the picows /ws path."""

    address: ListenAddress
    app: web.Application
    fast: bool = True


class Server:
    """Runs a hub's apps on their listeners until stopped."""

    def __init__(self, hub: Hub, listeners: list[Listener]) -> None:
        self.hub = hub
        self._listeners = listeners
        self._runners: list[web.AppRunner] = []
        self._servers: list[asyncio.Server] = []
        self._ssl = ssl_context(hub.config)
        self.heartbeat = Heartbeat(hub.config.heartbeat)
        self.bound: list[tuple[ListenAddress, Any]] = []

    async def start(self) -> None:
        """Set up the apps and bind every listener; the hub becomes ready."""
        loop = asyncio.get_running_loop()
        runners: dict[int, web.AppRunner] = {}
        for listener in self._listeners:
            runner = runners.get(id(listener.app))
            if runner is None:
                runner = web.AppRunner(listener.app, handle_signals=False, access_log=None,
                                       shutdown_timeout=self.hub.config.shutdown_timeout)
                await runner.setup()
                runners[id(listener.app)] = runner
                self._runners.append(runner)
            # picows tunes TCP options on accept, so Unix sockets take the aiohttp path
            factory = self._protocol_factory(runner, listener.fast and not listener.address.is_unix)
            addr = listener.address
            if addr.path is not None:
                if os.path.exists(addr.path):
                    os.unlink(addr.path)
                server = await loop.create_unix_server(factory, addr.path, ssl=self._ssl,
                                                       backlog=4096)
            else:
                server = await loop.create_server(
                    factory, addr.host or None, addr.port, ssl=self._ssl, backlog=4096,
                    reuse_address=True, family=socket.AF_UNSPEC)
            self._servers.append(server)
            for sock in server.sockets:
                self.bound.append((addr, sock.getsockname()))
            log.info("listening on %s%s", addr, " (tls)" if self._ssl else "")
        await self.hub.start()
        self.hub.tasks.spawn(self.heartbeat.run(), name="ws-heartbeat")

    def port(self, index: int = 0) -> int:
        """The TCP port actually bound by listener ``index`` (for ``:0`` in tests)."""
        addr = self._listeners[index].address
        for bound_addr, name in self.bound:
            if bound_addr == addr and isinstance(name, tuple):
                return int(name[1])
        raise LookupError(f"listener {index} has no TCP port")

    def _protocol_factory(self, runner: web.AppRunner, fast: bool) -> Any:
        server = runner.server
        assert server is not None

        def decide(method: bytes, target: bytes, upgrade: bool,
                   transport: asyncio.Transport) -> asyncio.BaseProtocol | None:
            if not (fast and upgrade and method == b"GET"):
                return None
            path = unquote(target.split(b"?", 1)[0].decode("latin-1"))
            if path not in self.hub.endpoints or b"appID=" in target:
                return None
            return self._fast_protocol(path, transport)

        return lambda: FrontProtocol(decide, server)

    def _fast_protocol(self, path: str, transport: asyncio.Transport) -> asyncio.BaseProtocol:
        hub = self.hub
        config = hub.config
        limits = config.limits
        peer = transport.get_extra_info("peername")
        peer_ip = peer[0] if isinstance(peer, tuple) else "unix"

        def listener_factory(request: picows.WSUpgradeRequest) -> Any:
            remote = client_ip(peer_ip, request.headers.get("X-Forwarded-For"),
                               config.trusted_proxies)
            try:
                factory = hub.admit(path, request.headers.get("Origin"), remote)
            except RtcHubError as err:
                headers = {"Content-Type": "application/json"}
                retry = getattr(err, "retry_after", None)
                if retry is not None:
                    headers["Retry-After"] = str(max(1, round(retry + 0.5)))
                body = f'{{"code":"{err.code}","error":"{_json_escape(err.message)}"}}'
                response = picows.WSUpgradeResponse.create_error_response(
                    err.http_status, body.encode(), headers)
                return picows.WSUpgradeResponseWithListener(response, None)
            upgrade = Upgrade(factory, remote, hub.stats, max_message=limits.max_message_bytes,
                              send_buffer=limits.send_buffer, send_timeout=limits.send_timeout,
                              write_buffer=limits.write_buffer)
            return FastListener(upgrade, self._opened, self._gone)

        return build_protocol(listener_factory, max_message=limits.max_message_bytes,
                              read_buffer=limits.read_buffer)

    def _opened(self, listener: FastListener) -> None:
        self.hub.stats.connections_total += 1
        self.hub.stats.connections_open += 1
        self.heartbeat.add(listener)

    def _gone(self, listener: FastListener) -> None:
        self.hub.stats.connections_open -= 1
        self.heartbeat.discard(listener)

    async def stop(self) -> None:
        """Graceful shutdown, bounded by SHUTDOWN_TIMEOUT."""
        timeout = self.hub.config.shutdown_timeout
        for server in self._servers:
            server.close()
        self.hub.drain()
        if not await self.hub.wait_drained(timeout):
            log.warning("shutdown: %d connections did not close within %gs; cutting them",
                        len(self.hub.connections), timeout)
        for runner in self._runners:
            await runner.cleanup()
        for server in self._servers:
            server.close()
        await self.hub.close()
        for listener in self._listeners:
            path = listener.address.path
            if path is not None and os.path.exists(path):
                os.unlink(path)


def _json_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
