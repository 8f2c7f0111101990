"""Readiness, graceful shutdown (in process and by SIGTERM), and the metrics endpoint."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys

import aiohttp
import pytest
import socketio

from rtchub.app import build_server
from tests.support import WsClient, clients, make_config, running


async def test_shutdown_closes_clients_with_1001_and_readyz_turns_503() -> None:
    config = make_config()
    server = build_server(config)
    await server.start()
    port = server.port()
    url = f"ws://127.0.0.1:{port}/ws"
    a = await WsClient.connect(url)
    b = await WsClient.connect(url)
    await a.join("r", "a")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
            assert resp.status == 200
        server.hub.drain()
        async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
            assert resp.status == 503
            assert "draining" in await resp.text()
    assert (await a.closed())[0] == 1001
    assert (await b.closed())[0] == 1001
    await server.stop()
    await a.close()
    await b.close()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


async def test_sigterm_drains_and_exits_cleanly() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtchub", "serve", "--addr", f"127.0.0.1:{port}",
        "--stream-addr", "", "--log-format", "json",
        env={**os.environ, "SHUTDOWN_TIMEOUT": "5s"},
        stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    while b"rtchub ready" not in await asyncio.wait_for(proc.stderr.readline(), 30):
        pass
    client = await WsClient.connect(f"ws://127.0.0.1:{port}/ws")
    await client.join("r", "a")
    proc.send_signal(signal.SIGTERM)
    assert (await client.closed())[0] == 1001
    await client.close()
    rest = await asyncio.wait_for(proc.stderr.read(), 15)
    assert await proc.wait() == 0
    assert b'"msg":"stopped"' in rest


async def test_metrics_exposition_counts_frames_errors_and_latency() -> None:
    async with running() as srv:
        async with clients(srv.ws_url, 2) as (a, b):
            await a.join("r", "a")
            await b.join("r", "b")
            await a.expect("room_members")
            await a.send({"type": "hangup", "to": "b"})
            await b.expect("hangup")
            await a.send_raw("garbage")
            await a.expect("error")
            async with aiohttp.ClientSession() as http, http.get(f"{srv.url}/metrics") as resp:
                text = await resp.text()
                assert resp.headers["Content-Type"].startswith("text/plain")
        for line in ('rtchub_ws_frames_in_total{type="hangup"} 1.0',
                     'rtchub_ws_frames_out_total{type="hangup"} 1.0',
                     'rtchub_errors_total{code="bad_message"} 1.0',
                     "rtchub_ws_connections_total 2.0",
                     "rtchub_rooms 1.0",
                     "rtchub_room_members 2.0",
                     'rtchub_relay_latency_seconds_bucket{le="+Inf"} 1.0',
                     "process_resident_memory_bytes"):
            assert line in text, line


async def test_rtc_config_is_served() -> None:
    rtc = {"iceServers": [{"urls": "turn:turn.example.com:3478", "username": "u",
                           "credential": "p"}], "iceTransportPolicy": "relay"}
    async with running(rtc_config=rtc) as srv, aiohttp.ClientSession() as http:
        async with http.get(f"{srv.url}/api/rtc-config") as resp:
            assert await resp.json() == rtc
        async with http.get(f"{srv.url}/", headers={"Accept": "application/json"}) as resp:
            assert (await resp.json())["status"] == "OK"
        async with http.get(f"{srv.url}/", headers={"Accept": "text/html"}) as resp:
            assert "<html" in await resp.text()


async def test_info_logs_are_events_without_sdp_or_tokens(caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    caplog.set_level(logging.INFO)
    async with running() as srv, clients(srv.ws_url, 2) as (a, b):
        joined = await a.join("r", "alice")
        await b.join("r", "bob")
        await a.expect("room_members")
        await a.send({"type": "offer", "to": "bob",
                      "sdp": {"type": "offer", "sdp": "v=0\r\na=secret-fingerprint\r\n"}})
        await b.expect("offer")
    events = [(r.getMessage(), getattr(r, "member", None)) for r in caplog.records
              if r.name == "rtchub.rooms"]
    assert ("joined", "alice") in events and ("joined", "bob") in events
    text = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert "secret-fingerprint" not in text
    assert joined["token"] not in text


async def test_sigterm_on_an_idle_server_exits_without_waiting_for_the_drain_bound() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtchub", "serve", "--addr", f"127.0.0.1:{port}",
        env={**os.environ, "SHUTDOWN_TIMEOUT": "120s"}, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    while b"rtchub ready" not in await asyncio.wait_for(proc.stderr.readline(), 30):
        pass
    # idle, but it served: a page on a kept-alive socket, a Socket.IO client came and went
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/") as resp:
            assert resp.status == 200
        sio = socketio.AsyncClient(reconnection=False)
        await sio.connect(f"http://127.0.0.1:{port}", wait_timeout=10)
        await sio.disconnect()
        proc.send_signal(signal.SIGTERM)
        # nothing is left to drain: it exits long before SHUTDOWN_TIMEOUT (120 s)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
