"""The browser app in SFU rooms: one peer connection with the server per page, everyone
decodes everyone, and mute, camera, screen share, chat, the people panel and rejoining
work as in a mesh call (seed 003's call rooms; docs/browser-app.md "SFU rooms")."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.e2e.browser import Browser, Participant
from tests.e2e.conftest import Sessions
from tests.e2e.sfu import (
    JS_TILE,
    decodes_everyone,
    join_sfu,
    open_counting,
    sees_video,
)
from tests.support import running

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def browser(sessions: Sessions) -> AsyncIterator[Browser]:
    """The shared Chromium on a server whose SFU peers gather on loopback."""
    async with running(node_ips=("127.0.0.1",)) as srv, sessions(srv.url) as session:
        yield session

JS_ONE_CONNECTION = """() => window.__connections === 1
  && new Set([...state.peers.values()].map((p) => p.pc)).size <= 1
  && [...state.peers.values()].every((p) => p.pc === state.sfu.pc)"""

JS_CHAT_FROM = """([from, text]) => [...document.querySelectorAll('#chat-log li')].some(
  (li) => li.querySelector('.from').textContent === from
    && li.querySelector('p').textContent === text)"""

JS_PERSON = """([id, attr]) => {
  const li = document.querySelector(`#member-list li[data-member="${id}"]`);
  return li ? li.dataset[attr] : null;
}"""


async def pair(browser: Browser, room: str) -> tuple[Participant, Participant]:
    """ann makes an SFU room (?topology=sfu); ben joins it from the plain lobby."""
    ann = await browser.open("ann", "?topology=sfu")
    ben = await browser.open("ben")
    await open_counting(ann)
    await open_counting(ben)
    await join_sfu(ann, room)
    await join_sfu(ben, room)
    return ann, ben


async def test_two_people_see_and_hear_each_other_through_the_server(browser: Browser) -> None:
    ann, ben = await pair(browser, "sfu-two")
    # ben asked for no topology: the room's own is sfu, and his address now says so
    assert await ben.eval("() => new URL(location.href).searchParams.get('topology')") == "sfu"
    assert await ben.eval("() => document.querySelector('#sfu-input').checked") is True
    await decodes_everyone([ann, ben])
    for me in (ann, ben):
        assert await me.eval(JS_ONE_CONNECTION) is True
        await me.wait("() => document.querySelectorAll('#grid .tile').length === 2")
        await me.wait("() => state.roomState === 'calling'")
    assert await ann.eval(JS_TILE, ["ben", "name"]) == "ben"
    # no browser-to-browser calls in an SFU room: nothing to call or hang up per person
    await ann.page.click("#btn-people")
    await ann.wait("() => document.querySelectorAll('#member-list li').length === 2")
    assert await ann.eval("() => document.querySelectorAll('#member-list button').length") == 0
    assert await ann.eval("() => document.querySelector('#hangup-all').hidden") is True
    # a guest of the dev server may not record: no Record button in an SFU room
    assert await ann.eval("() => document.querySelector('#btn-record').hidden") is True

    # mute and camera off reach the other side through the server
    await ben.page.click("#btn-mute")
    await ann.wait(f"(a) => ({JS_TILE})(a) === 'true'", ["ben", "muted"])
    await ann.wait(f"(a) => ({JS_PERSON})(a) === 'true'", ["ben", "muted"])
    await ben.page.click("#btn-camera")
    await ann.wait(f"(a) => ({JS_TILE})(a) === 'true'", ["ben", "camoff"])
    await ann.screenshot("sfu-muted")
    await ben.page.click("#btn-mute")
    await ben.page.click("#btn-camera")
    await ann.wait(f"(a) => ({JS_TILE})(a) === 'false'", ["ben", "muted"])
    await ann.wait(f"(a) => ({JS_TILE})(a) === 'false'", ["ben", "camoff"])
    await ann.wait(f"(a) => ({JS_PERSON})(a) === 'false'", ["ben", "muted"])
    await sees_video(ann, "ben")

    # chat goes over the "chat" data channel and the server relays it
    await ben.page.click("#btn-chat")
    await ben.page.fill("#chat-input", "hello through the server")
    await ben.page.press("#chat-input", "Enter")
    await ann.wait(JS_CHAT_FROM, ["ben", "hello through the server"])
    await ann.wait("() => document.querySelector('#chat-unread').textContent === '1'")
    assert await ann.eval("(t) => sendChat(t)", "and back") == 1
    await ben.wait(JS_CHAT_FROM, ["ann", "and back"])
    await ben.screenshot("sfu-chat")

    # leaving: ben's tile goes on ann's side, and ben's connection is closed
    await ben.page.click("#btn-leave")
    await ben.wait("() => state.roomState === 'idle' && state.sfu.pc === null"
                   " && state.peers.size === 0")
    await ann.wait("() => !state.peers.has('ben')"
                   " && document.querySelectorAll('#grid .tile').length === 1")


async def test_screen_share_adds_a_tile_beside_the_camera(browser: Browser) -> None:
    ann, ben = await pair(browser, "sfu-share")
    await sees_video(ben, "ann")
    # a real click: getDisplayMedia, auto-accepted (Chromium's fake screen)
    await ann.page.click("#btn-screen")
    await ann.wait("() => state.usingScreen")
    await ben.wait("() => !!document.querySelector("
                   "'#grid .tile[data-peer=\"ann\"][data-kind=\"screen\"]')")
    tracks = await ben.eval("() => [...state.sfu.tracks.values()]"
                            ".filter((t) => t.publisher === 'ann').map((t) => t.source).sort()")
    assert tracks == ["camera", "microphone", "screen"]
    await sees_video(ben, "ann", "screen")
    await sees_video(ben, "ann")  # the camera goes on beside it
    assert await ben.eval(JS_TILE, ["ann", "sharing"]) is None
    await ben.wait("() => state.peers.get('ann').remote.sharing")
    assert await ben.eval("() => document.querySelectorAll('#grid .tile').length") == 3
    await ben.screenshot("sfu-screen")
    await ann.page.click("#btn-screen")
    await ann.wait("() => !state.usingScreen")
    await ben.wait("() => !document.querySelector('#grid .tile[data-kind=\"screen\"]')"
                   " && !state.peers.get('ann').remote.sharing")
    await sees_video(ben, "ann")
    assert await ann.eval("() => window.__connections") == 1


async def test_connect_global_in_an_sfu_room_uses_one_peer_connection(browser: Browser) -> None:
    ann = await browser.open("ann", "?topology=sfu")
    await join_sfu(ann, "sfu-api")
    # seed 000's global connect(room, id) from a page that knows nothing of topologies
    ben = await browser.open("ben")
    cat = await browser.open("cat")
    for person in (ben, cat):
        await open_counting(person)
        await person.eval("([room, id]) => connect(room, id)", ["sfu-api", person.name])
        await person.wait("() => state.roomState === 'calling'")
        assert await person.eval("() => state.topology") == "sfu"
    await decodes_everyone([ann, ben, cat])
    for person in (ben, cat):
        assert await person.eval(JS_ONE_CONNECTION) is True
        assert await person.eval("() => state.peers.size") == 2


async def test_a_participant_who_reloads_or_rejoins_is_seen_by_all(browser: Browser) -> None:
    ann, ben = await pair(browser, "sfu-again")
    cat = await browser.open("cat", "?topology=sfu")
    await join_sfu(cat, "sfu-again")
    await decodes_everyone([ann, ben, cat])

    # a reload puts ben back in the call as ben, on a new connection
    await ben.page.reload()
    await ben.wait("() => state.roomState === 'calling' && state.myId === 'ben'")
    assert await ben.eval("() => state.topology") == "sfu"
    await decodes_everyone([ann, ben, cat])

    # leave, then Rejoin from the lobby
    await cat.page.click("#btn-leave")
    await ann.wait("() => !state.peers.has('cat')")
    await ben.wait("() => !state.peers.has('cat')")
    await cat.page.click("#rejoin")
    await cat.wait("() => state.roomState === 'calling' && state.topology === 'sfu'")
    await decodes_everyone([ann, ben, cat])
    for person in (ann, ben, cat):
        await person.wait("() => document.querySelectorAll('#grid .tile').length === 3")


async def test_four_people_in_an_sfu_room(browser: Browser) -> None:
    people = [await browser.open(name, "?topology=sfu") for name in ("ann", "ben", "cat", "dan")]
    for person in people:
        await open_counting(person)
        await join_sfu(person, "sfu-four")
    await decodes_everyone(people)
    for person in people:
        assert await person.eval(JS_ONE_CONNECTION) is True
        await person.wait("() => document.querySelectorAll('#grid .tile').length === 4")
    ann = people[0]
    await people[2].page.click("#btn-mute")
    await ann.wait(f"(a) => ({JS_TILE})(a) === 'true'", ["cat", "muted"])
    await ann.page.click("#btn-people")
    await ann.wait("() => document.querySelectorAll('#member-list li').length === 4")
    await ann.wait("() => [...document.querySelectorAll('#grid video')]"
                   ".every((v) => v.videoWidth > 0)")
    await ann.screenshot("call-sfu-four")


async def test_glare_with_the_server_is_settled_by_the_polite_browser(browser: Browser) -> None:
    ann, ben = await pair(browser, "sfu-glare")
    await sees_video(ben, "ann")
    await sees_video(ann, "ben")
    # ben hears nothing from the server for a while: ann's screen makes the server
    # offer to ben, and ben's own screen share makes ben offer while that is unanswered
    await ben.eval("() => rtchub.holdSignals(true)")
    await ann.page.click("#btn-screen")
    await ben.wait("() => rtchub.heldSignals().includes('sfu_offer')")
    await ben.page.click("#btn-screen")
    await ben.wait("() => rtchub.heldSignals().includes('sfu_ignored')")
    await ben.eval("() => rtchub.holdSignals(false)")
    # ben rolled back, answered the server, offered again: both screens go both ways
    await ben.wait("() => state.sfu.collisions >= 1 && state.sfu.ignored >= 1")
    await sees_video(ben, "ann", "screen")
    await sees_video(ann, "ben", "screen")
    await sees_video(ben, "ann")
    await sees_video(ann, "ben")
    assert await ben.eval("() => state.sfu.pc.signalingState") == "stable"
    assert await ben.eval("() => window.__connections") == 1
