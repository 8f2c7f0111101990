"""The pair relay over real WebSockets: mailbox semantics, refusals, limits, metrics, TLS."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from rtchub.config import ConfigError, load
from tests.pairing.support import mint, pairing_server, post, side
from tests.rawws import RawWs, frame
from tests.support import FakeClock, WsClient, heartbeat_round, make_config, running, self_signed


async def test_mailbox_survives_a_reconnect_without_loss_or_duplicates() -> None:
    async with pairing_server() as (srv, service):
        app_id = (await mint(srv))["appID"]
        a = await side(srv, app_id, "A")
        b = await side(srv, app_id, "B")
        await a.expect("room_full")
        await b.expect("room_full")
        await b.send({"type": "hello", "deliveredUpTo": 0})
        await a.send({"type": "send", "to": "B", "payload": {"n": 1}})
        await a.send({"type": "send", "payload": {"n": 2}})  # 'to' defaults to the other side
        assert await b.recv() == {"type": "send", "seq": 1, "from": "A", "payload": {"n": 1}}
        assert await b.recv() == {"type": "send", "seq": 2, "from": "A", "payload": {"n": 2}}
        await b.send({"type": "delivered", "seq": 1})
        await b.sync()
        await b.close()
        assert await a.recv() == {"type": "peer_left", "side": "B"}
        # while B is away, A keeps sending; nothing is lost
        await a.send({"type": "send", "payload": "three"})
        await a.send({"type": "send", "payload": [4]})
        await a.sync()
        assert service.depths[app_id] == 3  # seq 2 (unacked), 3, 4
        b = await side(srv, app_id, "B")
        await b.expect("room_full")
        await a.expect("room_full")
        assert await b.sync() == []  # nothing is pushed before hello says what B has
        await b.send({"type": "hello", "deliveredUpTo": 2})
        assert await b.recv() == {"type": "send", "seq": 3, "from": "A", "payload": "three"}
        assert await b.recv() == {"type": "send", "seq": 4, "from": "A", "payload": [4]}
        await b.send({"type": "hello", "deliveredUpTo": 2})  # a repeated hello: no duplicates
        assert await b.sync() == []
        await b.send({"type": "delivered", "upTo": 4})
        await b.sync()
        assert service.depths[app_id] == 0
        # the mailbox works both ways
        await b.send({"type": "send", "payload": "back"})
        assert await a.recv() == {"type": "send", "seq": 1, "from": "B", "payload": "back"}
        await a.close()
        await b.close()


async def test_what_a_side_sent_before_it_closed_is_kept() -> None:
    async with pairing_server() as (srv, _):
        app_id = (await mint(srv))["appID"]
        raw, _head = await RawWs.open(srv.port, f"/ws?appID={app_id}&side=A")
        # right after the upgrade, while the join is still being applied: a message, a close
        raw.write(frame(0x1, b'{"type":"send","payload":"last words"}')
                  + frame(0x8, (1000).to_bytes(2, "big")))
        await srv.hub.changes.wait_for(lambda: not srv.hub.connections, 5)
        raw.close()
        b = await side(srv, app_id, "B")
        await b.send({"type": "hello", "deliveredUpTo": 0})
        mail = await b.expect("send")
        assert (mail["seq"], mail["from"], mail["payload"]) == (1, "A", "last words")
        await b.close()


async def test_mailbox_is_bounded() -> None:
    async with pairing_server(pair_mailbox_size=3) as (srv, _):
        app_id = (await mint(srv))["appID"]
        a = await side(srv, app_id, "A")
        for n in range(3):
            await a.send({"type": "send", "payload": n})
        await a.send({"type": "send", "payload": 3})
        err = await a.expect("error")
        assert err["code"] == "queue_full" and "3 unacknowledged" in err["error"]
        await a.close()


async def test_bad_queries_are_refused_before_the_upgrade() -> None:
    async with pairing_server() as (srv, _):
        app_id = (await mint(srv))["appID"]
        # seed 004's server answers a bad appID or side with HTTP 400, on both HTTP stacks
        for query in (f"appID={app_id}&side=C", "appID=not-a-uuid&side=A", f"appID={app_id}",
                      "appID", "appID=&side=A"):
            for kept_alive in (False, True):
                async with aiohttp.ClientSession() as http:
                    if kept_alive:  # the socket's second request: served by aiohttp
                        async with http.get(f"{srv.url}/healthz") as resp:
                            assert resp.status == 200
                    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                        await http.ws_connect(f"{srv.ws_url}?{query}")
                    assert refused.value.status == 400, (query, kept_alive)
        # a well-formed query for an unknown pair is refused after it, with a close code
        ws = await WsClient.connect(f"{srv.ws_url}?appID={uuid.uuid4()}&side=A")
        assert (await ws.expect("error"))["code"] == "code_gone"
        assert (await ws.closed())[0] == 4410
        await ws.close()


async def test_second_connection_for_a_side_is_refused_and_the_first_keeps_working() -> None:
    async with pairing_server() as (srv, _):
        app_id = (await mint(srv))["appID"]
        a = await side(srv, app_id, "A")
        b = await side(srv, app_id, "B")
        await a.expect("room_full")
        await b.expect("room_full")
        again = await side(srv, app_id, "a")  # sides are case-insensitive
        assert (await again.expect("error"))["code"] == "side_taken"
        assert (await again.closed())[0] == 4409
        await again.close()
        await a.send({"type": "offer", "sdp": "x"})
        assert await b.recv() == {"type": "offer", "sdp": "x"}
        await a.close()
        await b.close()


async def test_bad_frames_get_errors_and_leave_the_other_side_alone() -> None:
    async with pairing_server() as (srv, service):
        app_id = (await mint(srv))["appID"]
        a = await side(srv, app_id, "A")
        await a.send({"type": "offer", "sdp": "x"})
        assert (await a.expect("error"))["code"] == "peer_not_found"  # B is not here
        b = await side(srv, app_id, "B")
        await a.expect("room_full")
        await b.expect("room_full")
        bad: list[tuple[str | bytes, str]] = [
            ("not json", "bad_message"),
            ("[1,2]", "bad_message"),
            ('{"type": "dance"}', "unknown_type"),
            ('{"type": "send"}', "missing_field"),
            ('{"type": "send", "to": "A", "payload": 1}', "invalid_field"),
            ('{"type": "send", "to": "Z", "payload": 1}', "invalid_field"),
            ('{"type": "delivered"}', "missing_field"),
            ('{"type": "delivered", "seq": 99}', "invalid_field"),
            ('{"type": "hello", "deliveredUpTo": -1}', "invalid_field"),
            ('{"type": "telemetry"}', "missing_field"),
            ('{"type": "telemetry", "event": "has space"}', "invalid_field"),
            (b"\x00binary", "bad_message"),
        ]
        for frame, code in bad:
            await a.send_raw(frame)
            err = await a.expect("error")
            assert err["code"] == code, (frame, err)
        assert await b.sync() == []  # B saw none of it
        await a.send({"type": "telemetry", "event": "ice-connected"})
        await a.send({"type": "ice", "candidate": None})
        assert await b.recv() == {"type": "ice", "candidate": None}
        await a.sync()
        assert service.telemetry["ice-connected"] == 1
        await a.close()
        await b.close()


async def test_oversized_frame_closes_only_that_connection() -> None:
    async with pairing_server(max_message_bytes=1024) as (srv, _):
        app_id = (await mint(srv))["appID"]
        a = await side(srv, app_id, "A")
        b = await side(srv, app_id, "B")
        await a.expect("room_full")
        await b.expect("room_full")
        await a.send({"type": "send", "payload": "x" * 2000})
        code, _ = await a.closed()
        assert code == 1009
        await a.close()
        assert await b.recv() == {"type": "peer_left", "side": "A"}
        await b.close()


async def test_ws_rate_limit_refuses_pair_upgrades_with_429() -> None:
    async with pairing_server(ws_rate_per_min=2) as (srv, _):
        app_id = (await mint(srv))["appID"]
        a = await side(srv, app_id, "A")
        b = await side(srv, app_id, "B")
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await side(srv, app_id, "B")
        assert info.value.status == 429
        assert info.value.headers is not None and int(info.value.headers["Retry-After"]) >= 1
        await a.close()
        await b.close()


async def test_disallowed_origin_cannot_open_a_pair_socket() -> None:
    from rtchub.config import OriginPolicy

    async with pairing_server(origins=OriginPolicy.parse("good.example")) as (srv, _):
        app_id = (await mint(srv))["appID"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await side(srv, app_id, "A", headers={"Origin": "https://bad.example"})
        assert info.value.status == 403
        ok = await side(srv, app_id, "A", headers={"Origin": "https://good.example"})
        await ok.send({"type": "ping"})
        await ok.expect("pong")
        await ok.close()


async def test_metrics_count_pairing() -> None:
    async with pairing_server() as (srv, _):
        minted = await mint(srv)
        a = await side(srv, minted["appID"], "A")
        b = await side(srv, minted["appID"], "B")
        await a.expect("room_full")
        await b.expect("room_full")
        await a.send({"type": "offer", "sdp": "x"})
        await b.recv()
        await a.send({"type": "send", "payload": 1})
        await a.send({"type": "telemetry", "event": "ice-connected"})
        await a.sync()
        async with aiohttp.ClientSession() as session:
            await session.post(f"{srv.url}/rendezvous/redeem", json={"code": "x"})
            async with session.get(f"{srv.url}/metrics") as resp:
                text = await resp.text()
        for line in ('rtchub_pair_codes_total{event="minted"} 1.0',
                     'rtchub_pair_relayed_total{type="offer"} 1.0',
                     'rtchub_pair_telemetry_total{event="ice-connected"} 1.0',
                     "rtchub_pairs 1.0", "rtchub_pair_sides_connected 2.0",
                     "rtchub_pair_mailbox_depth 1.0"):
            assert line in text, line
        await a.close()
        await b.close()


def test_tls_needs_both_cert_and_key() -> None:
    with pytest.raises(ConfigError, match="TLS_CERT_FILE and TLS_KEY_FILE must be set together"):
        load(environ={"TLS_CERT_FILE": __file__})
    with pytest.raises(ConfigError, match="only TLS_KEY_FILE"):
        load(environ={"TLS_KEY_FILE": __file__})


def test_serve_refuses_to_start_with_a_cert_and_no_key() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TLS_")}
    env["TLS_CERT_FILE"] = __file__
    done = subprocess.run([sys.executable, "-m", "rtchub", "serve"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "TLS_CERT_FILE and TLS_KEY_FILE must be set together: got only TLS_CERT_FILE" in (
        done.stderr)


async def test_tls_refuses_untrusted_and_serves_trusted(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    config = make_config(tls_cert_file=str(cert), tls_key_file=str(key))
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    async with running(config) as srv:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.post(f"{srv.url}/rendezvous/code")
            async with session.post(f"{srv.url}/rendezvous/code", ssl=ctx) as resp:
                assert resp.status == 200
                minted = await resp.json()
        url = f"{srv.ws_url}?appID={minted['appID']}&side=A"
        a = await WsClient.connect(url, ssl=ctx)
        b = await WsClient.connect(url.replace("side=A", "side=B"), ssl=ctx)
        await a.expect("room_full")
        await b.expect("room_full")
        await b.send({"type": "answer", "sdp": "over tls"})
        assert await a.recv() == {"type": "answer", "sdp": "over tls"}
        await a.close()
        await b.close()


async def test_heartbeat_drops_a_side_that_stops_answering() -> None:
    clock = FakeClock()
    async with pairing_server(clock) as (srv, _):
        app_id = (await mint(srv))["appID"]
        a = await side(srv, app_id, "A")
        url = f"{srv.ws_url}?appID={app_id}&side=B"
        async with aiohttp.ClientSession() as session, session.ws_connect(url, autoping=False):
            await a.expect("room_full")
            for _ in range(3):  # heard from, then pinged, then silent after the ping
                await a.send({"type": "ping"})  # A keeps talking
                await a.expect("pong")
                await heartbeat_round(srv, clock)
            # B never answered the server's ping: it is dropped and A is told
            assert await a.recv() == {"type": "peer_left", "side": "B"}
        await a.close()


async def test_redeem_failures_are_counted_per_forwarded_ip_behind_a_trusted_proxy() -> None:
    async with pairing_server(pair_redeem_failures_per_min=2,
                              trusted_proxies=("127.0.0.1",)) as (srv, _):
        minted = await mint(srv)
        url = f"{srv.url}/rendezvous/redeem"
        wrong = "0000" if minted["code"] != "0000" else "0001"
        guesser = {"X-Forwarded-For": "203.0.113.9"}
        for _ in range(2):
            assert (await post(url, {"code": wrong}, headers=guesser))[0] == 410
        assert (await post(url, {"code": wrong}, headers=guesser))[0] == 429
        status, _, _ = await post(url, {"code": minted["code"]},
                                  headers={"X-Forwarded-For": "198.51.100.7"})
        assert status == 200  # another client behind the same proxy is not blocked
