// SFU mode's participants: every other participant is an entry of `state.peers` (seed
// 000's Peer shape, so the tiles, stats, people panel and recorder work as in a mesh call)
// whose `pc` is the one connection with the server. `participants` frames say who is
// there and their microphone / camera / screen state; `tracks` frames say whose each
// track is; the remote description's msid says which of our receivers carries which
// track. Their camera and microphone go in `peer.stream`, a screen in `peer.screen`.

import { state, emit, refreshCallState } from './app.state.js';
import { remoteSenders } from './app.sfu.sdp.js';

function entryFor(sfu, id) {
  let peer = state.peers.get(id);
  if (!peer) {
    peer = {
      id, pc: sfu.pc, polite: true, makingOffer: false, ignoreOffer: false, pendingCandidates: [],
      stream: new MediaStream(), screen: null, remote: { muted: false, cameraOff: false, sharing: false },
      stats: null, negotiations: 0, collisions: 0, remoteSession: null, attempt: 0, retries: 0,
      watchdog: null, sfu: true, displayName: id, trackIds: new Set(),
    };
    state.peers.set(id, peer);
  }
  return peer;
}

/** Show `participants` (P frames): one entry per other participant, with their state. */
export function setParticipants(sfu, list) {
  sfu.participants = new Map((list || []).filter((p) => p && p.id).map((p) => [p.id, p]));
  for (const p of sfu.participants.values()) {
    if (p.id !== state.myId) entryFor(sfu, p.id).displayName = p.display_name || p.id;
  }
  for (const id of [...state.peers.keys()]) {
    if (!sfu.participants.has(id)) {
      const peer = state.peers.get(id);
      state.peers.delete(id);
      emit('peerGone', peer);
    }
  }
  updateRemoteState(sfu);
  assignTracks(sfu);
  refreshCallState();
}

/** Take a `quality` frame (Q): each participant's link as the server measures it. */
export function setQuality(list) {
  for (const q of list || []) {
    if (!q || typeof q.id !== 'string') continue;
    if (q.id === state.myId) state.myQuality = q;
    else if (state.peers.has(q.id)) state.peers.get(q.id).serverQuality = q;
  }
  emit('stats');
}

/** Take a `tracks` frame's list (T): who publishes what, muted or not. */
export function setTracks(sfu, list) {
  sfu.tracks = new Map((list || []).filter((t) => t && t.track_id).map((t) => [t.track_id, t]));
  updateRemoteState(sfu);
  assignTracks(sfu);
}

/** Mute, camera and screen state of everyone, from their P and their tracks' `muted`. */
function updateRemoteState(sfu) {
  for (const peer of state.peers.values()) {
    const p = sfu.participants.get(peer.id) || {};
    const theirs = [...sfu.tracks.values()].filter((t) => t.publisher === peer.id);
    const mic = theirs.find((t) => t.source === 'microphone');
    const cam = theirs.find((t) => t.source === 'camera');
    peer.remote = {
      muted: p.audio === false || !!(mic && mic.muted) || !mic,
      cameraOff: p.video === false || !!(cam && cam.muted) || !cam,
      sharing: !!p.screen || theirs.some((t) => t.source === 'screen'),
    };
  }
  emit('peers');
}

/** Put every track the server sends us into its publisher's stream (or screen). */
export function assignTracks(sfu) {
  const pc = sfu.pc;
  if (!pc || !pc.remoteDescription) return;
  const senders = remoteSenders(pc.remoteDescription.sdp);
  const wanted = new Map(); // participant -> {main: [tracks], screen: [tracks]}
  for (const tr of pc.getTransceivers()) {
    const sent = tr.mid !== null && senders.get(tr.mid);
    if (!sent || tr.currentDirection === 'stopped') continue;
    const track = tr.receiver.track;
    const info = sfu.tracks.get(sent.trackId)
      || [...sfu.tracks.values()].find((t) => t.stream_id === sent.streamId && t.kind === track.kind
        && t.source !== 'screen');
    if (!info || info.publisher === state.myId || !state.peers.has(info.publisher)) continue;
    const slot = wanted.get(info.publisher) || { main: [], screen: [] };
    slot[info.source === 'screen' ? 'screen' : 'main'].push(track);
    wanted.set(info.publisher, slot);
  }
  for (const peer of state.peers.values()) {
    const slot = wanted.get(peer.id) || { main: [], screen: [] };
    const main = streamOf(peer.stream, slot.main);
    const screen = slot.screen.length ? streamOf(peer.screen, slot.screen) : null;
    const changed = main !== peer.stream || screen !== peer.screen;
    peer.stream = main;
    peer.screen = screen;
    peer.trackIds = new Set([...slot.main, ...slot.screen].map((t) => t.id));
    if (changed) emit('peerMedia', peer);
  }
}

/**
 * `stream` when it holds exactly `tracks` (the first of each kind), else a new stream of
 * them: a <video> whose stream lost every track has ended and does not play tracks
 * added later, while a new srcObject starts it again.
 */
function streamOf(stream, tracks) {
  const keep = new Map();
  for (const t of tracks) if (!keep.has(t.kind)) keep.set(t.kind, t);
  const now = stream ? stream.getTracks() : [];
  if (stream && now.length === keep.size && now.every((t) => keep.get(t.kind) === t)) return stream;
  return new MediaStream([...keep.values()]);
}
