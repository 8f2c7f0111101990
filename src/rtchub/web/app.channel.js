// The data channel of every call (negotiated, id 0): chat lines, and the sender's own
// mute / camera-off / screen status so the other side can show indicators.

import { state, emit } from './app.state.js';
import { inSfu, sendMediaState, sfuChat } from './app.sfu.js';

/** Handle one message from `peer`'s data channel. */
export function onData(peer, data) {
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

/** Tell one peer our mute / camera / screen status (when its channel is open). */
export function sendStatusTo(peer) {
  if (peer.dc && peer.dc.readyState === 'open') peer.dc.send(statusMessage());
}

/** Tell every connected peer our mute / camera / screen status. */
export function broadcastStatus() {
  if (inSfu()) {
    sendMediaState(); // the server tells everyone
    return;
  }
  for (const peer of state.peers.values()) sendStatusTo(peer);
}

/** Send a chat line to every peer with an open data channel; returns how many got it. */
export function sendChat(text) {
  const line = String(text ?? '').trim();
  if (!line) return 0;
  if (inSfu()) return sfuChat(line);
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
