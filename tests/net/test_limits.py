"""Per-IP limits on long-lived connections, and what the log says about clients' mistakes.

``MAX_CONNS_PER_IP`` counts every WebSocket (both stacks) against the client's IP (an IPv6
/64 as one, the forwarded address behind ``TRUST_PROXY``); the one over the limit gets 429
before the upgrade, and a slot comes back when a connection ends, whatever ended it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest

from rtchub.base.clientip import ip_key
from rtchub.base.faultlog import FaultLog, is_client_fault
from rtchub.config.settings import parse_duration
from tests.rawws import RawWs, frame
from tests.support import FakeClock, Running, running

STACKS = pytest.mark.parametrize("kept_alive", [False, True], ids=["fast", "aiohttp"])


def upgrade_headers(forwarded: str | None = None) -> str:
    key = base64.b64encode(os.urandom(16)).decode()
    extra = f"X-Forwarded-For: {forwarded}\r\n" if forwarded else ""
    return (f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extra}")


async def opened(srv: Running, n: int) -> None:
    await srv.hub.changes.wait_for(lambda: len(srv.server.gateway.connections) == n, 5)


def test_an_ipv6_slash_64_is_one_key_and_ipv4_stays_itself() -> None:
    assert ip_key("2001:db8:1:2::1") == ip_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert ip_key("2001:db8:1:3::1") != ip_key("2001:db8:1:2::1")
    assert ip_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert ip_key("192.0.2.7") == "192.0.2.7"
    assert ip_key("fe80::1%eth0") == "fe80::/64"
    assert ip_key("unknown") == "unknown"


@STACKS
async def test_connections_past_the_per_ip_limit_are_refused_until_one_closes(
        kept_alive: bool) -> None:
    async with running(max_conns_per_ip=3) as srv:
        held = []
        for _ in range(3):
            raw, head = await RawWs.open(srv.port, "/ws/rooms", kept_alive=kept_alive)
            assert head.startswith(b"HTTP/1.1 101"), head
            held.append(raw)
        await opened(srv, 3)
        _, head = await RawWs.open(srv.port, "/ws/rooms", kept_alive=kept_alive)
        assert head.startswith(b"HTTP/1.1 429"), head
        assert b"retry-after:" in head.lower()
        assert srv.hub.stats.http_rejections["conns_per_ip"] == 1
        held.pop().close()                      # a reset gives the slot back
        await opened(srv, 2)
        raw, head = await RawWs.open(srv.port, "/ws/rooms", kept_alive=kept_alive)
        assert head.startswith(b"HTTP/1.1 101"), head
        held.append(raw)
        for raw in held:
            raw.close()
        await opened(srv, 0)
        assert len(srv.hub.ip_connections) == 0   # nobody is remembered at zero


async def test_behind_a_trusted_proxy_the_forwarded_address_counts_and_a_64_is_one() -> None:
    async with running(max_conns_per_ip=2, trusted_proxies=("127.0.0.1",)) as srv:
        held = []
        for client in ("198.51.100.1", "198.51.100.1", "198.51.100.2", "2001:db8::1",
                       "2001:db8::2"):
            raw, head = await RawWs.open(srv.port, "/ws/rooms",
                                         headers=upgrade_headers(client))
            assert head.startswith(b"HTTP/1.1 101"), (client, head)
            held.append(raw)
        await opened(srv, 5)
        for client in ("198.51.100.1", "2001:db8::ffff"):   # the same IP, the same /64
            _, head = await RawWs.open(srv.port, "/ws/rooms", headers=upgrade_headers(client))
            assert head.startswith(b"HTTP/1.1 429"), (client, head)
        for raw in held:
            raw.close()


async def test_zero_disables_the_per_ip_limit() -> None:
    async with running(max_conns_per_ip=0) as srv:
        held = [(await RawWs.open(srv.port, "/ws/rooms"))[0] for _ in range(5)]
        await opened(srv, 5)
        for raw in held:
            raw.close()


class Lines(logging.Handler):
    """Keeps the records a logger writes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def captured(name: str) -> Iterator[Lines]:
    logger = logging.getLogger(name)
    lines = Lines()
    old = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)
        logger.setLevel(old)


async def bad_request(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


async def test_malformed_requests_log_one_line_each_at_info_within_the_bound() -> None:
    clock = FakeClock()
    with captured("aiohttp.server") as lines:
        async with running(clock=clock, log_fault_rate=(3, 10.0)) as srv:
            for n in range(8):   # a kept-alive socket's second head: aiohttp parses it
                answer = await bad_request(
                    srv.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                              b"GET / HTTP/1.1\r\nHost: x\r\nBad Header %d\r\n\r\n" % n)
                assert b" 400 " in answer, answer
            assert len(lines.records) == 3
            for record in lines.records:
                assert record.levelno == logging.INFO
                assert record.exc_info is None
                assert "BadHttpMessage" in record.getMessage()
                assert "\n" not in record.getMessage()
            clock.advance(10)      # the next window: one line saying what was left out
            await bad_request(srv.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                        b"GET / HTTP/9.9\r\n\r\n")
            assert len(lines.records) == 4
            assert lines.records[-1].__dict__["suppressed"] == 5


def test_an_error_raised_in_rtchub_is_not_a_client_fault() -> None:
    try:
        parse_duration("often")   # raised by rtchub's own code
    except ValueError as exc:
        assert not is_client_fault(exc)
    try:
        json.loads("{")    # raised inside a library's parser
    except ValueError as exc:
        assert is_client_fault(exc)
    assert is_client_fault(ConnectionResetError("Connection lost"))


def test_server_errors_keep_their_traceback_under_a_bound() -> None:
    target = logging.getLogger("rtchub.test.faultlog")
    clock = FakeClock()
    log = FaultLog(target, clock, burst=2, period=1.0)
    with captured("rtchub.test.faultlog") as lines:
        for _ in range(5):
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                log.exception("handler failed")
        assert [r.levelno for r in lines.records] == [logging.ERROR] * 2
        assert all(r.exc_info is not None for r in lines.records)
        assert log.errors == 5


@STACKS
async def test_a_connection_past_the_message_rate_is_closed(kept_alive: bool) -> None:
    clock = FakeClock()
    async with running(clock=clock, ws_msg_rate=(20, 10.0)) as srv:
        raw, _ = await RawWs.open(srv.port, "/ws/rooms", kept_alive=kept_alive)
        for _ in range(20):
            await raw.send(0x1, b'{"type":"ping"}')
            assert await raw.recv() == (0x1, b'{"type":"pong"}')
        clock.advance(10)          # a new window: 20 more
        for _ in range(20):
            await raw.send(0x1, b'{"type":"ping"}')
            assert await raw.recv() == (0x1, b'{"type":"pong"}')
        await raw.send(0x1, b'{"type":"ping"}')
        assert await raw.close_code() == 1008
        assert srv.hub.stats.closes["msg_rate"] == 1
        raw.close()


async def test_protocol_violations_on_the_fast_path_log_within_the_bound() -> None:
    with captured("rtchub.ws") as lines:
        async with running(log_fault_rate=(3, 60.0)) as srv:
            for _ in range(10):     # a reserved opcode: picows closes with 1002
                raw, _ = await RawWs.open(srv.port, "/ws/rooms")
                raw.write(frame(0x3, b"x"))
                assert await raw.close_code() == 1002
                raw.close()
    faults = [r for r in lines.records if r.__dict__.get("client_fault")]
    assert 1 <= len(faults) <= 3, [r.getMessage() for r in lines.records]
    assert all(r.levelno == logging.INFO and r.exc_info is None for r in faults)
    assert not [r for r in lines.records if r.levelno >= logging.ERROR]


@STACKS
async def test_a_connection_past_the_error_rate_is_closed(kept_alive: bool) -> None:
    clock = FakeClock()
    async with running(clock=clock, ws_error_rate=(5, 10.0)) as srv:
        raw, _ = await RawWs.open(srv.port, "/ws/rooms", kept_alive=kept_alive)
        for _ in range(5):
            await raw.send(0x1, b"not json")
            _, answer = await raw.recv()
            assert orjson.loads(answer)["code"] == "bad_message"
        clock.advance(10)          # a new window: 5 more
        for _ in range(5):
            await raw.send(0x1, b'{"type": "dance"}')
            assert orjson.loads((await raw.recv())[1])["code"] == "unknown_type"
        await raw.send(0x1, b"{")
        assert orjson.loads((await raw.recv())[1])["code"] == "bad_message"  # then closed
        assert await raw.close_code() == 1008
        assert srv.hub.stats.closes["error_rate"] == 1
        raw.close()
