"""Fixtures for the browser tests: a real rtchub server and a headless Chromium.

Run them inside a network namespace with only loopback::

    unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh .venv/bin/python -m pytest tests/e2e
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.browser import Browser, chromium, chromium_missing
from tests.support import Running, running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip every browser test, with the reason, when Chromium or Playwright is missing."""
    reason = chromium_missing()
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
async def app_server() -> AsyncIterator[Running]:
    """An rtchub server on a free loopback port."""
    async with running() as srv:
        yield srv


@pytest.fixture
async def browser(app_server: Running) -> AsyncIterator[Browser]:
    """Chromium pointed at ``app_server``."""
    async with chromium(app_server.url) as b:
        yield b
