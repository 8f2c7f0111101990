"""A server peer that fails tells its participant in a frame of its own (``sfu_failed``)."""

from __future__ import annotations

import pytest

from rtchub.config import CallSettings
from tests.calls.support import Participant, call
from tests.support import WsClient

pytestmark = pytest.mark.webrtc


class Silent(Participant):
    """A participant that never answers the server's offers."""

    async def _answer(self, sdp: str) -> None:
        self.server_offers += 1
        self.changes.notify()


async def test_a_peer_that_times_out_is_reported_as_sfu_failed_not_as_an_error() -> None:
    async with call(calls=CallSettings(signaling_timeout=0.5)) as c:
        ann = Silent("ann", await WsClient.connect(c.srv.ws_url + "/rooms"), c.changes)
        c.people.append(ann)
        await ann.send({"type": "join", "room": "call", "from": "ann", "topology": "sfu"})
        await c.until(lambda: bool(ann.joined))
        ann.open_chat()
        await ann.negotiate()
        await c.join("bob")  # bob publishes: the server offers ann his tracks
        await c.until(lambda: ann.server_offers > 0)
        await c.until(lambda: bool(ann.failed))
        [failed] = ann.failed
        assert failed["code"] == "signaling_timeout"
        assert "ann" in failed["error"] and failed["message"] == failed["error"]
        assert ann.errors == []  # not an error frame: no request of ann's was refused
        # the failed peer is gone: a request for it now is answered with an error
        await ann.send({"type": "sfu_offer", "sdp": "v=0\r\n"})
        await c.until(lambda: bool(ann.errors))
        assert ann.errors[0]["code"] == "connection_failed", ann.errors
