"""Seed 002's HTTP endpoints: MP3 listeners, ``/stream/status`` and ``/health``.

The MP3 routes are served on the main port and, when ``STREAM_ADDR`` is set,
on a second listener whose app serves only ``/stream/*``. A listener reads its
stream through a bounded queue; when the queue overflows (the client reads too
slowly) or the stream ends, its response ends.
"""

from __future__ import annotations

from aiohttp import web

from rtchub.errors import CapacityError, RtcHubError, StreamNotFound
from rtchub.features.voice.live import Broadcasts
from rtchub.features.voice.service import VoiceService
from rtchub.hub import Lifecycle
from rtchub.net.http import HUB, error_response, json_response

__all__ = ["BROADCASTS", "VOICE", "WAITING_PAGE", "add_health_route", "add_stream_routes"]

VOICE = web.AppKey("voice", VoiceService)
BROADCASTS = web.AppKey("broadcasts", Broadcasts)

WAITING_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Waiting for a stream</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; text-align: center; margin-top: 20vh">
<h1>No stream is live yet</h1>
<p id="status">This page starts playing when someone starts sending.</p>
<script>
(function () {
  var delay = 1000;
  function poll() {
    fetch("status", {cache: "no-store"}).then(function (r) { return r.json(); })
      .then(function (body) {
        if (body.active_streams && body.active_streams.length > 0) {
          location.reload();
          return;
        }
        delay = Math.min(delay * 2, 10000);
        setTimeout(poll, delay);
      })
      .catch(function () { delay = Math.min(delay * 2, 10000); setTimeout(poll, delay); });
  }
  setTimeout(poll, delay);
})();
</script></body></html>
"""


async def stream_status(request: web.Request) -> web.Response:
    """``{"active_streams": [...]}``."""
    return json_response({"active_streams": request.app[VOICE].streams.ids()})


async def latest_mp3(request: web.Request) -> web.StreamResponse:
    """The latest stream as MP3, or the waiting page while none is live."""
    return await _serve(request, None)


async def stream_mp3(request: web.Request) -> web.StreamResponse:
    """``/stream/{stream_id}.mp3``: that stream as MP3, or 404 ``Stream not found``."""
    name = request.match_info["file"]
    if not name.endswith(".mp3") or len(name) <= 4:
        return web.Response(status=404, text="Stream not found")
    return await _serve(request, name[:-4])


async def _serve(request: web.Request, stream_id: str | None) -> web.StreamResponse:
    voice, live = request.app[VOICE], request.app[BROADCASTS]
    try:
        info = voice.streams.find(stream_id)
        sid = info.stream_id
        live.ensure(info)   # a stream of another node is relayed here
        listener = live.listen(sid)
    except (StreamNotFound, RtcHubError) as err:
        if isinstance(err, CapacityError):
            return error_response(err)
        if stream_id is None:
            return web.Response(text=WAITING_PAGE, content_type="text/html",
                                headers={"Cache-Control": "no-cache"})
        return web.Response(status=404, text="Stream not found")
    response = web.StreamResponse(headers={"Content-Type": "audio/mpeg",
                                           "Cache-Control": "no-cache, no-store",
                                           "X-Stream-Id": sid})
    voice.listeners_changed(sid, live.receivers(sid), live.mp3_listeners(sid))
    try:
        await response.prepare(request)
        while (chunk := await listener.read()) is not None:
            await response.write(chunk)
    except (ConnectionError, RtcHubError):
        pass
    finally:
        live.unlisten(sid, listener)
        voice.listeners_changed(sid, live.receivers(sid), live.mp3_listeners(sid))
    return response


async def health(request: web.Request) -> web.Response:
    """Seed 002's health JSON; 500 when unhealthy."""
    hub = request.app[HUB]
    voice, live = request.app[VOICE], request.app[BROADCASTS]
    healthy = hub.state is Lifecycle.READY and live.webrtc_available and not live.closed
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "webrtc_available": live.webrtc_available,
        "audio_server_running": not live.closed,
        "active_streams": len(voice.streams),
        "connected_clients": voice.audience,
        "uptime_seconds": int(hub.uptime()),
    }
    return json_response(body, status=200 if healthy else 500)


def add_stream_routes(app: web.Application) -> None:
    """The ``/stream/*`` routes (on the main app and on the STREAM_ADDR app)."""
    app.router.add_get("/stream/status", stream_status)
    app.router.add_get("/stream/latest.mp3", latest_mp3)
    app.router.add_get("/stream/{file}", stream_mp3)


def add_health_route(app: web.Application) -> None:
    """``GET /health`` (main app only)."""
    app.router.add_get("/health", health)
