"""Transport behaviour: origins, upgrades, limits, slow clients, heartbeat, TLS, Unix sockets."""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile
from pathlib import Path

import aiohttp
import pytest

from rtchub.config import ListenAddress, OriginPolicy
from rtchub.net.fastws import check_picows
from tests.rawws import RawWs
from tests.rawws import frame as raw_frame
from tests.support import (
    FakeClock,
    WsClient,
    clients,
    heartbeat_round,
    make_config,
    running,
    self_signed,
)


async def test_plain_get_ws_is_426_and_broken_upgrade_is_400() -> None:
    async with running() as srv:
        async with aiohttp.ClientSession() as http, http.get(srv.ws_url.replace("ws", "http", 1)
                                                            ) as resp:
            assert resp.status == 426
        _, head = await RawWs.open(srv.port, headers="Upgrade: websocket\r\n")
        assert head.startswith(b"HTTP/1.1 400")
        _, head = await RawWs.open(srv.port, path="/nowhere")
        assert head.split(b" ")[1] in (b"404",)


@pytest.mark.parametrize("origin,allowed", [
    ("https://example.com", True),
    ("http://example.com:8080", True),
    ("https://app.example.org", True),
    ("https://evil.com", False),
    ("http://app.example.org", False),
    (None, True),
])
async def test_origin_policy(origin: str | None, allowed: bool) -> None:
    policy = OriginPolicy.parse("example.com, https://app.example.org")
    async with running(origins=policy) as srv:
        headers = {"Origin": origin} if origin else {}
        for fresh in (True, False):  # the fast path, then aiohttp on a kept-alive socket
            async with aiohttp.ClientSession() as http:
                if not fresh:
                    async with http.get(f"{srv.url}/healthz") as resp:
                        assert resp.status == 200
                if allowed:
                    ws = await http.ws_connect(srv.ws_url, headers=headers)
                    await ws.close()
                else:
                    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                        await http.ws_connect(srv.ws_url, headers=headers)
                    assert info.value.status == 403


async def test_kept_alive_http_connection_upgrades_through_aiohttp() -> None:
    async with running() as srv, aiohttp.ClientSession() as http:
        async with http.get(f"{srv.url}/healthz") as resp:
            assert resp.status == 200
        ws = await http.ws_connect(srv.ws_url)
        client = WsClient(http, ws)
        assert (await client.recv())["type"] == "available_streams"  # /ws greets (seed 002)
        assert (await client.join("r", "alice"))["members"] == ["alice"]
        await client.send({"type": "ping"})
        assert await client.recv() == {"type": "pong"}
        await ws.close()


async def test_ws_upgrade_rate_limit() -> None:
    async with running(ws_rate_per_min=2) as srv:
        async with clients(srv.ws_url, 2):
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await WsClient.connect(srv.ws_url)
            assert info.value.status == 429
            assert info.value.headers is not None
            assert 1 <= int(info.value.headers["Retry-After"]) <= 60
        assert srv.hub.stats.http_rejections["ws_rate"] == 1


async def test_http_rate_limit_spares_health_checks() -> None:
    async with running(http_rate_per_min=2) as srv, aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(3):
            async with http.get(f"{srv.url}/api/rtc-config") as resp:
                statuses.append(resp.status)
                retry = resp.headers.get("Retry-After")
        assert statuses == [200, 200, 429] and retry is not None
        async with http.get(f"{srv.url}/healthz") as resp:
            assert resp.status == 200


async def test_message_size_limit_closes_with_1009() -> None:
    async with running(max_message_bytes=1024) as srv, clients(srv.ws_url, 1) as (c,):
        await c.send({"type": "ping", "pad": "x" * 900})
        assert await c.recv() == {"type": "pong"}
        await c.send({"type": "ping", "pad": "x" * 1100})
        code, _ = await c.closed()
        assert code == 1009


async def test_fragmented_messages_are_reassembled_and_bounded() -> None:
    async with running(max_message_bytes=1024) as srv:
        raw, head = await RawWs.open(srv.port, path="/ws/rooms")
        assert head.startswith(b"HTTP/1.1 101")
        await raw.send(0x1, b'{"type": ', fin=False)
        await raw.send(0x0, b'"ping"}', fin=True)
        assert await raw.recv() == (0x1, b'{"type":"pong"}')
        await raw.send(0x1, b"x" * 600, fin=False)
        await raw.send(0x0, b"x" * 600, fin=True)
        opcode, payload = await raw.recv()
        assert opcode == 0x8 and int.from_bytes(payload[:2], "big") == 1009
        raw.close()


async def test_stalled_client_is_dropped_and_nobody_else_waits() -> None:
    async with running(send_buffer=8, write_buffer=4096, sdp_max_bytes=1 << 20) as srv:
        staller, _ = await RawWs.open(srv.port, rcvbuf=4096)
        staller.send_nowait(0x1, b'{"type":"join","room":"r","from":"slow"}')
        async with clients(srv.ws_url, 3) as (sender, c, d):
            await sender.join("r", "fast")
            await c.join("q", "c")
            await d.join("q", "d")
            await c.expect("room_members")
            sdp = {"type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * 20000}
            stalled = asyncio.get_running_loop().create_future()
            while not stalled.done():
                for _ in range(20):
                    await sender.send({"type": "offer", "to": "slow", "sdp": sdp})
                # the rest of the server keeps answering promptly meanwhile
                await c.send({"type": "hangup", "to": "d"})
                assert (await d.recv())["type"] == "hangup"
                for msg in await sender.sync():
                    if msg["type"] == "error":
                        assert msg["code"] == "peer_not_found"
                    if (msg["type"] == "error" or msg["members"] == ["fast"]
                            ) and not stalled.done():
                        stalled.set_result(True)
        assert srv.hub.stats.closes["policy"] == 1
        staller.close()


async def test_send_timeout_drops_a_client_that_stops_reading() -> None:
    clock = FakeClock()
    async with running(clock=clock, send_buffer=10_000, write_buffer=4096,
                       sdp_max_bytes=1 << 20) as srv:
        staller, _ = await RawWs.open(srv.port, rcvbuf=4096)
        staller.send_nowait(0x1, b'{"type":"join","room":"r","from":"slow"}')
        async with clients(srv.ws_url, 1) as (sender,):
            await sender.join("r", "fast")
            sdp = {"type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * 20000}
            gateway = srv.server.gateway
            for _ in range(200):  # until the staller's socket pushes back
                await sender.send({"type": "offer", "to": "slow", "sdp": sdp})
                await sender.sync()
                if any(c.queued for c in gateway.connections.values()):
                    break
            else:
                raise AssertionError("the staller's socket never pushed back")
            assert srv.hub.stats.closes["policy"] == 0
            clock.advance(srv.hub.config.limits.send_timeout - 0.01)
            await sender.sync()
            assert srv.hub.stats.closes["policy"] == 0   # not yet
            clock.advance(0.02)
            members = await sender.expect("room_members")
            assert members["members"] == ["fast"]
        assert srv.hub.stats.closes["policy"] == 1
        staller.close()


async def test_heartbeat_drops_a_client_that_never_answers() -> None:
    clock = FakeClock()
    async with running(clock=clock) as srv, aiohttp.ClientSession() as http:
        silent = await http.ws_connect(srv.ws_url, autoping=False)
        assert (await silent.receive(5)).type == aiohttp.WSMsgType.TEXT  # the greeting
        alive = await http.ws_connect(srv.ws_url + "/rooms", autoping=False)
        await heartbeat_round(srv, clock)  # both were heard from in this period
        await heartbeat_round(srv, clock)  # silent for a whole period: pinged
        for ws in (silent, alive):
            assert (await ws.receive(5)).type == aiohttp.WSMsgType.PING
        await alive.pong(b"")
        await alive.send_str('{"type": "ping"}')
        assert (await alive.receive(5)).data == '{"type":"pong"}'
        await heartbeat_round(srv, clock)  # no answer to the ping: dropped
        msg = await silent.receive(5)
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 1001)
        assert srv.hub.stats.closes["heartbeat"] == 1
        for _ in range(3):  # a client that answers survives round after round
            await heartbeat_round(srv, clock)  # silent since the last round: pinged
            msg = await alive.receive(5)
            assert msg.type == aiohttp.WSMsgType.PING
            await alive.pong(msg.data)
            await alive.send_str('{"type": "ping"}')  # the server has read the pong
            assert (await alive.receive(5)).data == '{"type":"pong"}'
            await heartbeat_round(srv, clock)  # heard from: nothing happens
        await alive.close()


async def test_tls_serves_https_and_wss(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    async with running(tls_cert_file=cert, tls_key_file=key) as srv:
        assert srv.url.startswith("https://")
        async with aiohttp.ClientSession() as http, http.get(f"{srv.url}/healthz",
                                                             ssl=ctx) as resp:
            assert await resp.text() == "ok"
        a = await WsClient.connect(srv.ws_url, ssl=ctx)
        b = await WsClient.connect(srv.ws_url, ssl=ctx)
        try:
            await a.join("r", "a")
            await b.join("r", "b")
            await a.expect("room_members")
            await b.send({"type": "hangup", "to": "a"})
            assert (await a.recv())["from"] == "b"
        finally:
            await a.close()
            await b.close()


async def test_unix_socket_addr() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rtchub.sock")
        async with running(make_config(addr=ListenAddress(path=path))):
            assert os.path.exists(path)
            connector = aiohttp.UnixConnector(path=path)
            async with aiohttp.ClientSession(connector=connector) as http:
                async with http.get("http://localhost/healthz") as resp:
                    assert await resp.text() == "ok"
                ws = await http.ws_connect("http://localhost/ws/rooms")
                client = WsClient(http, ws)
                assert (await client.join("r", "u"))["from"] == "u"
                await ws.close()
        assert not os.path.exists(path)


async def test_frames_queued_behind_a_join_are_bounded() -> None:
    async with running(pending_max=5, read_buffer=65536) as srv:
        raw, _ = await RawWs.open(srv.port, path="/ws/rooms")
        burst = [b'{"type":"join","room":"r","from":"a"}'] + [b'{"type":"ping"}'] * 8
        raw.writer.write(b"".join(raw_frame(0x1, p) for p in burst))
        replies = [await raw.recv() for _ in range(1 + 1 + 8)]
        kinds = [p.split(b'"')[3] for _, p in replies]
        assert kinds.count(b"error") == 3, replies
        assert kinds.count(b"pong") == 5
        assert b"queue_full" in b"".join(p for _, p in replies)
        raw.close()


def server_tasks() -> int:
    """Tasks of the server (the test clients each run a reader task of their own)."""
    return sum(1 for t in asyncio.all_tasks() if "WsClient" not in repr(t.get_coro()))


async def test_heartbeat_runs_no_task_per_connection() -> None:
    async with running() as srv:
        before = server_tasks()
        async with clients(srv.ws_url + "/rooms", 20) as conns:
            await conns[-1].send({"type": "ping"})
            assert await conns[-1].recv() == {"type": "pong"}
            assert len(srv.server.gateway.heartbeat) == 20
            # picows' own auto-ping would add one task per connection
            assert server_tasks() - before < 5


def test_picows_still_builds_its_protocol_the_way_the_fast_path_does() -> None:
    # the fast path builds picows' private WSProtocol with the arguments picows' own
    # server factory passes; an upgrade that changes them turns the fast path off, loudly
    check_picows()
