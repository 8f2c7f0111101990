"""The pairing feature (seed 004): ``/rendezvous/code``, ``/rendezvous/redeem``, CORS,
the ``/ws?appID=`` relay endpoint, metrics and the janitor. ``setup(app)`` mounts it.

CORS follows the origin policy (``WS_ALLOWED_ORIGINS``, else ``DEV``/``CORS_ORIGINS``):
an allowed ``Origin`` is echoed in ``Access-Control-Allow-Origin``; a disallowed
one gets ``403 origin_not_allowed``; ``OPTIONS`` answers preflights.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

from aiohttp import hdrs, web

from rtchub.errors import InvalidField, OriginNotAllowed, RtcHubError
from rtchub.features.pairing import wire
from rtchub.features.pairing.events import EVENTS
from rtchub.features.pairing.handler import PairDialect
from rtchub.features.pairing.rules import RECORDS, Chain, chain_items, chain_of_items
from rtchub.features.pairing.service import PairService, PairSettings
from rtchub.hub import Hub
from rtchub.net.http import HUB, error_response, json_response, remote_of
from rtchub.net.router import ROUTER, Endpoint

__all__ = ["PAIRING", "setup"]

PAIRING = web.AppKey("pairing", PairService)
_PREFIX = "/rendezvous/"
_CORS_MAX_AGE = "600"


def rfc3339(ts: float) -> str:
    """A Unix timestamp as RFC 3339 UTC with millisecond precision."""
    return (dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"))


def _check_origin(request: web.Request) -> None:
    origin = request.headers.get(hdrs.ORIGIN)
    hub = request.app[HUB]
    if not hub.config.origins.allows(origin):
        hub.stats.http_rejections["origin"] += 1
        raise OriginNotAllowed(f"origin {origin!r} is not allowed")


async def mint_code(request: web.Request) -> web.Response:
    """``POST /rendezvous/code`` -> ``{"code", "appID", "expiresAt"}``."""
    service = request.app[PAIRING]
    try:
        _check_origin(request)
        minted = await service.mint(remote_of(request))
    except RtcHubError as err:
        return error_response(err)
    return json_response({"code": minted.code, "appID": minted.app_id,
                  "expiresAt": rfc3339(service.wall_time(minted.expires_at))})


async def redeem_code(request: web.Request) -> web.Response:
    """``POST /rendezvous/redeem`` ``{"code": "NNNN"}`` -> ``{"appID", "expiresAt"}`` once."""
    service = request.app[PAIRING]
    remote = remote_of(request)
    digits = service.settings.code_digits
    try:
        _check_origin(request)
        try:
            code = wire.parse_redeem(await request.read(), digits)
        except InvalidField:
            await service.fail_redeem(remote)
            raise
        entry = await service.redeem(code, remote)
    except RtcHubError as err:
        return error_response(err)
    return json_response({"appID": entry.app_id,
                  "expiresAt": rfc3339(service.wall_time(entry.expires_at))})


async def preflight(request: web.Request) -> web.Response:
    """CORS preflight for the rendezvous endpoints."""
    try:
        _check_origin(request)
    except RtcHubError as err:
        return error_response(err)
    headers = {"Access-Control-Allow-Methods": "POST, OPTIONS",
               "Access-Control-Allow-Headers": request.headers.get(
                   "Access-Control-Request-Headers", "content-type"),
               "Access-Control-Max-Age": _CORS_MAX_AGE}
    return web.Response(status=204, headers=headers)


async def _cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Add CORS headers to every rendezvous response (errors and 429s included)."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None or not request.path.startswith(_PREFIX):
        return
    if request.app[HUB].config.origins.allows(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        response.headers.add(hdrs.VARY, "Origin")


def _metrics(hub: Hub, service: PairService) -> None:
    stats = hub.stats
    stats.add_counters("rtchub_pair_codes", "Pairing code events: minted, redeemed, gone "
                       "(410), expired, exhausted (503), rate_limited (429 on redeem), "
                       "mint_limited (429 on mint), budget_exhausted (the deployment's "
                       "failed-redeem budget ran out: alert on it), pairs_expired.",
                       "event", lambda: dict(service.codes))
    stats.add_counters("rtchub_pair_relayed", "Frames relayed between pair sides, by type.",
                       "type", lambda: dict(service.relayed))
    stats.add_counters("rtchub_pair_telemetry", "Client telemetry events, by event.", "event",
                       lambda: dict(service.telemetry))
    stats.add_gauges("rtchub_pairs", "Pairs alive on this node.",
                     lambda: {"": float(len(service.depths))})
    stats.add_gauges("rtchub_pair_sides_connected", "Pair sides connected to this node.",
                     lambda: {"": float(service.sides_connected)})
    stats.add_gauges("rtchub_pair_mailbox_bytes", "Mailbox bytes held, over all pairs "
                     "(bounded by PAIR_MAILBOX_TOTAL).",
                     lambda: {"": float(service.held_total)})
    stats.add_gauges("rtchub_pair_mailbox_depth", "Mailbox messages waiting for a "
                     "delivered ack, over all pairs.",
                     lambda: {"": float(sum(service.depths.values()))})


def setup(app: web.Application) -> None:
    """Mount pairing's routes, relay endpoint, metrics and janitor on ``app``."""
    hub = app[HUB]
    limits = hub.config.limits
    settings = PairSettings(ttl=limits.room_ttl, code_digits=limits.pair_code_digits,
                            mailbox_size=limits.pair_mailbox_size,
                            redeem_failures_per_min=limits.pair_redeem_failures_per_min,
                            mailbox_bytes=limits.pair_mailbox_bytes,
                            mailbox_total=limits.pair_mailbox_total,
                            mints_per_min=limits.pair_mints_per_min,
                            max_per_ip=limits.pair_max_per_ip,
                            redeem_budget_per_min=limits.pair_redeem_budget_per_min)
    hub.codec.register(*RECORDS, *EVENTS)
    hub.codec.register_flat(Chain, list[str], chain_items, chain_of_items)
    service = PairService(hub.backplane.store, hub.courier, settings, hub.clock)
    hub.backplane.on_sweep(service.sweep_node)
    app[PAIRING] = service
    app[ROUTER].add(Endpoint("/ws", (PairDialect(service, hub.stats),), selected_by="appID",
                             parse_query=wire.parse_query))
    app.router.add_post("/rendezvous/code", mint_code)
    app.router.add_post("/rendezvous/redeem", redeem_code)
    app.router.add_route("OPTIONS", "/rendezvous/code", preflight)
    app.router.add_route("OPTIONS", "/rendezvous/redeem", preflight)
    app.on_response_prepare.append(_cors_headers)
    _metrics(hub, service)
    interval = min(max(limits.room_ttl / 10, 1.0), 30.0)

    async def janitor(app: web.Application) -> AsyncIterator[None]:
        task = hub.tasks.spawn(service.janitor(interval), name="pair-janitor")
        yield
        task.cancel()

    app.cleanup_ctx.append(janitor)
