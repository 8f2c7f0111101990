// Mesh peer connections with perfect negotiation, a watchdog on every call.
//
// Roles: for each pair, the member whose ID sorts first is polite (it gives way on
// glare); the other is impolite (it ignores the colliding offer). Candidates that
// arrive before a remote description are queued in `pendingCandidates`. Every call
// also has a negotiated data channel (id 0, see app.channel.js).
//
// A Peer keeps its identity (tile, stream, counters) for the whole call; its
// RTCPeerConnection may be renewed: when the other side starts over (reload, fresh
// offer), when the watchdog retries with a fresh offer, and when the polite side meets
// glare before the call was ever set up (see `onDescription`).

import { state, emit, refreshCallState } from './app.state.js';
import { send, onSignal } from './app.signal.js';
import { onData, sendStatusTo } from './app.channel.js';
import { installWatchdog, watch, unwatch } from './app.watchdog.js';
import { inSfu, sfuReplace, stopSfu } from './app.sfu.js';

/** The session id in an SDP's o= line; a new one means the remote made a new RTCPeerConnection. */
function sessionOf(sdp) {
  const m = /^o=\S+ (\d+) /m.exec(sdp || '');
  return m ? m[1] : null;
}

/** An SDP's whole o= line: session id and version, the same for an offer said twice. */
function originOf(sdp) {
  const m = /^o=.*$/m.exec(sdp || '');
  return m ? m[0].trim() : null;
}

// An operation on a connection that is closed meanwhile never settles (the spec
// abandons it), and the signals of that member queue behind it: every wait on a
// connection also ends when the connection is retired.
const retired = new WeakMap(); // RTCPeerConnection -> {gone: Promise, end()}

class Superseded extends Error {}

function lifeOf(pc) {
  let life = retired.get(pc);
  if (!life) {
    let end;
    const gone = new Promise((resolve) => { end = resolve; });
    life = { gone, end };
    retired.set(pc, life);
  }
  return life;
}

/** Close `pc` and release whatever waits on it. */
function retire(pc) {
  pc.close();
  lifeOf(pc).end();
}

/** `promise`, unless `pc` is retired first (then a Superseded error). */
function until(pc, promise) {
  return Promise.race([promise, lifeOf(pc).gone.then(() => { throw new Superseded(); })]);
}

/** The video track we currently send (the screen while sharing). */
export function outgoingVideo() {
  if (state.usingScreen && state.screenStream) return state.screenStream.getVideoTracks()[0] || null;
  return state.localStream ? state.localStream.getVideoTracks()[0] || null : null;
}

/** Give `peer` a new RTCPeerConnection (closing the one it had), with our tracks and channel. */
function openConnection(peer) {
  const old = peer.pc;
  const pc = new RTCPeerConnection(state.rtcConfig);
  peer.pc = pc;
  peer.makingOffer = false;
  peer.ignoreOffer = false;
  peer.pendingCandidates = [];
  peer.remoteSession = null;
  if (old) {
    try { peer.dc && peer.dc.close(); } catch { /* closed */ }
    retire(old);
  }
  const current = () => peer.pc === pc && state.peers.get(peer.id) === peer;

  const local = state.localStream;
  const audio = local ? local.getAudioTracks()[0] : null;
  const video = outgoingVideo();
  if (audio) pc.addTrack(audio, local); else pc.addTransceiver('audio', { direction: 'recvonly' });
  if (video) pc.addTrack(video, local || new MediaStream([video]));
  else pc.addTransceiver('video', { direction: 'recvonly' });

  const dc = pc.createDataChannel('rtchub', { negotiated: true, id: 0 });
  peer.dc = dc;
  dc.onopen = () => { if (current()) { sendStatusTo(peer); emit('peers'); } };
  dc.onmessage = (ev) => { if (current()) onData(peer, ev.data); };

  pc.onnegotiationneeded = async () => {
    if (!current()) return;
    try {
      peer.makingOffer = true;
      await until(pc, pc.setLocalDescription());
      // renewed or rolled back meanwhile: this offer is not the call's any more
      if (!current() || pc.signalingState !== 'have-local-offer') return;
      send({ type: 'offer', to: peer.id, sdp: pc.localDescription.toJSON() });
    } catch (err) {
      if (current()) console.warn('offer to', peer.id, 'failed', err);
    } finally {
      if (peer.pc === pc) peer.makingOffer = false;
    }
  };
  pc.onicecandidate = ({ candidate }) => {
    if (current()) send({ type: 'candidate', to: peer.id, candidate: candidate ? candidate.toJSON() : null });
  };
  pc.ontrack = ({ track }) => {
    if (!current()) return;
    for (const t of peer.stream.getTracks()) {
      if (t.kind === track.kind && t !== track) peer.stream.removeTrack(t);
    }
    peer.stream.addTrack(track);
    emit('peerMedia', peer);
  };
  pc.onconnectionstatechange = () => {
    if (!current()) return;
    const s = pc.connectionState;
    if (s === 'connected') {
      peer.attempt = 0;
      unwatch(peer);
    } else if (s === 'failed' || s === 'disconnected') {
      if (s === 'failed') pc.restartIce();
      if (!state.members.includes(peer.id)) {
        closePeer(peer.id); // gone from the room and the media path is down: nothing to keep
        return;
      }
      if (!peer.watchdog) watch(peer);
    }
    refreshCallState();
    emit('peers');
  };
  watch(peer);
  return pc;
}

function createPeer(id) {
  const peer = {
    id,
    pc: null,
    polite: state.myId < id,
    makingOffer: false,
    ignoreOffer: false,
    pendingCandidates: [],
    dc: null,
    // rtchub extras
    stream: new MediaStream(),
    remote: { muted: false, cameraOff: false, sharing: false },
    remoteSession: null,
    negotiations: 0,
    collisions: 0,
    attempt: 0,
    retries: 0,
    watchdog: null,
    stats: null,
  };
  state.peers.set(id, peer);
  openConnection(peer);
  emit('peers');
  return peer;
}

/** Close and forget one peer (no message sent). */
export function closePeer(id) {
  const peer = state.peers.get(id);
  if (!peer) return;
  state.peers.delete(id);
  unwatch(peer);
  try { peer.dc && peer.dc.close(); } catch { /* closed */ }
  retire(peer.pc);
  refreshCallState();
  emit('peerGone', peer);
  emit('peers');
}

/** Start a call with a member (no-op when one is already up or being set up). */
export function callPeer(id) {
  if (!id || id === state.myId) return null;
  if (inSfu()) return state.peers.get(id) || null; // the server connects everyone
  const existing = state.peers.get(id);
  if (existing && existing.pc.connectionState !== 'failed' && existing.pc.connectionState !== 'closed') {
    return existing;
  }
  if (existing) {
    openConnection(existing);
    emit('peers');
    return existing;
  }
  return createPeer(id);
}

/** End the call with one member and tell them. */
export function hangupPeer(id) {
  if (inSfu()) return; // no call of our own with anyone: leave to stop receiving them
  send({ type: 'hangup', to: id });
  closePeer(id);
}

/** End every call (stay in the room). */
export function hangupAll() {
  if (inSfu()) {
    stopSfu(); // the one connection with the server carries every call
    return;
  }
  for (const id of [...state.peers.keys()]) hangupPeer(id);
}

async function onDescription(from, sdp) {
  if (state.roomState === 'idle') return; // queued before we left
  let peer = state.peers.get(from);
  const session = sessionOf(sdp.sdp);
  if (peer && sdp.type === 'offer' && peer.remoteSession && session !== peer.remoteSession) {
    // the other side started over (reload, a fresh offer after a failure): so do we.
    // Only a call that had a remote side can start over; two fresh calls crossing are
    // ordinary glare, which the polite/impolite roles settle.
    openConnection(peer);
  }
  if (!peer) {
    if (sdp.type !== 'offer') return;
    peer = createPeer(from);
  }
  let pc = peer.pc;
  if (sdp.type === 'offer' && pc.signalingState === 'stable' && !peer.makingOffer
      && pc.remoteDescription && pc.remoteDescription.type === 'offer'
      && originOf(pc.remoteDescription.sdp) === originOf(sdp.sdp)) {
    // the same offer again (it was said twice, the answer may be lost): answer again
    send({ type: 'answer', to: from, sdp: pc.localDescription.toJSON() });
    return;
  }
  const collision = sdp.type === 'offer' && (peer.makingOffer || pc.signalingState !== 'stable');
  if (collision) peer.collisions += 1;
  peer.ignoreOffer = !peer.polite && collision;
  if (peer.ignoreOffer) {
    // The polite side will answer ours, if it has it: an offer sent while its page was
    // reloading is lost, so say ours again (a duplicate is answered again, no more).
    if (pc.signalingState === 'have-local-offer' && !peer.makingOffer) {
      send({ type: 'offer', to: from, sdp: pc.localDescription.toJSON() });
    }
    return;
  }
  if (sdp.type === 'answer' && pc.signalingState !== 'have-local-offer') return; // stale answer
  if (collision && !pc.remoteDescription) {
    // The polite side gives way. Rolling back an offer whose ICE gathering is just
    // starting can leave Chromium's connection gathering for ever without a single
    // candidate (both sides then sit at connectionState "new"). A call that was never
    // set up has nothing to keep, so answer on a fresh connection instead.
    openConnection(peer);
    pc = peer.pc;
  }
  await until(pc, pc.setRemoteDescription(sdp));
  if (peer.pc !== pc) return;
  peer.remoteSession = session;
  peer.negotiations += 1;
  const queued = peer.pendingCandidates.splice(0);
  for (const c of queued) await addCandidate(peer, c);
  if (sdp.type === 'offer') {
    await until(pc, pc.setLocalDescription());
    if (peer.pc !== pc) return;
    send({ type: 'answer', to: from, sdp: pc.localDescription.toJSON() });
  }
}

async function addCandidate(peer, candidate) {
  const pc = peer.pc;
  try {
    await until(pc, pc.addIceCandidate(candidate === null ? undefined : candidate));
  } catch (err) {
    if (err instanceof Superseded) return;
    // candidates of an offer that was ignored or replaced belong to no session here
    if (!peer.ignoreOffer) console.warn('candidate from', peer.id, 'refused', err);
  }
}

function onCandidate(from, candidate) {
  const peer = state.peers.get(from);
  if (!peer) return;
  if (!peer.pc.remoteDescription) {
    peer.pendingCandidates.push(candidate);
    return;
  }
  return addCandidate(peer, candidate);
}

const chains = new Map();

function handleSignal(msg) {
  const from = msg.from;
  if (!from) return;
  if (msg.type === 'hangup') {
    closePeer(from);
    return;
  }
  // one chain per remote member keeps its frames in order across awaits
  const prev = chains.get(from) || Promise.resolve();
  const next = prev.then(async () => {
    if (msg.type === 'candidate') await onCandidate(from, msg.candidate ?? null);
    else if (msg.sdp) await onDescription(from, msg.sdp);
  }).catch((err) => {
    if (!(err instanceof Superseded)) console.warn('signal from', from, 'failed', err);
  });
  chains.set(from, next);
}

// -- retries (the watchdog decides when) ---------------------------------------------

/** First retry: an ICE restart; an offer still unanswered is said again first. */
function restartCall(peer) {
  const pc = peer.pc;
  if (pc.signalingState === 'have-local-offer' && pc.localDescription) {
    // the offer or its answer was lost; the restart follows once this one is answered
    send({ type: 'offer', to: peer.id, sdp: pc.localDescription.toJSON() });
  }
  pc.restartIce();
}

/** Later retries: a fresh offer from a new RTCPeerConnection (the other side starts over too). */
function freshCall(peer) {
  openConnection(peer);
}

/** A member (re)appeared: a call to them that never got an answer is placed again at once. */
function redial(id) {
  const peer = state.peers.get(id);
  if (!peer || peer.pc.connectionState === 'connected' || peer.pc.connectionState === 'connecting') return;
  if (peer.pc.remoteDescription) {
    freshCall(peer); // the call they had is gone with their old page
  } else if (peer.pc.signalingState === 'have-local-offer') {
    send({ type: 'offer', to: id, sdp: peer.pc.localDescription.toJSON() });
  }
}

/** After our join: call everyone (autoCall); after a resume: redo calls whose path is down. */
function onJoined(members, resumed) {
  for (const id of members) {
    if (id === state.myId) continue;
    const peer = state.peers.get(id);
    if (resumed) {
      if (peer && !['connected', 'connecting', 'new'].includes(peer.pc.connectionState)) {
        openConnection(peer);
      }
    } else if (state.autoCall && !peer) {
      createPeer(id);
    }
  }
  pruneGone(members);
  seen.members = [...members];
}

const seen = { members: [] };

/** Members changed: drop calls whose path is down and whose member left; redial returners. */
function onMembers(members) {
  const before = new Set(seen.members);
  seen.members = [...members];
  pruneGone(members);
  for (const id of members) if (id !== state.myId && !before.has(id)) redial(id);
}

/** Members left: drop calls whose media path is not up (a live one survives a server blip). */
function pruneGone(members) {
  for (const [id, peer] of [...state.peers]) {
    if (!members.includes(id) && peer.pc.connectionState !== 'connected') closePeer(id);
  }
}

/** Swap the outgoing track of `kind` on every call without renegotiating. */
export async function replaceOutgoing(kind, track) {
  if (inSfu()) {
    await sfuReplace(kind, track);
    return;
  }
  const jobs = [];
  for (const peer of state.peers.values()) {
    for (const t of peer.pc.getTransceivers()) {
      const sends = t.direction === 'sendrecv' || t.direction === 'sendonly';
      if (sends && t.receiver.track.kind === kind) jobs.push(t.sender.replaceTrack(track));
    }
  }
  await Promise.all(jobs);
}

/** Swap the outgoing video on every call without renegotiating. */
export function replaceVideo(track) {
  return replaceOutgoing('video', track);
}

/** Wire the signaling callbacks and the watchdog's retries. */
export function installPeers() {
  onSignal('signal', handleSignal);
  onSignal('joined', onJoined);
  onSignal('members', onMembers);
  installWatchdog(restartCall, freshCall);
}
