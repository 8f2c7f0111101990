"""An SFU room in a cluster: the browser app follows room_elsewhere to the node that
hosts the room. Two real ``rtchub serve`` nodes on a real redis-server, each with its
own NODE_URL; a person who opens the app on the wrong node ends up in the call on the
right one, seeing and seen."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.nodes import cluster
from tests.e2e.conftest import Sessions
from tests.e2e.sfu import join_sfu, sees_video

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_join_on_the_wrong_node_is_sent_to_the_room_s_node(
        sessions: Sessions, tmp_path: Path) -> None:
    async with cluster(tmp_path) as group:
        a, b = await group.add_many("A", "B")
        async with sessions(a.url) as on_a, sessions(b.url) as on_b:
            ann = await on_a.open("ann", "?topology=sfu")
            await join_sfu(ann, "spread")           # the room is placed on node A
            ben = await on_b.open("ben", "?topology=sfu")
            await ben.page.fill("#room-input", "spread")
            await ben.page.fill("#name-input", "ben")
            await ben.page.click("#join-btn")
            # node B refuses with A's NODE_URL; the app goes there and joins at once
            await ben.page.wait_for_url(f"{a.url}/**", timeout=20_000)
            await ben.wait("() => window.state && state.topology === 'sfu'"
                           " && state.roomState === 'joined'")
            assert ben.page.url.startswith(a.url), ben.page.url
            assert "autojoin" not in ben.page.url      # a reload shows the lobby
            await sees_video(ben, "ann")
            await sees_video(ann, "ben")
            assert await ben.eval("() => state.roomId") == "spread"
            assert await ben.eval("() => state.myId") == "ben"
