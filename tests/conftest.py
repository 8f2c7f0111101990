"""Shared fixtures: a running rtchub server on loopback."""

from __future__ import annotations

import os
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
