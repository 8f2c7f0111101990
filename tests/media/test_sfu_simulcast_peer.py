"""A server peer answers Chromium's real simulcast offer with simulcast, publishes the
track with one layer per RID, and keeps simulcast in its own later offers (a browser
whose simulcast a later description drops falls back to one encoding)."""

from __future__ import annotations

import asyncio

import pytest

from rtchub.media.sfu import SfuPeer
from rtchub.media.sfu.rtp import MID_URI, RID_URI, RRID_URI
from rtchub.media.sfu.sdp import parse_sections
from tests.media.sfu_support import PictureTrack, room
from tests.media.test_sfu_simulcast import CHROMIUM_OFFER

pytestmark = pytest.mark.webrtc


async def test_chromiums_simulcast_offer_is_answered_and_kept_in_the_servers_offers() -> None:
    async with room() as r:
        ann = await r.join("ann")
        ann.publish(PictureTrack(96, 64))
        await ann.negotiate()
        await r.until(lambda: len(r.tracks_of(ann)) == 1)
        offers: asyncio.Queue[str] = asyncio.Queue()

        async def on_offer(sdp: str) -> None:
            await offers.put(sdp)

        peer = SfuPeer("chromium", r.config, on_offer, stats=r.stats)
        try:
            answer = await peer.accept_offer(CHROMIUM_OFFER)
            assert answer is not None
            section = parse_sections(answer)[0]
            assert section.receives and section.media_codecs[0].name == "VP8"
            assert section.rids == ("q", "h", "f")
            assert "a=simulcast:recv q;h;f" in answer and "a=rid:q recv" in answer
            assert (section.extensions[MID_URI], section.extensions[RID_URI],
                    section.extensions[RRID_URI]) == (9, 10, 11)
            track = peer.published["0"]
            assert [layer.rid for layer in track.uplink.layers] == ["q", "h", "f"]
            assert [layer.ssrc for layer in track.uplink.layers] == [None] * 3  # learned later

            # the server's next offer (a subscription) still receives simulcast on mid 0;
            # the server offers once the peer has connected (docs/sfu-media.md), and this
            # one has no client transport behind its offer: count it as connected
            peer._was_connected = True
            peer.subscribe(r.tracks_of(ann)[0])
            offer = await asyncio.wait_for(offers.get(), 10)
            ours = parse_sections(offer)
            assert ours[0].mid == "0" and ours[0].rids == ("q", "h", "f")
            assert ours[0].extensions[RID_URI] == 10
            assert ours[1].rids == ()  # the subscription's section: one stream
        finally:
            await peer.close()
