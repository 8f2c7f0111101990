"""Shared fixtures: a running rtchub server on loopback."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import AsyncIterator

import pytest

from tests.support import Running, running

# `rtchub serve` defaults to seed 000's public STUN server; a server a test starts as a
# process must never hand that to a client here (traffic stays on loopback)
os.environ["RTC_CONFIG_JSON"] = '{"iceServers": []}'


@pytest.fixture
async def server() -> AsyncIterator[Running]:
    """A server with default limits on a free loopback port."""
    async with running() as srv:
        yield srv


# pytest's exit status, kept for pytest_unconfigure (see there)
_STATUS: dict[str, int] = {"exit": 0}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _STATUS["exit"] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """aiortc decodes on non-daemon threads that end only when their peer connection is
    closed: after a test that failed half-way (its peers never closed), the interpreter
    would wait for them forever at exit and the suite would hang instead of failing. Say
    so, and exit with pytest's status without waiting for them."""
    left = [t.name for t in threading.enumerate()
            if t is not threading.main_thread() and not t.daemon and t.name.endswith("-decoder")]
    if left:
        print(f"\n{len(left)} aiortc decoder threads were left running (a peer connection "
              "was never closed): exiting without waiting for them", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_STATUS["exit"])
