"""Calls that always connect: every form of glare, many times over, and the watchdog.

Two pages in one browser context (two tabs of one profile, as the bug was seen) play
round after round in fresh rooms. Each round must connect both sides, and for the
races themselves it must do so without the watchdog's help (``retries == 0``): the
watchdog is a safety net, not the fix. The last test loses offers on purpose and
shows the watchdog bringing the call up, visibly in the tile.
"""

from __future__ import annotations

import pytest

from tests.e2e.browser import Browser, Participant

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROUNDS = 6  # per scenario; each name pair below makes the caller polite in half of them

JS_IN_ROOM = "() => state.roomState === 'joined' || state.roomState === 'calling'"
JS_IDLE = "() => state.roomState === 'idle' && state.peers.size === 0"
# call `who` in the very task that tells us they joined: before their automatic call's
# offer can arrive, so both offers cross (the race of issue 13)
JS_CALL_ON_ARRIVAL = """(who) => {
  const ws = state.ws; const original = ws.onmessage; let done = false;
  ws.onmessage = (ev) => {
    original(ev);
    const m = JSON.parse(ev.data);
    if (!done && m.type === 'room_members' && m.members.includes(who)) {
      done = true;
      callPeer(who);
    }
  };
}"""
JS_RETRIES = "(id) => state.peers.get(id).retries"
JS_STUCK = """(id) => {
  const p = state.peers.get(id);
  return p ? { me: state.myId, id, polite: p.polite, collisions: p.collisions,
    connection: p.pc.connectionState, signaling: p.pc.signalingState,
    gathering: p.pc.iceGatheringState, remote: !!p.pc.remoteDescription, retries: p.retries,
    members: state.members } : { me: state.myId, id, peer: null, members: state.members };
}"""


async def two_tabs(browser: Browser) -> tuple[Participant, Participant]:
    """Two pages of the call app in one browser context (two tabs of one profile).

    Their watchdogs wait a minute (also after a reload): within the 20 s a test waits,
    a call connects by itself or not at all, so a race cannot hide behind a retry even
    on a machine so loaded that connecting takes longer than the usual 6 s.
    """
    first = await browser.open("tab-1")
    await first.eval("() => localStorage.setItem('rtchub.watchdog',"
                     " JSON.stringify({ restartMs: 60000, freshMs: 60000 }))")
    await first.page.reload()
    await first.wait("() => document.documentElement.dataset.ready === 'true'")
    second = await browser.open("tab-2", beside=first)
    for tab in (first, second):
        assert await tab.eval("() => rtchub.watchdog.restartMs") == 60000
    return first, second


async def join(page: Participant, room: str, me: str, auto: bool = True) -> None:
    """``connect(room, me)`` with automatic calls on or off, and wait until in the room."""
    await page.eval("(auto) => { state.autoCall = auto; }", auto)
    await page.eval("([room, me]) => { connect(room, me); }", [room, me])
    await page.wait(JS_IN_ROOM)


async def connected_without_help(pairs: list[tuple[Participant, str]], why: str) -> None:
    """Every (page, other) call is connected, and none needed a watchdog retry."""
    for page, other in pairs:
        try:
            await page.wait_connected(other)
        except Exception as err:  # say where each side got stuck
            states = [await p.eval(JS_STUCK, o) for p, o in pairs]
            raise AssertionError(f"{why}: not connected: {states}") from err
    for page, other in pairs:
        assert await page.eval(JS_RETRIES, other) == 0, f"{why}: the watchdog had to retry"


async def leave(*pages: Participant) -> None:
    """``disconnect()`` each page and wait until it holds no call."""
    for page in pages:
        await page.eval("() => disconnect()")
        await page.wait(JS_IDLE)


def names(i: int) -> tuple[str, str]:
    """(caller, callee): the caller sorts first (polite) in even rounds, last in odd ones."""
    return ("ann", "bob") if i % 2 == 0 else ("zed", "bob")


async def test_call_peer_while_the_automatic_call_is_being_set_up(browser: Browser) -> None:
    a, b = await two_tabs(browser)
    for i in range(ROUNDS):
        caller, callee = names(i)
        room = f"auto-{i}"
        await join(a, room, caller)
        await a.eval(JS_CALL_ON_ARRIVAL, callee)
        await join(b, room, callee)           # its automatic call offers to the caller
        await b.eval("(id) => { callPeer(id); }", caller)  # a no-op: that call exists
        await connected_without_help([(a, callee), (b, caller)], f"round {i}")
        await leave(a, b)


async def test_both_sides_call_at_once(browser: Browser) -> None:
    a, b = await two_tabs(browser)
    for i in range(ROUNDS):
        first, second = names(i)
        room = f"both-{i}"
        await join(a, room, first, auto=False)
        await join(b, room, second, auto=False)
        await a.wait("(id) => state.members.includes(id)", second)
        # each page calls in the same instant, neither having heard the other's offer yet
        await a.eval("() => { window.go = new BroadcastChannel('glare'); }")
        await b.eval("(id) => { const c = new BroadcastChannel('glare');"
                     " c.onmessage = () => { c.close(); callPeer(id); }; }", first)
        await a.eval("(id) => { go.postMessage('now'); go.close(); callPeer(id); }", second)
        await connected_without_help([(a, second), (b, first)], f"round {i}")
        await leave(a, b)


async def test_a_call_while_the_other_page_reloads(browser: Browser) -> None:
    a, b = await two_tabs(browser)
    for i in range(ROUNDS):
        caller, callee = names(i)
        room = f"reload-{i}"
        await join(a, room, caller)
        await join(b, room, callee)
        await a.wait_connected(callee)
        await b.page.reload(wait_until="commit")
        if i % 4 >= 2:  # call once the server has seen the page go (the offer finds nobody)
            await a.wait("(id) => !state.members.includes(id)", callee)
        await a.eval("(id) => { hangupPeer(id); callPeer(id); }", callee)
        await b.page.wait_for_function("() => document.documentElement.dataset.ready === 'true'")
        await b.wait(JS_IN_ROOM)
        assert await b.eval("() => state.myId") == callee  # back as the same person
        await connected_without_help([(a, callee), (b, caller)], f"round {i}")
        await leave(a, b)


async def test_the_watchdog_retries_a_call_whose_offers_were_lost(browser: Browser) -> None:
    alice = await browser.open("alice")
    bob = await browser.open("bob")
    for page in (alice, bob):
        await page.eval("() => Object.assign(rtchub.watchdog, { restartMs: 1200, freshMs: 1200 })")
    await join(alice, "lossy", "alice", auto=False)
    await join(bob, "lossy", "bob", auto=False)
    await alice.wait("() => state.members.length === 2")
    # bob's side of the path loses the first offer and the one the ICE restart says again
    await bob.eval("() => rtchub.loseSignals('offer', 2)")
    await alice.eval("() => { callPeer('bob'); }")
    tile = "#grid .tile[data-peer=\"bob\"]"
    text = await alice.wait(f"""() => {{
      const t = document.querySelector('{tile}');
      return t && t.dataset.attempt === '1' && t.querySelector('.conn').textContent;
    }}""")
    assert "restarting" in text
    # before the screenshot: the fresh offer follows restartMs after the restart began,
    # and a screenshot on a busy machine can take longer than that
    assert await bob.eval("() => state.peers.has('alice')") is False  # nothing reached bob
    await alice.screenshot("call-retrying")
    await alice.wait_connected("bob")
    await bob.wait_connected("alice")
    # the ICE restart, then a fresh offer from a new connection, which got through
    assert await alice.eval(JS_RETRIES, "bob") == 2
    await alice.wait(f"() => document.querySelector('{tile}').dataset.state === 'connected'"
                     f" && document.querySelector('{tile} .conn').textContent === ''")
    await bob.wait_frames("alice", 0)
    await alice.wait_frames("bob", 0)
