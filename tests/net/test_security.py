"""The security review's claims (docs/security.md), each checked on a real server: origins
on every entry point, TLS versions and ciphers, secrets and tokens kept out of logs and
metrics, errors that never come back as HTML."""

from __future__ import annotations

import asyncio
import logging
import ssl
import warnings
from pathlib import Path

import aiohttp
import orjson
import pytest

from rtchub.config import OriginPolicy, TurnConfig
from tests.net.test_limits import captured
from tests.rawws import RawWs
from tests.support import WsClient, running, self_signed

GOOD, EVIL = "https://app.example", "https://evil.example"
STACKS = pytest.mark.parametrize("kept_alive", [False, True], ids=["fast", "aiohttp"])


def upgrade(origin: str) -> str:
    return ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
            f"dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n")


@STACKS
async def test_every_websocket_path_checks_the_origin(kept_alive: bool) -> None:
    async with running(origins=OriginPolicy.parse(GOOD)) as srv:
        minted = None
        async with aiohttp.ClientSession() as http, \
                http.post(srv.url + "/rendezvous/code") as resp:
            minted = await resp.json()
        for path in ("/ws", "/ws/rooms", "/ws/voice",
                     f"/ws?appID={minted['appID']}&side=A"):
            _, head = await RawWs.open(srv.port, path, headers=upgrade(EVIL),
                                       kept_alive=kept_alive)
            assert head.startswith(b"HTTP/1.1 403"), (path, head)
            raw, head = await RawWs.open(srv.port, path, headers=upgrade(GOOD),
                                         kept_alive=kept_alive)
            assert head.startswith(b"HTTP/1.1 101"), (path, head)
            raw.close()


async def test_socketio_checks_the_origin_on_both_transports_and_rendezvous_too() -> None:
    async with running(origins=OriginPolicy.parse(GOOD)) as srv, \
            aiohttp.ClientSession() as http:
        polling = srv.url + "/socket.io/?EIO=4&transport=polling"
        async with http.get(polling, headers={"Origin": EVIL}) as resp:
            assert resp.status == 400
        async with http.get(polling, headers={"Origin": GOOD}) as resp:
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == GOOD
        _, head = await RawWs.open(srv.port, "/socket.io/?EIO=4&transport=websocket",
                                   headers=upgrade(EVIL))
        assert not head.startswith(b"HTTP/1.1 101"), head
        for path in ("/rendezvous/code", "/rendezvous/redeem"):
            async with http.post(srv.url + path, headers={"Origin": EVIL}) as resp:
                assert resp.status == 403
                assert "Access-Control-Allow-Origin" not in resp.headers
        async with http.get(srv.url + "/api/rtc-config", headers={"Origin": EVIL}) as resp:
            # readable by curl, never by another site's page (no CORS grant)
            assert "Access-Control-Allow-Origin" not in resp.headers


async def test_tls_refuses_old_versions_and_negotiates_aead_ciphers(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    async with running(tls_cert_file=cert, tls_key_file=key) as srv:
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        with warnings.catch_warnings():   # deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientConnectorError):
                await http.get(srv.url + "/healthz", ssl=old)
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = ssl.create_default_context(cafile=cert)
            ctx.check_hostname = False
            ctx.minimum_version = ctx.maximum_version = version
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port, ssl=ctx)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert (await asyncio.wait_for(reader.read(), 5)).endswith(b"ok")
            name, proto, _ = writer.get_extra_info("ssl_object").cipher()
            assert proto == ("TLSv1.2" if version is ssl.TLSVersion.TLSv1_2 else "TLSv1.3")
            assert "GCM" in name or "CHACHA20" in name, name
            writer.close()


async def test_secrets_and_tokens_stay_out_of_logs_and_metrics() -> None:
    turn = TurnConfig(("turn:127.0.0.1:3478",), "s3cret-shared-with-coturn", 60.0)
    with captured("rtchub") as rtchub_log, captured("aiohttp") as http_log:
        logging.getLogger("rtchub").setLevel(logging.DEBUG)
        async with running(turn=turn) as srv:
            ws = await WsClient.connect(srv.ws_url + "/rooms")
            token = (await ws.join("room", "alice"))["token"]
            await ws.close()
            async with aiohttp.ClientSession() as http:
                async with http.get(srv.url + "/api/rtc-config") as resp:
                    credential = (await resp.json())["iceServers"][-1]["credential"]
                async with http.post(srv.url + "/rendezvous/code") as resp:
                    app_id = (await resp.json())["appID"]
                async with http.get(srv.url + "/metrics") as resp:
                    metrics = await resp.text()
            text = "\n".join(r.getMessage() + repr(r.__dict__)
                             for r in rtchub_log.records + http_log.records)
            text += repr(srv.hub.config)
    for secret in (turn.secret, token, credential, app_id):
        assert secret not in text
        assert secret not in metrics


async def test_errors_echo_nothing_as_html() -> None:
    async with running() as srv:
        probe = "/ws/<script>alert(1)</script>"
        _, head = await RawWs.open(srv.port, probe)
        assert head.startswith(b"HTTP/1.1 404"), head
        assert b"text/html" not in head.lower()
        async with aiohttp.ClientSession() as http:
            for url in (srv.url + "/<script>x</script>.html", srv.url + "/api/<b>",
                        srv.url + "/socket.io/?EIO=<b>&transport=polling"):
                async with http.get(url) as resp:
                    assert not resp.content_type.startswith("text/html"), (url, resp)
            async with http.post(srv.url + "/rendezvous/redeem",
                                 data=b'{"code": "<img src=x>"}') as resp:
                assert resp.content_type == "application/json"
                assert "<img" not in orjson.dumps(await resp.json()).decode()
