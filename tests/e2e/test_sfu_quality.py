"""The browser app in SFU rooms shows each tile's badge from the server's ``quality``
frames: the others' connections and your own, as the server measures them."""

from __future__ import annotations

import pytest

from rtchub.config import CallSettings
from rtchub.features.calls.routes import CALL_MEDIA
from rtchub.media.sfu.loss import DropEvery
from tests.e2e.conftest import Sessions
from tests.e2e.sfu import join_sfu, sees_video
from tests.support import running

pytestmark = pytest.mark.asyncio(loop_scope="session")

JS_BADGE = """([id]) => {
  const tile = id ? document.querySelector(`#grid .tile[data-peer="${id}"][data-kind="main"]`)
                  : document.querySelector('#grid .tile[data-self="true"]');
  const badge = tile && tile.querySelector('.badge');
  return badge ? {text: badge.textContent, q: badge.dataset.q, title: badge.title} : null;
}"""


async def test_badges_show_the_servers_view_of_each_connection(sessions: Sessions) -> None:
    async with running(node_ips=("127.0.0.1",),
                       calls=CallSettings(quality_interval=1.0)) as srv, \
            sessions(srv.url) as browser:
        ann = await browser.open("ann", "?topology=sfu")
        ben = await browser.open("ben", "?topology=sfu")
        await join_sfu(ann, "sfu-quality")
        await join_sfu(ben, "sfu-quality")
        await sees_video(ann, "ben")
        await sees_video(ben, "ann")
        # ann's tile of ben and her own: "score N · ... · x% loss", coloured by grade
        for who in ("ben", None):
            await ann.wait(f"(a) => {{ const b = ({JS_BADGE})(a); return b !== null"
                           " && b.text.startsWith('score ') && b.q !== 'unknown'; }", [who])
        assert (await ann.eval("() => state.peers.get('ben').serverQuality.id")) == "ben"
        assert (await ann.eval("() => state.myQuality.id")) == "ann"
        # the server drops half of what it sends ben: his badge on ann's page turns poor
        # and says why (a browser repairs loss with retransmissions, so drop a lot)
        peer = srv.server.app[CALL_MEDIA].peer("sfu-quality", "ben")
        for subscription in peer.subscriptions:
            assert subscription.downtrack is not None
            subscription.downtrack.loss = DropEvery(2)
        await ann.wait(f"(a) => {{ const b = ({JS_BADGE})(a); return b !== null"
                       " && b.q !== 'good' && b.title.includes('packet loss'); }", ["ben"],
                       timeout=30_000)
        await ann.screenshot("sfu-quality")
        for subscription in peer.subscriptions:
            assert subscription.downtrack is not None
            subscription.downtrack.loss = None
        await ann.wait(f"(a) => {{ const b = ({JS_BADGE})(a); return b !== null"
                       " && b.q === 'good'; }", ["ben"], timeout=30_000)
