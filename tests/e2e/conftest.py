"""Fixtures for the browser tests: a real rtchub server and a headless Chromium.

One Chromium serves every browser test of the suite (``shared_chromium`` in
tests/conftest.py; each test works in browser contexts of its own, closed when it
ends), so these tests run in the session's event loop: each module says so with
``pytestmark = pytest.mark.asyncio(loop_scope="session")``. A second Chromium,
without the fake permission UI, starts only for the tests that need a browser
which refuses the camera (``strict_chromium``).

Run them inside a network namespace with only loopback::

    unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh .venv/bin/python -m pytest tests/e2e
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.browser import Browser, chromium_missing
from tests.support import Running, running

Sessions = Callable[[str], AbstractAsyncContextManager[Browser]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip every browser test, with the reason, when Chromium or Playwright is missing."""
    reason = chromium_missing()
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest_asyncio.fixture(loop_scope="session")
async def app_server() -> AsyncIterator[Running]:
    """An rtchub server on a free loopback port."""
    async with running() as srv:
        yield srv


@pytest_asyncio.fixture(loop_scope="session")
async def browser(app_server: Running, shared_chromium: Any) -> AsyncIterator[Browser]:
    """Chromium pointed at ``app_server``; the test's contexts close when it ends."""
    session = Browser(shared_chromium, app_server.url)
    try:
        yield session
    finally:
        await session.close()


@pytest_asyncio.fixture(loop_scope="session")
async def sessions(shared_chromium: Any) -> AsyncIterator[Sessions]:
    """``async with sessions(url) as b``: the shared Chromium pointed at a server of the test's."""
    opened: list[Browser] = []

    @asynccontextmanager
    async def session(url: str) -> AsyncIterator[Browser]:
        b = Browser(shared_chromium, url)
        opened.append(b)
        try:
            yield b
        finally:
            opened.remove(b)
            await b.close()

    yield session
    for b in opened:
        await b.close()
