"""Calls between real Chromium pages: mesh, glare, chat, mute and camera-off."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.browser import Browser, Participant
from tests.support import Running

pytestmark = pytest.mark.asyncio(loop_scope="session")

HOOK = """
window.seen = [];
const originalSetState = setRoomState;
setRoomState = function (newState) { seen.push(newState); originalSetState(newState); };
"""

JS_TOAST = """(text) => [...document.querySelectorAll('#toasts .toast')]
  .some((t) => t.textContent === text)"""

JS_TILE = """([id, attr]) => {
  const tile = document.querySelector(`#grid .tile[data-peer="${id}"]`);
  return tile ? tile.dataset[attr] : null;
}"""


JS_ENERGY_WINDOW = """async ([id, skip, span]) => {
  let energy = 0, seconds = 0;
  (await state.peers.get(id).pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio') {
      energy = r.totalAudioEnergy || 0; seconds = r.totalSamplesDuration || 0;
    }
  });
  const w = window.__window || (window.__window = { start: seconds + skip, energy: null });
  if (seconds < w.start) return false;
  if (w.energy === null) w.energy = energy;
  if (seconds < w.start + span) return false;
  window.__window = null;
  return { energy: energy - w.energy };
}"""


async def audio_energy(page: Participant, peer: str) -> float:
    """Audio energy played out from ``peer`` over 2 s of its audio clock (after 0.5 s)."""
    result = await page.wait_async(JS_ENERGY_WINDOW, [peer, 0.5, 2.0])
    return float(result["energy"])


async def everyone_connected(people: list[Participant]) -> None:
    """Every page has a connected call with every other page and decodes its video."""
    for me in people:
        others = [p.name for p in people if p is not me]
        await me.wait_connected(*others)
    for me in people:
        for other in people:
            if other is not me:
                await me.wait_frames(other.name)


async def test_two_people_see_and_hear_each_other(browser: Browser,
                                                  app_server: Running) -> None:
    alice = await browser.open("alice")
    bob = await browser.open("bob", "?room=standup")
    assert await bob.eval("() => document.querySelector('#room-input').value") == "standup"
    # seed 000's hook, from a classic script the way a page or the console does it
    await alice.page.add_script_tag(content=HOOK)
    await alice.join("standup")
    # alone: nobody to hang up on, so no "Hang up all"
    await alice.page.click("#btn-people")
    assert await alice.eval("() => document.querySelector('#hangup-all').hidden") is True
    await alice.page.click("#btn-people")
    await bob.join("standup")
    await alice.wait(JS_TOAST, "bob joined")
    await everyone_connected([alice, bob])
    assert await alice.eval("() => document.querySelector('#hangup-all').hidden") is False
    await alice.wait_audio("bob")
    await bob.wait_audio("alice")
    await alice.wait("() => state.roomState === 'calling'")
    # the DOM shows both tiles with names, and the link badge fills from getStats()
    await alice.wait("() => document.querySelectorAll('#grid .tile').length === 2")
    assert await alice.eval(JS_TILE, ["bob", "name"]) == "bob"
    assert await alice.eval(JS_TILE, ["alice", "name"]) == "alice (you)"
    badge = await alice.wait("""() => {
      const b = document.querySelector('#grid .tile[data-peer="bob"] .badge');
      return b && /loss/.test(b.textContent) && b.textContent;
    }""")
    assert "kb/s" in badge or "Mb/s" in badge
    # the server saw both join the same room under those names
    assert app_server.rooms.counts()[0] == 1
    assert await alice.eval("() => seen") == ["connecting", "joined", "calling"]

    # bob leaves: his tile goes away on alice's side and his camera is released
    await bob.page.click("#btn-leave")
    await bob.wait("() => state.roomState === 'idle' && state.localStream === null")
    await alice.wait("() => !state.peers.has('bob') && state.members.length === 1")
    await alice.wait("() => document.querySelectorAll('#grid .tile').length === 1")
    await alice.wait("() => !document.querySelector('#waiting').hidden")
    await alice.wait(JS_TOAST, "bob left")
    assert await alice.eval("() => document.querySelector('#hangup-all').hidden") is True
    assert await alice.eval("() => seen.at(-1)") == "joined"
    await alice.screenshot("alone")


async def test_three_people_mesh(browser: Browser) -> None:
    people = await browser.open_all("ann", "ben", "cat")
    for person in people:
        await person.join("trio")
    await everyone_connected(people)
    await people[0].wait("() => document.querySelectorAll('#grid .tile').length === 3")
    members = await people[2].eval("() => [...state.members]")
    assert members == ["ann", "ben", "cat"]
    await people[0].screenshot("call-three")
    await people[0].page.click("#btn-people")
    await people[0].wait("() => document.querySelectorAll('#member-list li').length === 3")
    assert await people[0].eval(
        "() => [...document.querySelectorAll('#member-list button')].map((b) => b.textContent)"
    ) == ["Hang up", "Hang up"]
    await people[0].screenshot("people")
    # hang up on one from the panel: the call ends on both sides, the other stays
    await people[0].page.click('#member-list button[data-peer="ben"]')
    await people[1].wait("() => !state.peers.has('ann') && state.peers.has('cat')")
    await people[0].wait("() => !state.peers.has('ben')")
    await people[0].page.click('#member-list button[data-peer="ben"]')  # now "Call"
    await people[0].wait_connected("ben", "cat")
    await people[1].wait_frames("ann", 0)


async def test_glare_both_call_at_once_still_connects(browser: Browser) -> None:
    alice, bob = await browser.open_all("alice", "bob", query="?autocall=0")
    await alice.join("glare")
    await bob.join("glare")
    await alice.wait("() => state.members.length === 2")
    # both make an offer before either hears the other's: a real offer collision
    for p in (alice, bob):
        await p.eval("() => rtchub.holdSignals(true)")
    await asyncio.gather(alice.eval("() => { callPeer('bob'); }"),
                         bob.eval("() => { callPeer('alice'); }"))
    for p, other in ((alice, "bob"), (bob, "alice")):
        await p.wait("(id) => state.peers.get(id).pc.signalingState === 'have-local-offer'",
                     other)
    for p in (alice, bob):
        await p.eval("() => rtchub.holdSignals(false)")
    await everyone_connected([alice, bob])
    collisions = [await alice.eval("() => state.peers.get('bob').collisions"),
                  await bob.eval("() => state.peers.get('alice').collisions")]
    assert collisions == [1, 1]
    roles = sorted([await alice.eval("() => state.peers.get('bob').polite"),
                    await bob.eval("() => state.peers.get('alice').polite")])
    assert roles == [False, True]


async def test_chat_reaches_every_peer(browser: Browser) -> None:
    people = await browser.open_all("ann", "ben", "cat")
    for person in people:
        await person.join("chatroom")
    await everyone_connected(people)
    ann, ben, cat = people
    for p in people:
        await p.wait("() => [...state.peers.values()].every((x) => x.dc.readyState === 'open')")
    # through the chat panel, as a person types it
    await ann.page.click("#btn-chat")
    await ann.page.fill("#chat-input", "hello from ann <b>not bold</b>")
    await ann.page.press("#chat-input", "Enter")
    for p in (ben, cat):
        await p.wait("""() => [...document.querySelectorAll('#chat-log li')].some((li) =>
          li.querySelector('.from').textContent === 'ann'
          && li.querySelector('p').textContent === 'hello from ann <b>not bold</b>')""")
        assert await p.eval("() => document.querySelectorAll('#chat-log b').length") == 0
    # through the global API
    assert await ben.eval("() => sendChat('ben here')") == 2
    for p in (ann, cat):
        await p.wait("""() => [...document.querySelectorAll('#chat-log li p')]
          .some((el) => el.textContent === 'ben here')""")
    await ann.wait("() => document.querySelectorAll('#chat-log li').length === 2")
    await ben.page.click("#btn-chat")
    await ben.screenshot("chat")


async def test_mute_and_camera_off_show_on_the_other_side(browser: Browser) -> None:
    alice, bob = await browser.open_all("alice", "bob")
    await alice.join("indicators")
    await bob.join("indicators")
    await everyone_connected([alice, bob])
    await bob.wait("() => state.peers.get('alice').dc.readyState === 'open'")
    assert await bob.eval(JS_TILE, ["alice", "muted"]) == "false"

    await alice.page.click("#btn-mute")
    await alice.page.click("#btn-camera")
    assert await alice.eval("() => [state.muted, state.cameraOff]") == [True, True]
    await bob.wait("(id) => state.peers.get(id).remote.muted"
                   " && state.peers.get(id).remote.cameraOff", "alice")
    await bob.wait("""() => {
      const t = document.querySelector('#grid .tile[data-peer="alice"]');
      return t.dataset.muted === 'true' && t.dataset.camoff === 'true'
        && getComputedStyle(t.querySelector('.mic-off')).display !== 'none'
        && getComputedStyle(t.querySelector('.avatar')).display !== 'none';
    }""")
    # the microphone really sends silence: the audio energy bob plays out from alice
    # over two seconds of received audio is far below an unmuted window's
    muted_energy = await audio_energy(bob, "alice")
    await bob.screenshot("muted-camera-off")

    await alice.eval("() => { toggleMute(); toggleCamera(); }")
    await bob.wait("""() => {
      const t = document.querySelector('#grid .tile[data-peer="alice"]');
      return t.dataset.muted === 'false' && t.dataset.camoff === 'false';
    }""")
    unmuted_energy = await audio_energy(bob, "alice")
    assert unmuted_energy > 0
    assert muted_energy < unmuted_energy / 10, (muted_energy, unmuted_energy)
