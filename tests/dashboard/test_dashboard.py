"""/dashboard over real sockets: off without a token, closed without it, and a snapshot
that lists what real clients of every feature are doing."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import pytest

from rtchub.config import ConfigError, load
from rtchub.config.calls import CallSettings
from rtchub.features.calls.routes import CALL_MEDIA
from rtchub.features.dashboard.routes import DASHBOARD
from rtchub.features.dashboard.rules import COOKIE, QualitySample
from tests.calls.support import call
from tests.match.support import SioClient
from tests.pairing.support import mint, side
from tests.support import Running, WsClient, running
from tests.voice.voiceclients import start_sender

TOKEN = "dashboard-token-for-tests-0123456789"
LOOPBACK = ("127.0.0.1",)


async def get(srv: Running, path: str, headers: Mapping[str, str] | None = None,
              cookies: Mapping[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    """GET ``path``: status, body text, headers."""
    async with aiohttp.ClientSession(cookies=cookies) as http, \
            http.get(srv.url + path, headers=headers, allow_redirects=False) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


async def snapshot(srv: Running) -> dict[str, Any]:
    """The dashboard's snapshot, with the bearer token."""
    status, _, _ = await get(srv, "/dashboard/api/snapshot")
    assert status == 401
    async with aiohttp.ClientSession() as http, http.get(
            srv.url + "/dashboard/api/snapshot",
            headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "no-store"
        body = await resp.json()
        assert isinstance(body, dict)
        return body


async def test_off_without_a_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "rtchub.dashboard")
    async with running() as srv:
        for path in ("/dashboard", "/dashboard/api/snapshot"):
            status, _, _ = await get(srv, path, {"Authorization": f"Bearer {TOKEN}"})
            assert status == 404, path
    assert any("dashboard off" in r.getMessage() for r in caplog.records)


def test_a_short_token_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="DASHBOARD_TOKEN: expected at least 16"):
        load({"DASHBOARD_TOKEN": "secret"})
    assert load({"DASHBOARD_TOKEN": TOKEN}).dashboard_token == TOKEN
    assert load({}).dashboard_token is None


async def test_the_token_opens_it_and_nothing_else_does() -> None:
    async with running(dashboard_token=TOKEN) as srv:
        for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"},
                        {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}):
            status, body, head = await get(srv, "/dashboard/api/snapshot", headers)
            assert status == 401, headers
            assert '"unauthorized"' in body and TOKEN not in body
            assert head["WWW-Authenticate"].startswith("Bearer")
        # a browser without a session gets the login form
        status, body, _ = await get(srv, "/dashboard")
        assert status == 401 and 'name="token"' in body and 'action="/dashboard/login"' in body
        async with aiohttp.ClientSession() as http:
            async with http.post(srv.url + "/dashboard/login", data={"token": "nope" * 5},
                                 allow_redirects=False) as resp:
                assert resp.status == 401
                assert "not the one" in await resp.text()
                assert COOKIE not in resp.cookies
            async with http.post(srv.url + "/dashboard/login", data={"token": TOKEN},
                                 allow_redirects=False) as resp:
                assert resp.status == 303 and resp.headers["Location"] == "/dashboard"
                cookie = resp.cookies[COOKIE]
                assert cookie.value != TOKEN and TOKEN not in cookie.value
                assert cookie["httponly"] and cookie["samesite"] == "Strict"
                assert cookie["path"] == "/dashboard"
        session = {COOKIE: cookie.value}
        status, body, _ = await get(srv, "/dashboard", cookies=session)
        assert status == 200 and "/dashboard.js" in body
        status, body, _ = await get(srv, "/dashboard/api/snapshot", cookies=session)
        assert status == 200 and '"rooms"' in body
        status, _, _ = await get(srv, "/dashboard/api/snapshot",
                                 cookies={COOKIE: cookie.value[:-1] + "0"})
        assert status == 401


async def test_the_snapshot_lists_every_feature() -> None:
    async with running(dashboard_token=TOKEN, node_ips=LOOPBACK) as srv:
        alice = await WsClient.connect(srv.ws_url + "/rooms")
        carol = await WsClient.connect(srv.ws_url + "/rooms")
        sender = await start_sender(srv.ws_url, 440)
        app_id = str((await mint(srv))["appID"])
        a, b = await side(srv, app_id, "A"), await side(srv, app_id, "B")
        seeker = await SioClient().connect(srv.url)
        try:
            assert (await alice.join("standup", "alice"))["type"] == "joined"
            assert (await carol.join("standup", "carol"))["type"] == "joined"
            await a.expect("room_full")          # both sides are in the pair
            await seeker.request("Zoe")
            assert await seeker.sync() == []     # queued, nobody to match with
            snap = await snapshot(srv)
        finally:
            for c in (alice, carol, a, b):
                await c.close()
            await sender.close()
            await seeker.close()
    rooms = {r["id"]: r for r in snap["rooms"]}
    assert sorted(rooms["standup"]["members"]) == ["alice", "carol"]
    assert rooms["standup"]["topology"] == "mesh"
    assert [s["stream_id"] for s in snap["streams"]] == [sender.stream_id]
    assert [(p["app_id"], p["side_a"], p["side_b"]) for p in snap["pairs"]] == [
        (app_id, True, True)]
    assert snap["match"]["queue"] == ["Zoe"] and snap["match"]["queue_size"] == 1
    assert snap["node"]["id"] and snap["node"]["connections"] >= 4
    assert snap["cluster"]["backplane"] == "memory" and snap["cluster"]["nodes"] == 1


class Samples:
    """What the quality monitor will give (the dashboard's QualityHistory protocol)."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.asked: list[str] = []

    def quality_history(self, room: str) -> Mapping[str, Sequence[QualitySample]]:
        self.asked.append(room)
        return {"ann": [{"at": self.now - 900, "score": 10},    # older than the window
                        {"at": self.now - 5, "score": 92, "loss": 0.5}]}


async def test_an_sfu_room_shows_participants_tracks_and_quality() -> None:
    async with call(dashboard_token=TOKEN) as c:
        ann = await c.join("ann", "sfu-room")
        ben = await c.join("ben", "sfu-room")
        await c.until(lambda: ann.has_media_of(["ben"]) and ben.has_media_of(["ann"]))
        dashboard = c.srv.server.app[DASHBOARD]
        dashboard.quality = samples = Samples(time.time())
        snap = await snapshot(c.srv)
    room = next(r for r in snap["rooms"] if r["id"] == "sfu-room")
    assert room["topology"] == "sfu" and room["call"] is True
    assert sorted(p["id"] for p in room["participants"]) == ["ann", "ben"]
    tracks = {(t["publisher"], t["kind"]): t for t in room["tracks"]}
    assert set(tracks) == {("ann", "audio"), ("ann", "video"), ("ben", "audio"),
                           ("ben", "video")}
    assert all(t["subscribers"] == 1 and t["layers"] == [] for t in tracks.values())
    receives = {p["id"]: {r["track_id"] for r in p["receives"]} for p in room["participants"]}
    assert receives["ann"] == {tracks[("ben", k)]["track_id"] for k in ("audio", "video")}
    assert samples.asked == ["sfu-room"]
    assert room["quality"] == {"ann": [{"at": pytest.approx(samples.now - 5), "score": 92,
                                        "loss": 0.5}]}


async def test_signing_out_forgets_the_session() -> None:
    jar = aiohttp.CookieJar(unsafe=True)   # keep cookies of 127.0.0.1, as a browser does
    async with running(dashboard_token=TOKEN) as srv, \
            aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.post(srv.url + "/dashboard/login", data={"token": TOKEN}) as resp:
            assert resp.status == 200 and "/dashboard.js" in await resp.text()
        async with http.get(srv.url + "/dashboard/api/snapshot") as resp:
            assert resp.status == 200
        async with http.post(srv.url + "/dashboard/logout") as resp:
            assert resp.status == 401 and 'name="token"' in await resp.text()
        async with http.get(srv.url + "/dashboard/api/snapshot") as resp:
            assert resp.status == 401


async def test_the_dashboard_reads_the_real_quality_monitor() -> None:
    """Wired by the app (rtchub/views.py): the SFU room's quality samples are the
    monitor's own, as they come, and a one-layer track lists no layers."""
    async with call(dashboard_token=TOKEN, calls=CallSettings(quality_interval=1.0)) as c:
        ann = await c.join("ann", "sfu-q")
        ben = await c.join("ben", "sfu-q")
        await c.until(lambda: ann.has_media_of(["ben"]) and ben.has_media_of(["ann"]))
        monitor = c.srv.server.app[CALL_MEDIA].quality
        assert monitor is not None
        # the monitor does not signal the hub's changes: wake the wait on its own events
        # (a participant's first sample is one), or it waits for some unrelated change
        monitor.on_quality_change(lambda _peer, _quality: c.srv.hub.changes.notify())
        await c.srv.hub.changes.wait_for(
            lambda: all(monitor.get_quality(p, room="sfu-q") is not None
                        for p in ("ann", "ben")), 20)
        snap = await snapshot(c.srv)
    room = next(r for r in snap["rooms"] if r["id"] == "sfu-q")
    assert set(room["quality"]) == {"ann", "ben"}
    latest = room["quality"]["ann"][-1]
    assert 0 <= latest["score"] <= 100 and latest["at"] > 0
    assert all(t["layers"] == [] for t in room["tracks"])
