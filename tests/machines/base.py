"""Hypothesis state machines over real sockets: the harness every dialect's machine uses.

A machine owns an event loop and a real rtchub server on loopback, and drives real
clients through it with random interleavings of valid and invalid frames. The invariants
are the same for every dialect:

* isolation: every relayed frame carries a unique tag; the one client that may receive it
  is the intended recipient in the sender's room / pair / match at the time it was sent,
  and it receives it exactly once;
* every refused frame gets an error with a code, to its sender only;
* every connection that should stay open stays open;
* the process never dies: the server answers /healthz after every example.

In the suite each machine runs a few short examples (seconds). By hand, scale it up with
``RTCHUB_MACHINE_EXAMPLES``, ``RTCHUB_MACHINE_STEPS`` and ``RTCHUB_MACHINE_BURST`` (frames a
relay or junk step sends back to back); the frames sent are counted in :data:`TALLY` and
printed at the end (docs/reliability.md has the command).
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import os
import sys
from collections import Counter
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import aiohttp
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine

from tests.support import Running, running

T = TypeVar("T")

EXAMPLES = int(os.environ.get("RTCHUB_MACHINE_EXAMPLES", "3"))
STEPS = int(os.environ.get("RTCHUB_MACHINE_STEPS", "25"))
# frames a relay or junk step sends back to back before the clients settle
BURST = int(os.environ.get("RTCHUB_MACHINE_BURST", "3"))
bursts = st.integers(1, BURST)
SETTINGS = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                    suppress_health_check=list(HealthCheck), derandomize=False)
# frames sent by every machine in this process, by dialect (printed at exit when scaled up)
TALLY: Counter[str] = Counter()


def _report() -> None:
    if os.environ.get("RTCHUB_MACHINE_STEPS"):
        print(f"\nstate machines: {sum(TALLY.values())} frames sent "
              f"({', '.join(f'{k} {v}' for k, v in sorted(TALLY.items()))}); pytest's "
              "summary above says whether every invariant held", file=sys.stderr)


atexit.register(_report)

# text that is no valid frame of any dialect (each must get an error with a code)
JUNK = st.one_of(
    st.sampled_from(["", "not json", "[1,2]", "42", "null", '"x"', "{}", '{"type": 7}',
                     '{"type": null}', '{"type": "dance"}', '{"type": ""}', "{" * 40,
                     '{"type": "' + "x" * 300 + '"}', "\ud7ff", '{"type": "error"}']),
    st.text(max_size=30).filter(lambda t: '"type"' not in t),
)


class LoopMachine(RuleBasedStateMachine):
    """A machine with its own event loop and a server started on it."""

    dialect = "?"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self._tags = itertools.count(1)
        self._server: AbstractAsyncContextManager[Running] = running(**self.overrides())
        self.srv = self.run(self._server.__aenter__())

    def overrides(self) -> dict[str, Any]:
        """Server settings for this machine (bursts of frames, junk included, are the
        point here: no per-connection message or error rate)."""
        return {"ws_msg_rate": (0, 1.0), "ws_error_rate": (0, 1.0)}

    def run(self, work: Awaitable[T]) -> T:
        """Run ``work`` on the machine's loop, under a timeout."""
        return self.loop.run_until_complete(asyncio.wait_for(work, 20))

    def tag(self) -> str:
        """A tag no other frame carries."""
        return f"t{next(self._tags)}"

    def sent(self, n: int = 1) -> None:
        """Count frames sent."""
        TALLY[self.dialect] += n

    def teardown(self) -> None:
        try:
            self.run(self.close_clients())
            self.run(self._alive())
        finally:
            try:
                self.run(self._server.__aexit__(None, None, None))
            finally:
                self.loop.close()

    async def close_clients(self) -> None:
        """Close every client (each machine's own)."""

    async def _alive(self) -> None:
        async with aiohttp.ClientSession() as session, \
                session.get(self.srv.url + "/healthz") as resp:
            assert resp.status == 200
