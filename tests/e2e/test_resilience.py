"""Server restarts, a full room, an unreachable server, and a blocked camera."""

from __future__ import annotations

from typing import Any

import pytest

from rtchub.config import ListenAddress
from tests.e2e.browser import Browser
from tests.e2e.conftest import Sessions
from tests.e2e.test_call import everyone_connected
from tests.support import make_config, running

pytestmark = pytest.mark.asyncio(loop_scope="session")

JS_IN_ROOM = "() => state.roomState === 'joined' || state.roomState === 'calling'"
JS_NOTICE = """(code) => {
  const n = document.querySelector('#notice');
  return !n.hidden && n.dataset.code === code && n.querySelector('.t').textContent;
}"""


async def test_server_restart_every_page_reconnects_and_calls_again(sessions: Sessions) -> None:
    first = running()
    srv = await first.__aenter__()
    stopped = False
    port = srv.port
    try:
        async with sessions(srv.url) as browser:
            people = await browser.open_all("ann", "ben", "cat")
            for person in people:
                await person.join("restart")
            await everyone_connected(people)
            before = [await p.eval("() => [state.myId, state.resumeToken]") for p in people]

            await first.__aexit__(None, None, None)  # graceful stop: 1001 to every page
            stopped = True
            for p in people:
                await p.wait("() => state.roomState === 'reconnecting'")
            notice = await people[0].wait(JS_NOTICE, "reconnecting")
            assert "restarting" in notice
            await people[0].screenshot("reconnecting")

            addr = ListenAddress("127.0.0.1", port)
            async with running(make_config(addr=addr)) as again:
                for p in people:
                    await p.wait(JS_IN_ROOM)
                # same people: same IDs and resume tokens, all three back in the room
                after = [await p.eval("() => [state.myId, state.resumeToken]") for p in people]
                assert after == before
                for p in people:
                    await p.wait("() => state.members.length === 3")
                assert again.rooms.counts() == (1, 3)
                await everyone_connected(people)
                ann, ben, _ = people
                # the restarted server carries signaling: a fresh call between two of them
                await ann.eval("() => hangupPeer('ben')")
                await ben.wait("() => !state.peers.has('ann')")
                await ann.eval("() => { callPeer('ben'); }")
                await everyone_connected(people)
                await ann.wait_decoding("ben")
                await ann.screenshot("after-restart")
    finally:
        if not stopped:
            await first.__aexit__(None, None, None)


async def test_full_room_shows_the_error(sessions: Sessions) -> None:
    async with running(max_room_members=2) as srv, sessions(srv.url) as browser:
        alice, bob, carol = await browser.open_all("alice", "bob", "carol")
        await alice.join("small")
        await bob.join("small")
        await carol.page.fill("#room-input", "small")
        await carol.page.fill("#name-input", "carol")
        await carol.page.click("#join-btn")
        text = await carol.wait(JS_NOTICE, "room_full")
        assert "full" in text
        await carol.wait("() => state.roomState === 'idle'")
        assert await carol.eval("() => !document.querySelector('#lobby').hidden") is True
        assert await carol.eval("() => state.localStream") is None
        await carol.screenshot("room-full")
        # the two inside never noticed
        await alice.wait_connected("bob")
        assert await alice.eval("() => state.members") == ["alice", "bob"]


async def test_unreachable_server_is_reported_then_joined_when_it_comes_back(
        sessions: Sessions) -> None:
    first = running()
    srv = await first.__aenter__()
    port = srv.port
    stopped = False
    try:
        async with sessions(srv.url) as browser:
            alice = await browser.open("alice")
            await first.__aexit__(None, None, None)
            stopped = True
            await alice.page.fill("#room-input", "later")
            await alice.page.fill("#name-input", "alice")
            await alice.page.click("#join-btn")
            text = await alice.wait(JS_NOTICE, "unreachable")
            assert "reach the server" in text
            await alice.screenshot("unreachable")
            async with running(make_config(addr=ListenAddress("127.0.0.1", port))):
                await alice.wait(JS_IN_ROOM)
                await alice.wait("() => document.querySelector('#notice').hidden")
    finally:
        if not stopped:
            await first.__aexit__(None, None, None)


async def test_blocked_camera_and_microphone_are_explained(app_server: Any,
                                                           strict_chromium: Any) -> None:
    # no fake permission UI and no granted permissions: getUserMedia is refused
    browser = Browser(strict_chromium, app_server.url)
    try:
        dan = await browser.open("dan", permissions=False)
        # the lobby says so before anyone joins, and joining stays possible
        said = await dan.wait("() => document.querySelector('#preview').dataset.state === 'denied'"
                              " && document.querySelector('#preview-msg').innerText")
        assert "blocked" in said and "Try again" in said
        await dan.screenshot("lobby-denied")
        await dan.join("denied")
        text = await dan.wait(JS_NOTICE, "media_denied")
        assert "blocked" in text
        assert await dan.eval("() => state.localStream") is None
        await dan.wait("() => document.querySelector('#grid .tile[data-peer=\"dan\"]')"
                       ".dataset.camoff === 'true'")
        await dan.screenshot("media-denied")
    finally:
        await browser.close()


async def test_dropped_socket_resumes_the_same_identity_and_keeps_the_call(
        browser: Browser) -> None:
    alice, bob = await browser.open_all("alice", "bob")
    await alice.join("blip")
    await bob.join("blip")
    await alice.wait_connected("bob")
    await bob.wait_frames("alice")
    token = await bob.eval("() => state.resumeToken")
    await bob.eval("() => { window.firstPc = state.peers.get('alice').pc; }")
    await alice.eval("() => { window.memberLists = []; }")
    await alice.page.add_script_tag(content="""
        const ws = state.ws; const orig = ws.onmessage;
        ws.onmessage = (ev) => { const m = JSON.parse(ev.data);
          if (m.type === 'room_members') memberLists.push(m.members); orig(ev); };
    """)
    await bob.eval("() => rtchub.dropSocket()")
    await bob.wait("() => state.roomState === 'reconnecting'")
    await bob.wait(JS_IN_ROOM)
    assert await bob.eval("() => [state.myId, state.resumeToken]") == ["bob", token]
    # alice saw bob go and come back under the same name
    lists = await alice.wait("() => memberLists.length >= 2 && memberLists")
    assert lists[-2:] == [["alice"], ["alice", "bob"]]
    # the media path never depended on the socket: same connection, still decoding
    assert await bob.eval("() => state.peers.get('alice').pc === window.firstPc") is True
    await bob.wait_decoding("alice")
    await alice.wait_decoding("bob")


async def test_ice_servers_come_from_the_server_config(sessions: Sessions) -> None:
    ice = {"iceServers": [{"urls": ["turn:127.0.0.1:9"], "username": "u", "credential": "p"}],
           "iceTransportPolicy": "all"}
    async with running(rtc_config=ice) as srv, sessions(srv.url) as browser:
        alice, bob = await browser.open_all("alice", "bob")
        await alice.join("turn")
        await bob.join("turn")
        await alice.wait_connected("bob")
        used = await alice.eval("() => state.peers.get('bob').pc.getConfiguration().iceServers")
        assert used == [{"urls": ["turn:127.0.0.1:9"], "username": "u", "credential": "p"}]


async def test_reconnect_backoff_grows_with_jitter(browser: Browser) -> None:
    page = await browser.open("x")
    delays = await page.eval("""() => Array.from({length: 8}, (_, n) =>
        Array.from({length: 50}, () => rtchub.backoffDelay(n)))""")
    for n, samples in enumerate(delays):
        ceiling = min(8000, 250 * 2**n)
        assert all(ceiling / 2 - 1 <= d <= ceiling + 1 for d in samples), (n, samples)
        assert len(set(samples)) > 5, "no jitter"


async def test_reloaded_page_comes_back_as_the_same_person_and_calls_again(
        browser: Browser) -> None:
    people = await browser.open_all("ann", "ben", "cat")
    for person in people:
        await person.join("reload")
    await everyone_connected(people)
    ann, ben, cat = people
    token = await ann.eval("() => state.resumeToken")
    await ann.page.reload()
    # the reloaded page rejoins by itself with its ID and token; its calls are new ones
    await ann.wait(JS_IN_ROOM)
    assert await ann.eval("() => [state.myId, state.resumeToken]") == ["ann", token]
    await everyone_connected(people)
    for other in (ben, cat):
        assert sorted(await other.eval("() => state.members")) == ["ann", "ben", "cat"]
    await ann.wait("() => document.querySelectorAll('#grid .tile').length === 3")
