"""Composition root: a config in, a hub and its aiohttp apps out.

``create_app(config)`` builds the :class:`~rtchub.hub.Hub`, registers every
feature's routes on one aiohttp application, and returns it with the hub under
the typed key :data:`~rtchub.net.http.HUB`. :func:`serve` runs it until
SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

from aiohttp import web

from rtchub.base.log import setup_logging
from rtchub.base.metrics import new_registry
from rtchub.config import Config
from rtchub.features.match import routes as sio
from rtchub.features.pairing import routes as rendezvous
from rtchub.features.voice import routes as voice
from rtchub.hub import Hub
from rtchub.net.http import HUB, REGISTRY, add_asset_route, add_routes, rate_limit
from rtchub.net.server import Listener, Server

__all__ = ["FEATURES", "Feature", "build_server", "create_app", "serve"]

log = logging.getLogger("rtchub")

# A feature registers its dialects on the hub and its routes on the app. Each
# feature module exposes one ``setup(app, hub)``; add it here, in one line.
Feature = Callable[[web.Application, Hub], None]
FEATURES: list[Feature] = [
    rendezvous.setup,  # seed 004: rendezvous codes, A/B relay and mailbox
    sio.setup,  # seed 001: Socket.IO matchmaking, /api/status, /match
    voice.setup,  # seed 002: voice broadcast on /ws, /health, /stream/*
]


def create_app(config: Config, hub: Hub | None = None) -> web.Application:
    """The main aiohttp application for ``config`` (the hub is built when not given)."""
    hub = hub if hub is not None else Hub(config)
    app = web.Application(middlewares=[rate_limit], client_max_size=config.limits
                          .max_message_bytes)
    app[HUB] = hub
    app[REGISTRY] = new_registry(hub.stats)
    for setup in FEATURES:
        setup(app, hub)
    add_routes(app, hub)
    add_asset_route(app)
    return app


def build_server(config: Config, hub: Hub | None = None) -> Server:
    """A server with the main listener and, when STREAM_ADDR is set, the stream listener."""
    app = create_app(config, hub)
    listeners = [Listener(config.addr, app)]
    if config.stream_addr is not None:
        listeners.append(Listener(config.stream_addr, voice.stream_only_app(app), fast=False))
    return Server(app[HUB], listeners)


async def serve(config: Config) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    server = build_server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    log.info("rtchub ready")
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        await server.stop()
        log.info("stopped")


def run(config: Config) -> None:
    """Configure logging and the event loop, then :func:`serve`."""
    setup_logging(config.log_level, config.log_format)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
