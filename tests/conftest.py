"""Shared fixtures: a running rtchub server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import Running, running


@pytest.fixture
async def server() -> AsyncIterator[Running]:
    """A server with default limits on a free loopback port."""
    async with running() as srv:
        yield srv
