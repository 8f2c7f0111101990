"""Helpers for the browser tests of SFU rooms (tests/e2e/test_sfu_*.py).

In an SFU room every other participant is an entry of ``state.peers`` whose ``pc`` is
the page's one connection with the server; what they send is in ``peer.stream``
(camera, microphone) and ``peer.screen``. These helpers read ``getStats()`` of that
connection per participant, through the ids of the receiver tracks that are theirs,
and the frames their tile's ``<video>`` shows.
"""

from __future__ import annotations

from tests.e2e.browser import Participant

__all__ = [
    "COUNT_CONNECTIONS", "JS_TILE", "decodes_everyone", "hears", "join_sfu", "open_counting",
    "sees_video", "video_frames",
]

# before the app loads: count the RTCPeerConnections the page creates
COUNT_CONNECTIONS = """(() => {
  const Native = window.RTCPeerConnection;
  window.__connections = 0;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); window.__connections += 1; }
  };
})();"""

# {frames, energy} received from participant `id` ('main': camera and microphone, or
# 'screen'), read from the inbound-rtp of the tracks in their stream; null before any
JS_RECEIVED = """async ([id, which]) => {
  const p = state.peers.get(id);
  const stream = p && (which === 'screen' ? p.screen : p.stream);
  if (!stream || p.pc.connectionState !== 'connected') return null;
  const ids = new Set(stream.getTracks().map((t) => t.id));
  const out = { frames: 0, energy: 0, video: false, audio: false };
  (await p.pc.getStats()).forEach((r) => {
    if (r.type !== 'inbound-rtp' || !ids.has(r.trackIdentifier)) return;
    if (r.kind === 'video') { out.frames += r.framesDecoded || 0; out.video = true; }
    if (r.kind === 'audio') { out.energy += r.totalAudioEnergy || 0; out.audio = true; }
  });
  return out;
}"""

JS_FRAMES_ABOVE = """async ([id, which, floor]) => {
  const got = await (""" + JS_RECEIVED + """)([id, which]);
  return got !== null && got.video && got.frames > floor;
}"""

JS_HEARS = """async (id) => {
  const got = await (""" + JS_RECEIVED + """)([id, 'main']);
  return got !== null && got.audio && got.energy > 0;
}"""

# frames the tile's <video> has shown (Chromium's playback quality counter)
JS_TILE_FRAMES = """([id, kind]) => {
  const v = document.querySelector(`#grid .tile[data-peer="${id}"][data-kind="${kind}"] video`);
  return v && v.videoWidth > 0 ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
}"""

JS_TILE = """([id, attr]) => {
  const tile = document.querySelector(`#grid .tile[data-self="false"][data-peer="${id}"]`);
  return tile ? tile.dataset[attr] : null;
}"""


async def open_counting(person: Participant) -> None:
    """Reload ``person``'s page with the RTCPeerConnection counter installed first."""
    await person.page.add_init_script(COUNT_CONNECTIONS)
    await person.page.reload()
    await person.page.wait_for_function(
        "() => document.documentElement.dataset.ready === 'true'", polling=250)


async def join_sfu(person: Participant, room: str) -> None:
    """Join through the lobby and wait until the page is in SFU mode."""
    await person.join(room)
    await person.wait("() => state.topology === 'sfu' && state.sfu && state.sfu.pc")


async def video_frames(person: Participant, peer: str, which: str = "main") -> int:
    """Video frames ``person`` decoded from ``peer`` so far (0 when none)."""
    got = await person.eval(JS_RECEIVED, [peer, which])
    return int(got["frames"]) if got else 0


async def sees_video(person: Participant, peer: str, which: str = "main") -> None:
    """``person`` decodes ``peer``'s video now (10 frames more than when asked) and
    the tile shows it (its <video> has a size and its frame counter moves)."""
    start = await video_frames(person, peer, which)
    await person.wait_async(JS_FRAMES_ABOVE, [peer, which, start + 10])
    kind = "screen" if which == "screen" else "main"
    shown = int(await person.eval(JS_TILE_FRAMES, [peer, kind]))
    await person.wait(f"(a) => ({JS_TILE_FRAMES})(a) > {shown}", [peer, kind])


async def hears(person: Participant, peer: str) -> None:
    """``person`` plays out audio from ``peer`` (its energy is above zero)."""
    await person.wait_async(JS_HEARS, peer)


async def decodes_everyone(people: list[Participant]) -> None:
    """Every page decodes every other page's video and hears its audio."""
    for me in people:
        for other in people:
            if other is not me:
                await sees_video(me, other.name)
                await hears(me, other.name)
