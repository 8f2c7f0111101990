"""Before and around a call: the pre-join preview, device pickers, leaving and rejoining."""

from __future__ import annotations

import re

import pytest

from tests.e2e.browser import Browser, Participant

pytestmark = pytest.mark.asyncio(loop_scope="session")

JS_LIVE_PREVIEW = """() => {
  const v = document.querySelector('#preview-video');
  return document.querySelector('#preview').dataset.state === 'live' && v.videoWidth > 0;
}"""
JS_LEVEL = "() => Number(document.querySelector('#mic-meter').dataset.level) > 0.05"
JS_OPTIONS = """(sel) => [...document.querySelectorAll(sel + ' option')]
  .map((o) => o.textContent)"""
JS_SENT_LABEL = """([id, kind]) => {
  const s = state.peers.get(id).pc.getSenders().find((x) => x.track && x.track.kind === kind);
  return s ? s.track.label : null;
}"""
JS_BACKGROUND = "(sel) => getComputedStyle(document.querySelector(sel)).backgroundColor"


async def pick(page: Participant, select: str, label: str) -> None:
    """Choose the option labelled ``label`` in the ``select``, as a person does."""
    value = await page.eval("""([sel, label]) => [...document.querySelectorAll(sel + ' option')]
      .find((o) => o.textContent === label).value""", [select, label])
    await page.page.select_option(select, value)


async def test_prejoin_preview_level_and_pickers(browser: Browser) -> None:
    alice = await browser.open("alice")
    # nothing claims a connection before the person did anything
    assert await alice.eval("() => document.querySelector('#status').hidden") is True
    assert "Not connected" not in await alice.eval("() => document.body.innerText")
    await alice.wait(JS_LIVE_PREVIEW)
    await alice.wait(JS_LEVEL)  # Chromium's fake microphone beeps
    cameras = await alice.wait(f"() => ({JS_OPTIONS})('#camera-select').length === 3"
                               f" && ({JS_OPTIONS})('#camera-select')")
    assert cameras == ["fake_device_0", "fake_device_1", "fake_device_2"]
    assert len(await alice.eval(JS_OPTIONS, "#mic-select")) >= 2
    # the room field is empty, its hint reads as a hint, and Join waits for a name
    assert await alice.eval("() => document.querySelector('#room-input').value") == ""
    placeholder = await alice.eval("() => document.querySelector('#room-input').placeholder")
    assert placeholder.lower().startswith("type")
    assert await alice.eval("() => document.querySelector('#join-btn').disabled") is True
    disabled_bg = await alice.eval(JS_BACKGROUND, "#join-btn")
    await alice.screenshot("lobby")
    await alice.page.click("#room-random")
    room = await alice.eval("() => document.querySelector('#room-input').value")
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{3}", room)
    assert await alice.eval("() => document.querySelector('#join-btn').disabled") is False
    # enabled, Join turns the accent blue; disabled it was a flat grey
    accent = "rgb(79, 140, 255)"
    assert disabled_bg != accent
    await alice.wait(f"() => ({JS_BACKGROUND})('#join-btn') === '{accent}'")

    # another camera in the preview; camera and microphone off before joining
    await pick(alice, "#camera-select", "fake_device_2")
    await alice.wait("() => document.querySelector('#preview-video').srcObject"
                     ".getVideoTracks()[0].label === 'fake_device_2'")
    await alice.page.click("#pre-mic")
    await alice.page.click("#pre-cam")
    await alice.wait("() => document.querySelector('#preview').dataset.camoff === 'true'")
    await alice.screenshot("lobby-off")
    await alice.page.fill("#name-input", "alice")
    await alice.page.click("#join-btn")
    await alice.wait("() => state.roomState === 'joined'")
    # the call starts as set up in the lobby, from the preview's camera
    assert await alice.eval("() => [state.muted, state.cameraOff]") == [True, True]
    assert await alice.eval("() => state.localStream.getVideoTracks()[0].label") == "fake_device_2"
    await alice.wait("() => document.querySelector('#grid .tile[data-self=\"true\"]')"
                     ".dataset.camoff === 'true'")
    assert await alice.eval("() => document.querySelector('#btn-mute').dataset.active") == "true"

    for size, name in (((390, 844), "lobby-phone"), ((844, 390), "lobby-phone-sideways")):
        page = await browser.open(f"phone-{name}", viewport=size)
        await page.wait(JS_LIVE_PREVIEW)
        box = await page.eval("() => { const r = document.querySelector('#preview')"
                              ".getBoundingClientRect(); return [r.x, r.width]; }")
        assert box[0] >= 0 and box[0] + box[1] <= size[0]
        await page.screenshot(name)


async def test_devices_change_during_a_call_and_leaving_lets_go_of_them(browser: Browser) -> None:
    alice = await browser.open("alice")
    bob = await browser.open("bob")
    await alice.join("devices")
    await bob.join("devices")
    await alice.wait_connected("bob")
    await bob.wait_frames("alice", 3)
    offers = await alice.eval("() => state.peers.get('bob').negotiations")

    await alice.page.click("#btn-devices")
    await alice.wait("() => document.querySelector('#settings #devices') !== null")
    await alice.wait("() => !document.querySelector('#camera-select').disabled")
    await pick(alice, "#camera-select", "fake_device_2")
    await alice.wait(f"() => ({JS_SENT_LABEL})(['bob', 'video']) === 'fake_device_2'")
    mics = await alice.eval(JS_OPTIONS, "#mic-select")
    sent_mic = await alice.eval(JS_SENT_LABEL, ["bob", "audio"])
    other_mic = next(m for m in mics if m != sent_mic)
    await pick(alice, "#mic-select", other_mic)
    await alice.wait(f"(mic) => ({JS_SENT_LABEL})(['bob', 'audio']) === mic", other_mic)
    await alice.wait(JS_LEVEL)
    await alice.screenshot("devices-in-call")
    # bob keeps seeing and hearing alice, over the same connection: no new offer
    await bob.wait_decoding("alice")
    await bob.wait_audio("alice")
    assert await alice.eval("() => state.peers.get('bob').negotiations") == offers

    await alice.page.click("#btn-leave")
    await alice.wait("() => state.roomState === 'idle'")
    # back in the lobby with the camera off (its light goes out) and a way back in
    assert await alice.eval("() => state.localStream") is None
    assert await alice.eval("() => document.querySelector('#preview-video').srcObject") is None
    assert await alice.eval("() => document.querySelector('#preview').dataset.state") == "off"
    note = await alice.eval("() => document.querySelector('#left-note').innerText")
    assert "You left “devices”" in note
    await alice.screenshot("left")
    await alice.page.click("#rejoin")
    await alice.wait_connected("bob")
    await bob.wait_connected("alice")
