"""Shared fixtures: a running rtchub server on loopback, and one headless Chromium for
every browser test of the suite.

Launching Chromium (with Playwright's driver) costs a second or two of a busy machine, so
one serves the whole session; each test works in browser contexts of its own, closed when
it ends (``chromium_contexts``, tests/e2e's ``browser``/``sessions``). A test that uses it
runs in the session's event loop: its module says
``pytestmark = pytest.mark.asyncio(loop_scope="session")``.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.browser import STRICT_ARGS, Contexts, chromium_missing, launch
from tests.support import Running, running

# `rtchub serve` defaults to seed 000's public STUN server; a server a test starts as a
# process must never hand that to a client here (traffic stays on loopback)
os.environ["RTC_CONFIG_JSON"] = '{"iceServers": []}'


@pytest.fixture
async def server() -> AsyncIterator[Running]:
    """A server with default limits on a free loopback port."""
    async with running() as srv:
        yield srv


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def playwright_driver() -> AsyncIterator[Any]:
    """Playwright's driver, once for the session (the test skips when Chromium is missing)."""
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        yield pw


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared_chromium(playwright_driver: Any) -> AsyncIterator[Any]:
    """The Chromium every browser test opens its contexts in."""
    browser = await launch(playwright_driver)
    try:
        yield browser
    finally:
        await browser.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def strict_chromium(playwright_driver: Any) -> AsyncIterator[Any]:
    """A Chromium that refuses camera and microphone to contexts not granted them."""
    browser = await launch(playwright_driver, STRICT_ARGS)
    try:
        yield browser
    finally:
        await browser.close()


@pytest_asyncio.fixture(loop_scope="session")
async def chromium_contexts(shared_chromium: Any) -> AsyncIterator[Contexts]:
    """The shared Chromium as a Playwright ``Browser`` for one test: every context and page
    it opens is closed when the test ends."""
    contexts = Contexts(shared_chromium)
    try:
        yield contexts
    finally:
        await contexts.close()


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
