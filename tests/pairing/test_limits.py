"""Pairing's bounds against abuse, each crossed: mailbox bytes per side and over the whole
server, mints and live pairs per IP, failed redeems per IP (an IPv6 /64 as one) and over
the whole deployment, with the metric and the log line an operator alerts on.

Reproduced on ``rtchub serve`` before (issue 15): 256 messages of 1 MiB made one pair hold
264 MB, a mint loop made 42,000 pairs in 47 s, one IP minted every code, and 500 source
addresses walked all 10^4 codes in 2.5 s.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from tests.net.test_limits import captured
from tests.pairing.support import mint, pairing_server, post, side
from tests.support import FakeClock

PROXY: dict[str, Any] = {"trusted_proxies": ("127.0.0.1",)}


def via(ip: str) -> dict[str, str]:
    """Headers of a request a trusted proxy forwards for ``ip``."""
    return {"X-Forwarded-For": ip}


async def test_a_side_mailbox_is_bounded_in_bytes_and_acks_free_them() -> None:
    async with pairing_server(pair_mailbox_bytes=2048) as (srv, service):
        app_id = (await mint(srv))["appID"]
        a = await side(srv, app_id, "A")
        await a.send({"type": "send", "payload": "x" * 1500})   # B is away: it waits
        assert await a.sync() == []
        await a.send({"type": "send", "payload": "y" * 1000})
        refused = await a.expect("error")
        assert refused["code"] == "queue_full" and "PAIR_MAILBOX_BYTES" in refused["error"]
        assert service.held_total == 1502          # the JSON text of the payload
        b = await side(srv, app_id, "B")
        await a.expect("room_full")
        await b.expect("room_full")
        await b.send({"type": "hello", "deliveredUpTo": 0})
        mail = await b.expect("send")
        await b.send({"type": "delivered", "seq": mail["seq"]})
        assert await b.sync() == []
        assert service.held_total == 0
        await a.send({"type": "send", "payload": "y" * 1000})
        assert (await b.expect("send"))["payload"] == "y" * 1000
        await a.close()
        await b.close()


async def test_all_mailboxes_together_are_bounded_and_expiry_frees_them() -> None:
    clock = FakeClock()
    async with pairing_server(clock, pair_mailbox_total=4096, room_ttl=30.0) as (srv, svc):
        first, second = (await mint(srv))["appID"], (await mint(srv))["appID"]
        a1 = await side(srv, first, "A")
        await a1.send({"type": "send", "payload": "x" * 3000})
        assert await a1.sync() == []
        a2 = await side(srv, second, "A")
        await a2.send({"type": "send", "payload": "y" * 2000})
        refused = await a2.expect("error")
        assert refused["code"] == "queue_full" and "PAIR_MAILBOX_TOTAL" in refused["error"]
        async with aiohttp.ClientSession() as http, \
                http.get(srv.url + "/metrics") as resp:
            assert "rtchub_pair_mailbox_bytes 3002.0" in await resp.text()
        await a1.close()
        await a2.close()
        clock.advance(31.0)           # the first pair expires, and its mailbox with it
        await svc.sweep()
        assert svc.held_total == 0


async def test_mints_per_ip_are_rate_limited_by_default_and_other_ips_are_not() -> None:
    clock = FakeClock()
    async with pairing_server(clock, pair_mints_per_min=3, **PROXY) as (srv, service):
        url = srv.url + "/rendezvous/code"
        for _ in range(3):
            assert (await post(url, headers=via("198.51.100.7")))[0] == 200
        status, body, headers = await post(url, headers=via("198.51.100.7"))
        assert status == 429 and "PAIR_MINTS_PER_MIN" in body["error"]
        assert headers["Retry-After"] == "60"
        assert (await post(url, headers=via("198.51.100.8")))[0] == 200
        clock.advance(60)
        assert (await post(url, headers=via("198.51.100.7")))[0] == 200
        assert service.codes["mint_limited"] == 1


async def test_live_pairs_per_ip_are_bounded_until_they_expire() -> None:
    clock = FakeClock()
    async with pairing_server(clock, pair_max_per_ip=2, pair_mints_per_min=0,
                              room_ttl=30.0) as (srv, service):
        url = srv.url + "/rendezvous/code"
        assert (await post(url))[0] == 200
        assert (await post(url))[0] == 200
        status, body, _ = await post(url)
        assert status == 429 and "PAIR_MAX_PER_IP" in body["error"]
        clock.advance(31.0)
        await service.sweep()
        assert (await post(url))[0] == 200


async def test_failed_redeems_count_an_ipv6_slash_64_as_one_address() -> None:
    async with pairing_server(pair_redeem_failures_per_min=2, **PROXY) as (srv, _):
        url = srv.url + "/rendezvous/redeem"
        for ip in ("2001:db8:5::1", "2001:db8:5::2"):
            assert (await post(url, {"code": "0000"}, headers=via(ip)))[0] == 410
        status, body, _ = await post(url, {"code": "0000"}, headers=via("2001:db8:5::3"))
        assert status == 429, body
        status, _, _ = await post(url, {"code": "0000"}, headers=via("2001:db8:6::1"))
        assert status == 410                                   # another /64


async def test_the_deployment_wide_budget_stops_guessing_from_many_addresses() -> None:
    clock = FakeClock()
    async with pairing_server(clock, pair_redeem_budget_per_min=5, **PROXY) as (srv, svc):
        victim = await mint(srv)
        url = srv.url + "/rendezvous/redeem"
        wrong = f"{(int(victim['code']) + 1) % 10000:04d}"
        with captured("rtchub.pairing") as lines:
            for n in range(5):      # five addresses, one guess each: the budget runs out
                status, _, _ = await post(url, {"code": wrong}, headers=via(f"203.0.113.{n}"))
                assert status == 410
            status, body, headers = await post(url, {"code": victim["code"]},
                                               headers=via("203.0.113.99"))
            assert status == 429 and int(headers["Retry-After"]) == 60, body
            warnings = [r for r in lines.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "PAIR_REDEEM_BUDGET_PER_MIN" in warnings[0].getMessage()
        assert warnings[0].__dict__["event"] == "redeem_budget_exhausted"
        assert svc.codes["budget_exhausted"] == 1
        clock.advance(60)
        status, body, _ = await post(url, {"code": victim["code"]}, headers=via("192.0.2.1"))
        assert status == 200 and body["appID"] == victim["appID"]


async def test_a_malformed_redeem_body_counts_as_a_failure() -> None:
    async with pairing_server(pair_redeem_failures_per_min=2) as (srv, _):
        url = srv.url + "/rendezvous/redeem"
        bodies: list[Any] = [{"code": "12"}, {"code": "١٢٣٤"}]   # (Arabic-Indic digits)
        for body in bodies:
            assert (await post(url, body))[0] == 400
        assert (await post(url, {"code": "0000"}))[0] == 429
