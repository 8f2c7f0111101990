"""TURN credentials in the coturn REST convention, served in /api/rtc-config and checked
against a real coturn (Debian's ``turnserver``) on loopback: an aiortc peer that may only
use the relay connects with what rtchub serves, and cannot with expired credentials."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
)

from rtchub.config import ConfigError, TurnConfig, load
from rtchub.features.site.turn import turn_credentials
from tests.support import running

SECRET = "north-wind-and-sun"


def test_credentials_follow_the_coturn_rest_convention() -> None:
    # printf '1700000000:rtchub' | openssl dgst -sha1 -hmac north -binary | base64
    assert turn_credentials("north", "rtchub", 1700000000) == (
        "1700000000:rtchub", "xzyDYovtq5W3iTXz9H1OsU65oxE=")


def test_turn_settings_are_checked_together() -> None:
    env = {"RTC_CONFIG_JSON": '{"iceServers": []}'}
    assert load(env).turn is None
    turn = load({**env, "TURN_URLS": "turn:t.example:3478", "TURN_SECRET": "s",
                 "TURN_TTL": "1h"}).turn
    assert turn == TurnConfig(("turn:t.example:3478",), "s", 3600.0, "rtchub")
    assert "s'" not in repr(turn) and "secret" not in repr(turn)   # never in a log line
    with pytest.raises(ConfigError, match="TURN_SECRET"):
        load({**env, "TURN_URLS": "turn:t.example:3478"})
    with pytest.raises(ConfigError, match="TURN_URLS"):
        load({**env, "TURN_SECRET": "s"})
    with pytest.raises(ConfigError, match="turn: or turns:"):
        load({**env, "TURN_URLS": "stun:t.example", "TURN_SECRET": "s"})


async def fetch_config(url: str) -> tuple[dict[str, Any], str]:
    async with aiohttp.ClientSession() as session, session.get(url + "/api/rtc-config") as r:
        assert r.status == 200
        return await r.json(), r.headers.get("Cache-Control", "")


async def test_rtc_config_serves_fresh_credentials_and_never_the_secret() -> None:
    turn = TurnConfig(("turn:127.0.0.1:3478?transport=udp",), SECRET, 600.0)
    async with running(turn=turn, rtc_config={"iceServers": [{"urls": "stun:127.0.0.1"}]}
                       ) as srv:
        before = time.time()
        body, cache = await fetch_config(srv.url)
        stun, served = body["iceServers"]
        assert stun == {"urls": "stun:127.0.0.1"}
        assert served["urls"] == ["turn:127.0.0.1:3478?transport=udp"]
        expiry, user = served["username"].split(":")
        assert user == "rtchub"
        assert before + 600 - 1 <= int(expiry) <= time.time() + 600
        assert turn_credentials(SECRET, "rtchub", int(expiry))[1] == served["credential"]
        assert SECRET not in str(body)
        assert cache == "no-store"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def coturn(tmp: Path) -> AsyncIterator[str]:
    """A coturn on loopback sharing SECRET; yields its turn: URL."""
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.skip("coturn is not installed (apt-get install coturn)")
    port = free_udp_port()
    relay = free_udp_port()
    proc = await asyncio.create_subprocess_exec(
        binary, "-n", "-v", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
        f"--listening-port={port}", f"--min-port={relay}", f"--max-port={relay + 20}",
        "--use-auth-secret", f"--static-auth-secret={SECRET}", "--realm=rtchub.test",
        "--no-tls", "--no-dtls", "--no-tcp", "--allow-loopback-peers", "--no-cli",
        "--log-file=stdout", "--simple-log", f"--pidfile={tmp / 'turn.pid'}",
        f"--userdb={tmp / 'turndb'}", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    try:
        async def ready() -> None:
            assert proc.stdout is not None
            async for line in proc.stdout:
                if b"Total General servers" in line:
                    return
            raise AssertionError("turnserver exited before it listened")

        await asyncio.wait_for(ready(), 10)
        drain = asyncio.ensure_future(proc.stdout.read())   # keep its pipe from filling
        yield f"turn:127.0.0.1:{port}?transport=udp"
        drain.cancel()
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await proc.wait()


def relay_only(server: dict[str, Any]) -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(
        iceServers=[RTCIceServer(urls=server["urls"], username=server["username"],
                                 credential=server["credential"])],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY))


async def call(server: dict[str, Any]) -> tuple[str, bytes | None]:
    """Two relay-only peers in this process; (final connection state, what arrived)."""
    a, b = relay_only(server), relay_only(server)
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @b.on("datachannel")
    def on_channel(channel: Any) -> None:
        def on_message(message: bytes) -> None:
            if not got.done():
                got.set_result(message)

        channel.on("message", on_message)

    for pc in (a, b):
        @pc.on("connectionstatechange")
        def on_state(pc: RTCPeerConnection = pc) -> None:
            if pc.connectionState in ("connected", "failed") and not done.done():
                done.set_result(pc.connectionState)

    channel = a.createDataChannel("x")
    channel.on("open", lambda: channel.send(b"through the relay"))
    try:
        await a.setLocalDescription(await a.createOffer())
        candidates = a.localDescription.sdp.count("typ relay")
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        if candidates == 0:
            return "no relay candidate", None
        assert "typ host" not in a.localDescription.sdp   # relay only, as asked
        state = await asyncio.wait_for(done, 15)
        if state != "connected":
            return state, None
        return state, await asyncio.wait_for(got, 10)
    finally:
        await a.close()
        await b.close()


@pytest.mark.webrtc
async def test_a_relay_only_peer_connects_with_served_credentials_not_expired_ones(
        tmp_path: Path) -> None:
    async with coturn(tmp_path) as url:
        turn = TurnConfig((url,), SECRET, 60.0)
        async with running(turn=turn) as srv:
            body, _ = await fetch_config(srv.url)
        served = body["iceServers"][-1]
        assert await call(served) == ("connected", b"through the relay")
        username, credential = turn_credentials(SECRET, "rtchub", int(time.time()) - 5)
        expired = {**served, "username": username, "credential": credential}
        # coturn refuses the allocation: no relay candidate, so nothing can connect
        assert await call(expired) == ("no relay candidate", None)
