"""Rendezvous codes over real HTTP: the seed walk-through, races, expiry, exhaustion, limits."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid

from rtchub.config import OriginPolicy
from rtchub.features.pairing import rules
from tests.pairing.support import mint, pairing_server, post, side
from tests.support import FakeClock


async def test_seed_walkthrough_curl_and_wscat() -> None:
    """Seed 004's README: mint, redeem once, connect A and B, relay offer/answer/ice."""
    async with pairing_server() as (srv, _):
        minted = await mint(srv)
        assert re.fullmatch(r"[0-9]{4}", minted["code"])
        assert uuid.UUID(minted["appID"]).version == 4
        expires = dt.datetime.fromisoformat(minted["expiresAt"].replace("Z", "+00:00"))
        left = (expires - dt.datetime.now(dt.UTC)).total_seconds()
        assert 590 < left <= 600
        status, body, _ = await post(f"{srv.url}/rendezvous/redeem", {"code": minted["code"]},
                                     headers={"content-type": "application/json"})
        assert status == 200
        assert body == {"appID": minted["appID"], "expiresAt": minted["expiresAt"]}
        status, body, _ = await post(f"{srv.url}/rendezvous/redeem", {"code": minted["code"]})
        assert status == 410 and body["code"] == "code_gone"

        a = await side(srv, minted["appID"], "A")
        b = await side(srv, minted["appID"], "B")
        await a.expect("room_full")
        await b.expect("room_full")
        await a.send({"type": "offer", "sdp": "v=0 offer"})
        assert await b.recv() == {"type": "offer", "sdp": "v=0 offer"}
        await b.send({"type": "answer", "sdp": "v=0 answer"})
        assert await a.recv() == {"type": "answer", "sdp": "v=0 answer"}
        await a.send({"type": "ice", "candidate": {"candidate": "c", "sdpMid": "0"}})
        assert (await b.recv())["candidate"] == {"candidate": "c", "sdpMid": "0"}
        await b.close()
        assert await a.recv() == {"type": "peer_left", "side": "B"}
        await a.close()


async def test_concurrent_redeems_exactly_one_wins() -> None:
    async with pairing_server(pair_redeem_failures_per_min=0) as (srv, _):
        minted = await mint(srv)
        results = await asyncio.gather(*(
            post(f"{srv.url}/rendezvous/redeem", {"code": minted["code"]}) for _ in range(40)))
        statuses = sorted(status for status, _, _ in results)
        assert statuses.count(200) == 1
        assert statuses.count(410) == 39


async def test_codes_expire_on_the_injected_clock() -> None:
    clock = FakeClock()
    async with pairing_server(clock, room_ttl=60.0) as (srv, service):
        minted = await mint(srv)
        clock.advance(59.9)
        kept = await mint(srv)
        clock.advance(0.2)  # the first code is 60.1 s old
        status, body, _ = await post(f"{srv.url}/rendezvous/redeem", {"code": minted["code"]})
        assert status == 410, body
        # an expired pair refuses its sides
        late = await side(srv, minted["appID"], "A")
        assert (await late.expect("error"))["code"] == "code_gone"
        assert (await late.closed())[0] == 4410
        await late.close()
        assert await service.sweep() == (0, 1)   # the pair now; the code with its bucket
        clock.advance(rules.BUCKET)
        assert await service.sweep() == (1, 0)
        status, _, _ = await post(f"{srv.url}/rendezvous/redeem", {"code": kept["code"]})
        assert status == 200
        assert service.codes["expired"] == 1


async def test_exhausted_code_space_answers_503_with_retry_after() -> None:
    clock = FakeClock()
    async with pairing_server(clock, pair_code_digits=1, room_ttl=30.0) as (srv, service):
        codes = set()
        for _ in range(10):
            codes.add((await mint(srv))["code"])
            clock.advance(1.0)
        assert codes == {str(n) for n in range(10)}  # unique among live codes
        status, body, headers = await post(f"{srv.url}/rendezvous/code")
        assert status == 503 and body["code"] == "codes_exhausted"
        # the codes expire at 1030..1039, in the sweep bucket that ends at 1040
        assert headers["Retry-After"] == "30"
        clock.advance(30.5)
        service.swept.clear()
        await asyncio.wait_for(service.swept.wait(), 5.0)
        again = await mint(srv)
        assert re.fullmatch(r"[0-9]", again["code"])
        assert service.codes["exhausted"] == 1


async def test_redeemed_code_frees_its_slot() -> None:
    clock = FakeClock()
    async with pairing_server(clock, pair_code_digits=1) as (srv, _):
        first = [await mint(srv) for _ in range(10)]
        status, _, _ = await post(f"{srv.url}/rendezvous/redeem", {"code": first[3]["code"]})
        assert status == 200
        again = await mint(srv)
        assert again["code"] == first[3]["code"] and again["appID"] != first[3]["appID"]


async def test_bad_redeem_bodies_get_400() -> None:
    async with pairing_server() as (srv, _):
        url = f"{srv.url}/rendezvous/redeem"
        for raw in (b"not json", b"[]", b'{"code": 1234}', b'{"code": "12a4"}', b'{"code":"123"}',
                    b"{}"):
            status, body, _ = await post(url, raw=raw)
            assert status == 400, raw
            assert body["code"] == "invalid_field"
            assert "4 digits" in body["error"]


async def test_failed_redeems_are_rate_limited_per_ip() -> None:
    clock = FakeClock()
    async with pairing_server(clock, pair_redeem_failures_per_min=3) as (srv, service):
        minted = await mint(srv)
        url = f"{srv.url}/rendezvous/redeem"
        wrong = "0000" if minted["code"] != "0000" else "0001"
        for _ in range(3):
            assert (await post(url, {"code": wrong}))[0] == 410
        status, body, headers = await post(url, {"code": minted["code"]})
        assert status == 429 and body["code"] == "rate_limited"  # even the right code waits
        assert headers["Retry-After"] == "60"
        clock.advance(60.0)
        status, _, _ = await post(url, {"code": minted["code"]})
        assert status == 200
        assert service.codes["rate_limited"] == 1


async def test_http_rate_limit_applies_to_rendezvous() -> None:
    async with pairing_server(http_rate_per_min=2) as (srv, _):
        await mint(srv)
        await mint(srv)
        status, body, headers = await post(f"{srv.url}/rendezvous/code")
        assert status == 429 and body["code"] == "rate_limited"
        assert int(headers["Retry-After"]) >= 1


async def test_cors_follows_the_origin_policy() -> None:
    policy = OriginPolicy.parse("https://app.example")
    async with pairing_server(origins=policy) as (srv, _):
        url = f"{srv.url}/rendezvous/code"
        import aiohttp

        async with aiohttp.ClientSession() as session:
            async with session.options(url, headers={
                    "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type"}) as resp:
                assert resp.status == 204
                assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
                assert "POST" in resp.headers["Access-Control-Allow-Methods"]
                assert resp.headers["Access-Control-Allow-Headers"] == "content-type"
            async with session.options(url, headers={"Origin": "https://evil.example"}) as resp:
                assert resp.status == 403
                assert "Access-Control-Allow-Origin" not in resp.headers
        status, body, headers = await post(url, headers={"Origin": "https://app.example"})
        assert status == 200 and headers["Access-Control-Allow-Origin"] == "https://app.example"
        status, body, headers = await post(url, headers={"Origin": "https://evil.example"})
        assert status == 403 and body["code"] == "origin_not_allowed"
        status, _, _ = await post(url)  # no Origin: not a browser, allowed
        assert status == 200


async def test_janitor_sweeps_expired_codes_and_pairs() -> None:
    clock = FakeClock()
    async with pairing_server(clock, room_ttl=5.0) as (srv, service):  # sweeps every 1 s
        await mint(srv)
        clock.advance(5.0 + rules.BUCKET)    # a code is swept with its bucket
        service.swept.clear()
        await asyncio.wait_for(service.swept.wait(), 5.0)
        assert service.codes["expired"] == 1 and service.codes["pairs_expired"] == 1
        assert service.depths == {}
