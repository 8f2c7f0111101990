"""Listeners, TLS, the head sniffer, and graceful shutdown.

``Server.start`` binds every listener (TCP, IPv6, Unix socket; TLS when configured); each
accepted socket goes through the head sniffer to picows (the gateway's fast path) or to
aiohttp (everything else). ``Server.stop`` stops accepting, closes every connection with
1001, waits for the drain up to ``SHUTDOWN_TIMEOUT``, then cleans up the apps and the hub.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from rtchub.base.faultlog import FaultLog
from rtchub.config import Config, ConfigError, ListenAddress
from rtchub.hub import Hub
from rtchub.net.fastws import PicowsChanged, check_picows
from rtchub.net.gateway import Gateway
from rtchub.net.router import split_target
from rtchub.net.sniffer import HeadSniffer

__all__ = ["Listener", "Server", "ssl_context"]

log = logging.getLogger("rtchub")


def ssl_context(config: Config) -> ssl.SSLContext | None:
    """The server TLS context, or None without TLS; :class:`ConfigError` naming the file
    and what is wrong with it when the pair cannot be loaded."""
    cert, key = config.tls_cert_file, config.tls_key_file
    if not cert or not key:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise ConfigError(f"TLS_KEY_FILE={key!r}: this key does not belong to the "
                              f"certificate in TLS_CERT_FILE={cert!r}; give the key the "
                              "certificate was issued for") from None
        raise ConfigError(f"TLS_CERT_FILE={cert!r} / TLS_KEY_FILE={key!r}: not a PEM "
                          f"certificate and its private key ({exc.reason or exc}); check "
                          "both files") from None
    except OSError as exc:
        raise ConfigError(f"TLS_CERT_FILE={cert!r} / TLS_KEY_FILE={key!r}: cannot be read "
                          f"({exc.strerror or exc})") from None
    return ctx


@dataclass(frozen=True, slots=True)
class Listener:
    """One bound address and the app it serves; ``fast`` enables the picows /ws path.

    ``setting`` names the setting the address came from (for error messages); an
    ``optional`` listener that cannot bind is reported in one line and skipped."""

    address: ListenAddress
    app: web.Application
    fast: bool = True
    setting: str = "ADDR"
    optional: bool = False


def bind_error(listener: Listener, exc: OSError) -> str:
    """One line naming the setting, the address, what went wrong and what to do."""
    where = f"{listener.setting}={str(listener.address)!r}"
    if exc.errno == errno.EADDRINUSE:
        return (f"{where}: the address is already in use (another process listens there); "
                f"stop it or choose another {listener.setting}")
    if exc.errno == errno.EACCES:
        return (f"{where}: permission denied (ports below 1024 need privileges); choose a "
                f"port of 1024 or above, or run behind a proxy")
    if exc.errno in (errno.EADDRNOTAVAIL, socket.EAI_NONAME):
        return f"{where}: no such address on this machine; use one of its addresses or ':port'"
    return f"{where}: cannot listen there ({exc.strerror or exc})"


class Server:
    """Runs a hub's apps on their listeners until stopped."""

    def __init__(self, hub: Hub, gateway: Gateway, listeners: list[Listener]) -> None:
        self.hub = hub
        self.gateway = gateway
        self._listeners = listeners
        self._runners: list[web.AppRunner] = []
        self._servers: list[asyncio.Server] = []
        self._ssl = ssl_context(hub.config)
        self.bound: list[tuple[ListenAddress, Any]] = []
        self.fast_path = True

    @property
    def app(self) -> web.Application:
        """The main application (the first listener's)."""
        return self._listeners[0].app

    async def start(self) -> None:
        """Set up the apps and bind every listener; the hub becomes ready."""
        try:
            check_picows()
        except PicowsChanged as exc:
            log.error("the /ws fast path is off (aiohttp serves every WebSocket): %s", exc)
            self.fast_path = False
        loop = asyncio.get_running_loop()
        config = self.hub.config
        runners: dict[int, web.AppRunner] = {}
        # aiohttp logs a client's malformed request with a traceback at ERROR: one line
        burst, period = config.log_fault_rate
        faults = FaultLog(logging.getLogger("aiohttp.server"), self.hub.clock, burst=burst,
                          period=period)
        for listener in self._listeners:
            runner = runners.get(id(listener.app))
            if runner is None:
                runner = web.AppRunner(listener.app, handle_signals=False, access_log=None,
                                       shutdown_timeout=config.shutdown_timeout,
                                       keepalive_timeout=config.head_timeout,
                                       logger=faults)
                await runner.setup()
                runners[id(listener.app)] = runner
                self._runners.append(runner)
            # picows tunes TCP options on accept, so Unix sockets take the aiohttp path
            fast = listener.fast and self.fast_path and not listener.address.is_unix
            factory = self._protocol_factory(runner, fast)
            addr = listener.address
            try:
                server = await self._bind(loop, factory, addr)
            except OSError as exc:
                if not listener.optional:
                    raise ConfigError(bind_error(listener, exc)) from None
                log.warning("%s; /stream/* is served on ADDR only", bind_error(listener, exc))
                continue
            self._servers.append(server)
            for sock in server.sockets:
                self.bound.append((addr, sock.getsockname()))
            where = [str(addr) if addr.path is not None else
                     str(ListenAddress(sock.getsockname()[0], sock.getsockname()[1]))
                     for sock in server.sockets]
            log.info("listening on %s%s", ", ".join(where), " (tls)" if self._ssl else "")
        await self.hub.start()
        self.hub.tasks.spawn(self.gateway.heartbeat.run(), name="ws-heartbeat")

    async def _bind(self, loop: asyncio.AbstractEventLoop, factory: Any, addr: ListenAddress
                    ) -> asyncio.Server:
        if addr.path is not None:
            if os.path.exists(addr.path):
                os.unlink(addr.path)
            return await loop.create_unix_server(factory, addr.path, ssl=self._ssl,
                                                 backlog=4096)
        return await loop.create_server(
            factory, addr.host or None, addr.port, ssl=self._ssl, backlog=4096,
            reuse_address=True, family=socket.AF_UNSPEC)

    def urls(self) -> list[str]:
        """What to open: the app, the match page, the voice page, metrics (main listener)."""
        addr = self._listeners[0].address
        if addr.path is not None:
            return [f"unix:{addr.path} (put a reverse proxy in front)"]
        scheme = "https" if self._ssl else "http"
        host = addr.host if addr.host not in (None, "", "0.0.0.0", "::") else "localhost"
        if host is not None and ":" in host:
            host = f"[{host}]"
        base = f"{scheme}://{host}:{self.port()}"
        return [f"{base}/", f"{base}/match", f"{base}/voice.html",
                f"{base}{self.hub.config.metrics_route}"]

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
        gateway = self.gateway
        hub = self.hub

        def decide(method: bytes, target: bytes, upgrade: bool,
                   transport: asyncio.Transport) -> asyncio.BaseProtocol | None:
            if not (fast and upgrade and method == b"GET"):
                return None
            path, query = split_target(target.decode("latin-1"))
            if not gateway.router.serves(path, query):
                return None
            return gateway.fast_protocol(transport)

        return lambda: HeadSniffer(decide, server, hub.clock, hub.config.head_timeout)

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
