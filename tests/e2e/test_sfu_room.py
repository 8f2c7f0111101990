"""The browser app in SFU rooms: the server-side recorder's button (only for those who
may record) and the active speaker the server announces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from rtchub.errors import ConnectionFailed
from rtchub.features.calls.routes import CALL_MEDIA, CALLS
from rtchub.features.calls.rules import Grants
from rtchub.net.server import Server
from tests.e2e.browser import Browser
from tests.e2e.conftest import Sessions
from tests.e2e.sfu import JS_TILE, join_sfu, sees_video
from tests.support import running

pytestmark = pytest.mark.asyncio(loop_scope="session")


class RecorderIsAnn:
    """Join tokens as a deployment would issue them: only ann may record."""

    def authorize(self, room: str, token: str | None, requested: str | None) -> Grants:
        """Guests publish and subscribe; ann also records."""
        return Grants(requested, room, record=requested == "ann")


@dataclass
class Site:
    """A browser session on a server that records into ``recordings``."""

    browser: Browser
    recordings: Path
    server: Server


@pytest_asyncio.fixture(loop_scope="session")
async def site(sessions: Sessions, tmp_path: Path) -> AsyncIterator[Site]:
    """The shared Chromium on a server whose SFU peers gather on loopback, recording to
    ``tmp_path`` and granting the recorder to ann."""
    async with running(node_ips=("127.0.0.1",)) as srv, sessions(srv.url) as session:
        srv.server.app[CALL_MEDIA].recordings = tmp_path
        srv.server.app[CALLS].authorizer = RecorderIsAnn()
        yield Site(session, tmp_path, srv.server)


async def test_record_button_drives_the_server_recorder(site: Site) -> None:
    ann = await site.browser.open("ann", "?topology=sfu")
    ben = await site.browser.open("ben", "?topology=sfu")
    await join_sfu(ann, "sfu-rec")
    await join_sfu(ben, "sfu-rec")
    await sees_video(ann, "ben")
    await sees_video(ben, "ann")
    # ann's grant shows her the button; ben has none
    assert await ann.eval("() => document.querySelector('#btn-record').hidden") is False
    assert await ben.eval("() => document.querySelector('#btn-record').hidden") is True
    assert await ann.eval("() => document.querySelector('#rec-dot').hidden") is True

    await ann.page.click("#btn-record")
    # everyone is told: the REC mark shows on both pages, ann's button is lit
    for person in (ann, ben):
        await person.wait("() => state.sfu.recording.state === 'recording'"
                          " && !document.querySelector('#rec-dot').hidden")
    assert await ann.eval("() => document.querySelector('#btn-record').dataset.active") == "true"
    assert await ann.eval("() => document.querySelector('#btn-record').title") == "Stop recording"
    await ann.screenshot("sfu-recording")
    await sees_video(ann, "ben")  # media keeps flowing while the server records it

    await ann.page.click("#btn-record")
    for person in (ann, ben):
        await person.wait("() => state.sfu.recording.state === 'stopped'"
                          " && document.querySelector('#rec-dot').hidden")
    await ben.wait("() => document.querySelector('#notice .t').textContent"
                   ".startsWith('Recording saved on the server')")
    assert await ann.eval("() => document.querySelector('#btn-record').dataset.active") == "false"
    written = [p for p in site.recordings.rglob("*") if p.is_file()]
    assert written, "the server wrote no recording"


async def test_the_active_speaker_is_outlined(site: Site) -> None:
    ann = await site.browser.open("ann", "?topology=sfu")
    ben = await site.browser.open("ben", "?topology=sfu")
    cat = await site.browser.open("cat", "?topology=sfu")
    for person in (ann, ben, cat):
        await join_sfu(person, "sfu-speaker")
    for person in (ann, ben):
        await sees_video(cat, person.name)
    # everyone's fake microphone beeps alike. All go quiet: nobody speaks (ann, there
    # from the start, has heard every active_speaker); then ann alone speaks again
    for person in (ann, ben, cat):
        await person.page.click("#btn-mute")
    await ann.wait("() => state.activeSpeaker === null", timeout=30_000)
    await ann.page.click("#btn-mute")
    await cat.wait("() => state.activeSpeaker === 'ann'", timeout=30_000)
    await cat.wait(f"(a) => ({JS_TILE})(a) === 'true'", ["ann", "speaking"])
    assert await cat.eval(JS_TILE, ["ben", "speaking"]) == "false"
    await cat.page.click("#btn-people")
    await cat.wait("() => document.querySelector('#member-list li[data-member=\"ann\"]')"
                   ".dataset.speaking === 'true'")
    await cat.screenshot("sfu-speaker")
    # ann's own page outlines her own tile
    await ann.wait("() => document.querySelector('#grid .tile[data-self=\"true\"]')"
                   ".dataset.speaking === 'true'")


async def test_a_failed_server_peer_makes_the_page_join_again(site: Site) -> None:
    ann = await site.browser.open("ann", "?topology=sfu")
    ben = await site.browser.open("ben", "?topology=sfu")
    await join_sfu(ann, "sfu-fail")
    await join_sfu(ben, "sfu-fail")
    await sees_video(ben, "ann")
    # ben's peer on the server fails (as when ICE/DTLS fail): the server says sfu_failed
    media = site.server.app[CALL_MEDIA]
    peer = media.peer("sfu-fail", "ben")
    assert peer.on_failed is not None
    peer.on_failed(ConnectionFailed("the WebRTC connection of 'ben' failed"))
    # and closes in a task of its own, as a failed peer does
    closing = asyncio.get_running_loop().create_task(peer.close())
    await ben.wait("() => state.sfu.rejoins === 1")
    await ben.wait("() => document.querySelector('#notice .t').textContent"
                   ".startsWith('The media connection to the server broke')")
    await closing
    # a new connection, and media both ways again
    await sees_video(ben, "ann")
    await sees_video(ann, "ben")
