"""Composition root: the features, the hub, the network layer, and running them.

``create_app(config)`` builds the :class:`~rtchub.hub.Hub` (what every feature shares),
the upgrade router and the gateway (where connections come in), mounts every feature
listed in :data:`FEATURES` on one aiohttp application, and returns it. ``build_server``
adds the listeners; :func:`serve` runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Callable

from aiohttp import web

from rtchub.base.log import setup_logging
from rtchub.config import Config
from rtchub.features.calls import forge_routes as forge
from rtchub.features.calls import routes as calls
from rtchub.features.dashboard import routes as dashboard
from rtchub.features.match import routes as match
from rtchub.features.pairing import routes as pairing
from rtchub.features.rooms import routes as rooms
from rtchub.features.site import routes as site
from rtchub.features.voice import routes as voice
from rtchub.hub import Hub
from rtchub.net.gateway import Gateway
from rtchub.net.http import HUB, rate_limit
from rtchub.net.ops import add_ops_routes
from rtchub.net.router import ROUTER, Router
from rtchub.net.server import Listener, Server
from rtchub.views import wire_dashboard

__all__ = ["FEATURES", "GATEWAY", "Feature", "build_server", "create_app", "serve"]

log = logging.getLogger("rtchub")

# A feature mounts itself on the app: its routes, its dialects on the router, its service,
# metrics and background tasks (owned by the hub). Adding a feature is one line here.
Feature = Callable[[web.Application], None]
FEATURES: list[Feature] = [
    site.setup,     # the browser app's lobby page and RTC configuration (seed 000's client)
    rooms.setup,    # seed 000: room signaling on /ws and /ws/rooms
    calls.setup,    # seed 003: call rooms (mesh or SFU) riding the rooms dialect
    voice.setup,    # seed 002: voice broadcast on /ws and /ws/voice, /health, /stream/*
    pairing.setup,  # seed 004: rendezvous codes, /ws?appID= relay and mailbox
    match.setup,    # seed 001: Socket.IO matchmaking, /api/status, /match
    forge.setup,    # seed 003: xraph/forge's signaling at /webrtc/signal/{roomID}
    dashboard.setup,  # /dashboard behind DASHBOARD_TOKEN: every feature, live
]

GATEWAY = web.AppKey("gateway", Gateway)
# health, readiness and metrics stay reachable whatever the HTTP rate limit
_RATE_EXEMPT = frozenset({"/healthz", "/readyz", "/health", "/socket.io/"})


def create_app(config: Config, hub: Hub | None = None) -> web.Application:
    """The main aiohttp application for ``config`` (the hub is built when not given)."""
    hub = hub if hub is not None else Hub(config)
    router = Router(hub)
    app = web.Application(middlewares=[rate_limit(_RATE_EXEMPT | {config.metrics_route})],
                          client_max_size=config.limits.max_message_bytes)
    app[HUB] = hub
    app[ROUTER] = router
    app[GATEWAY] = gateway = Gateway(hub, router)
    add_ops_routes(app)
    for setup in FEATURES:
        setup(app)
    # a rooms join learns call rooms (topology, tokens, SFU participants) from the calls
    # feature; features never import each other, so the two meet here
    app[rooms.ROOMS_DIALECT].calls = app[calls.CALL_JOINS]
    wire_dashboard(app)   # the dashboard reads every feature through rtchub.views
    for path in sorted(router.paths):
        app.router.add_get(path, gateway.handle)
    site.add_asset_route(app)
    return app


def build_server(config: Config, hub: Hub | None = None) -> Server:
    """A server with the main listener and, when STREAM_ADDR is set, the stream listener."""
    app = create_app(config, hub)
    listeners = [Listener(config.addr, app)]
    if config.stream_addr is not None:
        listeners.append(Listener(config.stream_addr, voice.stream_only_app(app), fast=False,
                                  setting="STREAM_ADDR", optional=True))
    return Server(app[HUB], app[GATEWAY], listeners)


async def serve(config: Config) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    server = build_server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
    except BaseException:
        await server.stop()
        raise
    # What start-up made (modules, settings, the app's routes and features) lives as long
    # as the process: frozen out of the collector's view, a full collection walks only
    # what clients made, which keeps its pause (every connection waits) short
    gc.collect()
    gc.freeze()
    everywhere = " (on every interface)" if not config.addr.host and not config.addr.path else ""
    if config.calls.dev:  # like livekit-server --dev: say it once, plainly
        log.warning("dev mode: no CALL_TOKEN_SECRET, so anyone joins call rooms as a guest; "
                    "set one to require join tokens ('rtchub token' mints them)")
    log.info("rtchub ready%s: open %s", everywhere, "  ".join(server.urls()))
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
