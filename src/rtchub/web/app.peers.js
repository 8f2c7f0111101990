// Mesh peer connections with perfect negotiation, and the data channel.
//
// Roles: for each pair, the member whose ID sorts first is polite (it rolls
// back its own offer on glare); the other is impolite (it ignores the
// colliding offer). Candidates that arrive before a remote description are
// queued in `pendingCandidates`. Every peer also has a negotiated data channel
// (id 0) carrying chat and the sender's mute / camera-off / screen status.

import { state, emit, refreshCallState } from './app.state.js';
import { send, onSignal } from './app.signal.js';

/** The session id in an SDP's o= line; a new one means the remote made a new RTCPeerConnection. */
function sessionOf(sdp) {
  const m = /^o=\S+ (\d+) /m.exec(sdp || '');
  return m ? m[1] : null;
}

/** The video track we currently send (the screen while sharing). */
export function outgoingVideo() {
  if (state.usingScreen && state.screenStream) return state.screenStream.getVideoTracks()[0] || null;
  return state.localStream ? state.localStream.getVideoTracks()[0] || null : null;
}

function createPeer(id) {
  const pc = new RTCPeerConnection(state.rtcConfig);
  const peer = {
    id, pc,
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
    stats: null,
  };
  state.peers.set(id, peer);

  const local = state.localStream;
  const audio = local ? local.getAudioTracks()[0] : null;
  const video = outgoingVideo();
  if (audio) pc.addTrack(audio, local); else pc.addTransceiver('audio', { direction: 'recvonly' });
  if (video) pc.addTrack(video, local || new MediaStream([video]));
  else pc.addTransceiver('video', { direction: 'recvonly' });

  const dc = pc.createDataChannel('rtchub', { negotiated: true, id: 0 });
  peer.dc = dc;
  dc.onopen = () => { sendStatusTo(peer); emit('peers'); };
  dc.onmessage = (ev) => onData(peer, ev.data);

  pc.onnegotiationneeded = async () => {
    try {
      peer.makingOffer = true;
      await pc.setLocalDescription();
      send({ type: 'offer', to: id, sdp: pc.localDescription.toJSON() });
    } catch (err) {
      console.warn('offer to', id, 'failed', err);
    } finally {
      peer.makingOffer = false;
    }
  };
  pc.onicecandidate = ({ candidate }) => {
    send({ type: 'candidate', to: id, candidate: candidate ? candidate.toJSON() : null });
  };
  pc.ontrack = ({ track }) => {
    for (const old of peer.stream.getTracks()) {
      if (old.kind === track.kind && old !== track) peer.stream.removeTrack(old);
    }
    peer.stream.addTrack(track);
    emit('peerMedia', peer);
  };
  pc.onconnectionstatechange = () => {
    const s = pc.connectionState;
    if (s === 'failed') pc.restartIce();
    if ((s === 'failed' || s === 'closed' || s === 'disconnected') && !state.members.includes(id)) {
      // gone from the room and the media path is down: nothing left to keep
      closePeer(id);
    }
    refreshCallState();
    emit('peers');
  };
  emit('peers');
  return peer;
}

/** Close and forget one peer (no message sent). */
export function closePeer(id) {
  const peer = state.peers.get(id);
  if (!peer) return;
  state.peers.delete(id);
  try { peer.dc && peer.dc.close(); } catch { /* closed */ }
  peer.pc.close();
  refreshCallState();
  emit('peerGone', peer);
  emit('peers');
}

/** Start a call with a member (no-op when one is already up). */
export function callPeer(id) {
  if (!id || id === state.myId) return null;
  const existing = state.peers.get(id);
  if (existing && existing.pc.connectionState !== 'failed' && existing.pc.connectionState !== 'closed') {
    return existing;
  }
  if (existing) closePeer(id);
  return createPeer(id);
}

/** End the call with one member and tell them. */
export function hangupPeer(id) {
  send({ type: 'hangup', to: id });
  closePeer(id);
}

/** End every call (stay in the room). */
export function hangupAll() {
  for (const id of [...state.peers.keys()]) hangupPeer(id);
}

async function onDescription(from, sdp) {
  let peer = state.peers.get(from);
  const session = sessionOf(sdp.sdp);
  // only a call that had a remote side can be "started over"; two fresh calls
  // crossing are ordinary glare and the polite/impolite roles settle it
  if (peer && sdp.type === 'offer' && peer.remoteSession && session !== peer.remoteSession) {
    closePeer(from); // the other side started over (reload, new call): so do we
    peer = null;
  }
  if (!peer) {
    if (sdp.type !== 'offer') return;
    peer = createPeer(from);
  }
  const pc = peer.pc;
  const collision = sdp.type === 'offer' && (peer.makingOffer || pc.signalingState !== 'stable');
  if (collision) peer.collisions += 1;
  peer.ignoreOffer = !peer.polite && collision;
  if (peer.ignoreOffer) return;
  await pc.setRemoteDescription(sdp);
  peer.remoteSession = session;
  peer.negotiations += 1;
  const queued = peer.pendingCandidates.splice(0);
  for (const c of queued) await addCandidate(peer, c);
  if (sdp.type === 'offer') {
    await pc.setLocalDescription();
    send({ type: 'answer', to: from, sdp: pc.localDescription.toJSON() });
  }
}

async function addCandidate(peer, candidate) {
  try {
    await peer.pc.addIceCandidate(candidate === null ? undefined : candidate);
  } catch (err) {
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
  }).catch((err) => console.warn('signal from', from, 'failed', err));
  chains.set(from, next);
}

/** After our join: call everyone (autoCall); after a resume: redo calls whose path is down. */
function onJoined(members, resumed) {
  for (const id of members) {
    if (id === state.myId) continue;
    const peer = state.peers.get(id);
    if (resumed) {
      if (peer && !['connected', 'connecting', 'new'].includes(peer.pc.connectionState)) {
        closePeer(id);
        createPeer(id);
      }
    } else if (state.autoCall && !peer) {
      createPeer(id);
    }
  }
  pruneGone(members);
}

/** Members left: drop calls whose media path is not up (a live one survives a server blip). */
function pruneGone(members) {
  for (const [id, peer] of [...state.peers]) {
    if (!members.includes(id) && peer.pc.connectionState !== 'connected') closePeer(id);
  }
}

// -- data channel: chat and status ------------------------------------------------------

function onData(peer, data) {
  let msg;
  try { msg = JSON.parse(data); } catch { return; }
  if (msg.type === 'chat' && typeof msg.text === 'string') {
    emit('chat', { from: peer.id, text: msg.text.slice(0, 4000), at: Date.now(), mine: false });
  } else if (msg.type === 'status') {
    peer.remote = { muted: !!msg.muted, cameraOff: !!msg.cameraOff, sharing: !!msg.sharing };
    emit('peers');
  }
}

function statusMessage() {
  return JSON.stringify({
    type: 'status', muted: state.muted, cameraOff: state.cameraOff, sharing: state.usingScreen,
  });
}

function sendStatusTo(peer) {
  if (peer.dc && peer.dc.readyState === 'open') peer.dc.send(statusMessage());
}

/** Tell every connected peer our mute / camera / screen status. */
export function broadcastStatus() {
  for (const peer of state.peers.values()) sendStatusTo(peer);
}

/** Send a chat line to every peer with an open data channel; returns how many got it. */
export function sendChat(text) {
  const line = String(text ?? '').trim();
  if (!line) return 0;
  const payload = JSON.stringify({ type: 'chat', text: line });
  let sent = 0;
  for (const peer of state.peers.values()) {
    if (peer.dc && peer.dc.readyState === 'open') {
      peer.dc.send(payload);
      sent += 1;
    }
  }
  emit('chat', { from: state.myId, text: line, at: Date.now(), mine: true, delivered: sent });
  return sent;
}

/** Swap the outgoing video on every call without renegotiating. */
export async function replaceVideo(track) {
  const jobs = [];
  for (const peer of state.peers.values()) {
    for (const t of peer.pc.getTransceivers()) {
      const sends = t.direction === 'sendrecv' || t.direction === 'sendonly';
      if (sends && t.receiver.track.kind === 'video') jobs.push(t.sender.replaceTrack(track));
    }
  }
  await Promise.all(jobs);
}

/** Wire the signaling callbacks. */
export function installPeers() {
  onSignal('signal', handleSignal);
  onSignal('joined', onJoined);
  onSignal('members', pruneGone);
}
