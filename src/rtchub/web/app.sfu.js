// SFU mode: one peer connection with the server for the whole call (seed 003's call
// rooms; the wire is docs/protocol.md "Call rooms").
//
// We publish microphone and camera (and a screen while sharing) on sendonly
// transceivers, telling the server each track's source with `publish` before the
// offer that carries it. The server offers us a sendonly section per track it
// forwards; app.sfu.people.js turns them into one `state.peers` entry per participant.
// Chat is a data channel labelled "chat" that the server relays; recording is the
// server's, for those whose join grants it.
//
// Negotiation is perfect negotiation with the client polite: a server offer that
// crosses ours rolls ours back (setRemoteDescription does it), we answer, and
// `negotiationneeded` offers again. The server answers every offer with
// `sfu_answer` or `sfu_ignored` in order, so each reply settles the oldest offer
// still outstanding; a reply to an offer that was rolled back is dropped.

import { state, emit, on, notify, refreshCallState } from './app.state.js';
import { send, onSignal, rejoin } from './app.signal.js';
import { assignTracks, setParticipants, setQuality, setTracks } from './app.sfu.people.js';
import { videoLimits } from './app.sfu.sdp.js';
import { CAMERA_LAYERS, askQualities } from './app.sfu.quality.js';

const CHAT_SEEN_MAX = 200;

/** The SFU session (also `state.sfu`, read-only for pages and tests). */
const sfu = {
  pc: null,
  chat: null, // the "chat" data channel we opened
  channels: [], // every open "chat" channel (the server may open one too)
  offers: [], // our offers not answered yet: {sdp, rolledBack}
  makingOffer: false,
  pendingCandidates: [],
  chain: Promise.resolve(),
  participants: new Map(), // id -> P (docs/protocol.md)
  tracks: new Map(), // track_id -> T
  senders: { audio: null, video: null, screen: null }, // our RTCRtpSenders by source
  grants: { publish: true, subscribe: true, record: false, admin: false },
  recording: { state: 'idle' },
  chatSeen: new Set(),
  qualities: new Map(), // track_id -> the quality we asked for (set_quality)
  rejoining: false,
  recordAsked: false, // a `record` request not answered yet (its refusal is an error frame)
  // counters, for the curious and for tests
  connections: 0, offersSent: 0, ignored: 0, serverOffers: 0, collisions: 0, rejoins: 0,
};

// errors the server answers an offer of ours with (instead of sfu_answer / sfu_ignored)
const OFFER_REFUSED = new Set(['invalid_sdp', 'codec_not_supported', 'sdp_too_large']);
// a request of ours found our server peer gone (it failed: `sfu_failed` said so, or is
// about to); join again
const PEER_GONE = new Set(['connection_failed', 'signaling_timeout']);

/** Is the app in SFU mode (the room's topology, from `joined`)? */
export function inSfu() {
  return state.topology === 'sfu';
}

function current(pc) {
  return sfu.pc === pc && inSfu();
}

// -- the connection -------------------------------------------------------------------

/** Open a fresh connection with the server: publish what we have, open chat, offer. */
function openConnection() {
  closeConnection();
  const pc = new RTCPeerConnection(state.rtcConfig);
  sfu.pc = pc;
  sfu.connections += 1;
  sfu.offers = [];
  sfu.makingOffer = false;
  sfu.pendingCandidates = [];
  sfu.senders = { audio: null, video: null, screen: null };
  for (const peer of state.peers.values()) peer.pc = pc;

  sfu.chat = pc.createDataChannel('chat');
  wireChat(sfu.chat);
  pc.ondatachannel = ({ channel }) => { if (current(pc) && channel.label === 'chat') wireChat(channel); };
  if (sfu.grants.publish !== false) publishLocal();

  pc.onnegotiationneeded = async () => {
    if (!current(pc)) return;
    try {
      sfu.makingOffer = true;
      await pc.setLocalDescription();
      // rolled back meanwhile (a server offer went first): negotiationneeded comes again
      if (!current(pc) || pc.signalingState !== 'have-local-offer') return;
      sfu.offers.push({ sdp: pc.localDescription.sdp, rolledBack: false });
      sfu.offersSent += 1;
      send({ type: 'sfu_offer', sdp: pc.localDescription.sdp });
    } catch (err) {
      if (current(pc)) console.warn('offer to the server failed', err);
    } finally {
      if (sfu.pc === pc) sfu.makingOffer = false;
    }
  };
  pc.onicecandidate = ({ candidate }) => {
    if (current(pc)) send({ type: 'sfu_candidate', candidate: candidate ? candidate.toJSON() : null });
  };
  pc.ontrack = () => { if (current(pc)) assignTracks(sfu); };
  pc.onconnectionstatechange = () => {
    if (!current(pc)) return;
    if (pc.connectionState === 'failed') startOver();
    refreshCallState();
    emit('peers');
  };
  emit('peers');
  return pc;
}

/**
 * Our server peer is gone (it failed, or ours did): leave and join again on the same
 * socket, which gives a fresh server peer and a fresh connection (sfuJoined). The
 * others see us stay: the rejoin is over within the server's grace for leaving.
 */
function startOver() {
  if (sfu.rejoining || !inSfu()) return;
  sfu.rejoining = true;
  sfu.rejoins += 1;
  closeConnection();
  notify('warn', 'The media connection to the server broke: joining again…', 'sfu_rejoin');
  if (!rejoin()) sfu.rejoining = false; // the socket is down: its reconnect joins again
}

function closeConnection() {
  const pc = sfu.pc;
  sfu.pc = null;
  for (const dc of sfu.channels) { try { dc.close(); } catch { /* closed */ } }
  sfu.channels = [];
  sfu.chat = null;
  if (pc) pc.close();
}

/** The tracks we send, by source (for useDevice and the screen share). */
function addSender(source, track, stream) {
  // the camera as three simulcast layers, the microphone and a screen as one stream
  const layers = source === 'video' ? { sendEncodings: CAMERA_LAYERS.map((e) => ({ ...e })) } : {};
  const t = sfu.pc.addTransceiver(track, { direction: 'sendonly', streams: [stream], ...layers });
  // the server labels the track by the id in our offer's msid: say what it is first
  const label = { audio: 'microphone', video: 'camera', screen: 'screen' }[source];
  send({ type: 'publish', track_id: track.id, source: label });
  sfu.senders[source] = t.sender;
  return t.sender;
}

function publishLocal() {
  const local = state.localStream;
  if (!local) return;
  const audio = local.getAudioTracks()[0];
  const video = local.getVideoTracks()[0];
  if (audio) addSender('audio', audio, local);
  if (video) addSender('video', video, local);
  if (state.usingScreen && state.screenStream) {
    const screen = state.screenStream.getVideoTracks()[0];
    if (screen) addSender('screen', screen, state.screenStream);
  }
}

// -- signaling (one chain keeps the server's frames in order across awaits) --------------

function queue(fn) {
  const pc = sfu.pc;
  sfu.chain = sfu.chain.then(() => (pc && current(pc) ? fn(pc) : null)).catch((err) => {
    if (current(pc)) console.warn('sfu signaling failed', err);
  });
  return sfu.chain;
}

async function onOffer(pc, sdp) {
  sfu.serverOffers += 1;
  if (sfu.makingOffer || pc.signalingState !== 'stable') sfu.collisions += 1;
  await pc.setRemoteDescription({ type: 'offer', sdp }); // rolls back an offer of ours
  if (!current(pc)) return;
  for (const offer of sfu.offers) offer.rolledBack = true;
  await addQueuedCandidates(pc);
  await pc.setLocalDescription();
  if (!current(pc)) return;
  send({ type: 'sfu_answer', sdp: pc.localDescription.sdp });
  assignTracks(sfu);
  await applyVideoLimits(pc);
}

async function onAnswer(pc, sdp) {
  const offer = sfu.offers.shift();
  if (!offer || offer.rolledBack || pc.signalingState !== 'have-local-offer') return;
  await pc.setRemoteDescription({ type: 'answer', sdp });
  await addQueuedCandidates(pc);
  assignTracks(sfu);
  await applyVideoLimits(pc);
}

/**
 * Send no larger and no faster than the server's answer asks (VP8 max-fs / max-fr, from
 * CALL_VIDEO_MAX_WIDTH/HEIGHT/FPS): Chromium does not apply them by itself, so each video
 * sender is scaled down and capped with setParameters; of a simulcast camera, each layer
 * keeps its own reduction (CAMERA_LAYERS) where that already fits.
 */
async function applyVideoLimits(pc) {
  const sdp = pc.remoteDescription && pc.remoteDescription.sdp;
  for (const t of pc.getTransceivers()) {
    const track = t.sender.track;
    if (!track || track.kind !== 'video' || t.mid === null) continue;
    const limits = videoLimits(sdp, t.mid);
    if (!limits || (!limits.maxFs && !limits.maxFr)) continue;
    const params = t.sender.getParameters();
    if (!params.encodings || !params.encodings.length) continue;
    const { width, height } = track.getSettings();
    let scale = 1;
    if (limits.maxFs && width && height) {
      const side = 16 * Math.sqrt(8 * limits.maxFs); // RFC 7741: each side's bound too
      scale = Math.max(1, Math.sqrt((width * height) / (256 * limits.maxFs)),
        width / side, height / side);
      // max-fs counts whole macroblocks: step up until the scaled frame fits
      // (Chromium may round a scaled side up)
      const blocks = (s) => Math.ceil(Math.ceil(width / s) / 16) * Math.ceil(Math.ceil(height / s) / 16);
      while (blocks(scale) > limits.maxFs && scale < 64) scale *= 1.01;
    }
    let changed = false;
    for (const enc of params.encodings) {
      if (limits.maxFr && enc.maxFramerate !== limits.maxFr) {
        enc.maxFramerate = limits.maxFr;
        changed = true;
      }
      // a simulcast layer keeps its own reduction when that is already within the cap
      const layer = CAMERA_LAYERS.find((l) => l.rid === enc.rid);
      const wanted = Math.max(layer ? layer.scaleResolutionDownBy : 1, scale);
      if (Math.abs((enc.scaleResolutionDownBy || 1) - wanted) > 0.01) {
        enc.scaleResolutionDownBy = wanted;
        changed = true;
      }
    }
    if (!changed) continue;
    try {
      await t.sender.setParameters(params);
    } catch (err) {
      console.warn('rtchub: could not apply the video limits', err);
    }
  }
}

async function onIgnored(pc) {
  sfu.ignored += 1;
  const offer = sfu.offers.shift();
  // the server's own offer came first and rolled ours back; we offer again after it
  if (!offer || offer.rolledBack) return;
  if (pc.signalingState === 'have-local-offer' && pc.localDescription.sdp === offer.sdp) {
    await pc.setLocalDescription({ type: 'rollback' }); // negotiationneeded offers again
  }
}

/** The server refused our oldest outstanding offer: drop it (and roll it back). */
async function onRefused(pc) {
  const offer = sfu.offers.shift();
  if (!offer || offer.rolledBack) return;
  if (pc.signalingState === 'have-local-offer' && pc.localDescription.sdp === offer.sdp) {
    await pc.setLocalDescription({ type: 'rollback' });
  }
}

async function addQueuedCandidates(pc) {
  for (const c of sfu.pendingCandidates.splice(0)) await addCandidate(pc, c);
}

async function addCandidate(pc, candidate) {
  try {
    await pc.addIceCandidate(candidate === null ? undefined : candidate);
  } catch (err) {
    if (current(pc)) console.warn('server candidate refused', err);
  }
}

function onCandidate(pc, candidate) {
  if (!pc.remoteDescription) {
    sfu.pendingCandidates.push(candidate);
    return null;
  }
  return addCandidate(pc, candidate);
}

// -- chat over the "chat" data channel ---------------------------------------------------

function wireChat(dc) {
  sfu.channels.push(dc);
  dc.onmessage = (ev) => onChatData(ev.data);
  dc.onclose = () => { sfu.channels = sfu.channels.filter((c) => c !== dc); };
}

function onChatData(data) {
  if (typeof data !== 'string') return;
  let msg;
  try { msg = JSON.parse(data); } catch { return; }
  if (msg && typeof msg.text === 'string' && typeof msg.from === 'string') showChat(msg);
}

/** A chat line from someone else (data channel or `chat` frame; the same line once). */
function showChat(msg) {
  if (msg.from === state.myId) return;
  const key = `${msg.from}\n${msg.ts}\n${msg.text}`;
  if (sfu.chatSeen.has(key)) return;
  sfu.chatSeen.add(key);
  if (sfu.chatSeen.size > CHAT_SEEN_MAX) sfu.chatSeen.delete(sfu.chatSeen.values().next().value);
  const p = sfu.participants.get(msg.from);
  const at = typeof msg.ts === 'number' ? msg.ts * 1000 : Date.now();
  emit('chat', {
    from: p && p.display_name ? p.display_name : msg.from, text: msg.text.slice(0, 4000), at, mine: false,
  });
}

/** Send a chat line through the server; returns how many others it goes to (0: not sent). */
export function sfuChat(line) {
  const open = sfu.channels.find((c) => c === sfu.chat && c.readyState === 'open')
    || sfu.channels.find((c) => c.readyState === 'open');
  const others = [...sfu.participants.keys()].filter((id) => id !== state.myId).length;
  const sent = open ? others : 0;
  if (open) open.send(JSON.stringify({ text: line }));
  emit('chat', { from: state.myId, text: line, at: Date.now(), mine: true, delivered: sent });
  return sent;
}

// -- our own media ----------------------------------------------------------------------

/** Tell the room our microphone, camera and screen state. */
export function sendMediaState() {
  send({ type: 'media_state', audio: !state.muted && !!sfu.senders.audio,
    video: !state.cameraOff && !!sfu.senders.video, screen: state.usingScreen });
}

/** Swap the camera or microphone we send (a device switch; no renegotiation). */
export async function sfuReplace(kind, track) {
  const sender = sfu.senders[kind === 'audio' ? 'audio' : 'video'];
  if (sender) await sender.replaceTrack(track);
}

/** Publish `stream`'s video as our screen (a track of its own, beside the camera). */
export function sfuStartScreen(stream) {
  const track = stream.getVideoTracks()[0];
  if (!sfu.pc || !track) return;
  if (sfu.senders.screen) sfu.pc.removeTrack(sfu.senders.screen);
  addSender('screen', track, stream);
}

/** Stop publishing the screen (its section goes inactive: the server ends the track). */
export function sfuStopScreen() {
  if (sfu.pc && sfu.senders.screen) {
    try { sfu.pc.removeTrack(sfu.senders.screen); } catch { /* closed */ }
  }
  sfu.senders.screen = null;
}

// -- recording on the server ----------------------------------------------------------------

/** May we record (the join token's grant)? */
export function mayRecord() {
  return !!sfu.grants.record;
}

/** Is the server recording this room? */
export function serverRecording() {
  return sfu.recording.state === 'recording' || sfu.recording.state === 'paused';
}

/** Start or stop the server-side recorder (the Record button in SFU mode). */
export function toggleServerRecording() {
  sfu.recordAsked = send({ type: 'record', action: serverRecording() ? 'stop' : 'start' });
}

// -- the frames --------------------------------------------------------------------------

/** `joined` in an SFU room: take the room's state and (re)connect our media. */
export function sfuJoined(msg, resumed) {
  state.sfu = sfu;
  sfu.grants = { ...sfu.grants, ...(msg.grants || {}) };
  sfu.recording = msg.recording || { state: 'idle' };
  // who speaks now, when the server says so on join (else from the next active_speaker)
  if ('active_speaker' in msg) state.activeSpeaker = msg.active_speaker || null;
  if (sfu.rejoining) notify('info', null);
  sfu.rejoining = false;
  const keep = resumed && sfu.pc && ['connected', 'connecting', 'new'].includes(sfu.pc.connectionState);
  if (!keep) {
    for (const peer of [...state.peers.values()]) { state.peers.delete(peer.id); emit('peerGone', peer); }
    openConnection();
  }
  setParticipants(sfu, msg.participants || []);
  setTracks(sfu, msg.tracks || []);
  sfu.qualities.clear(); // a new session: the server starts us low again
  askQualities(sfu.tracks, state.myId, sfu.qualities, send);
  sendMediaState();
  emit('self');
}

/** One server frame of the SFU dialect. */
export function sfuFrame(msg) {
  if (!sfu.pc) return null; // not (or no longer) in an SFU call
  switch (msg.type) {
    case 'sfu_offer': return queue((pc) => onOffer(pc, msg.sdp));
    case 'sfu_answer': return queue((pc) => onAnswer(pc, msg.sdp));
    case 'sfu_ignored': return queue((pc) => onIgnored(pc));
    case 'sfu_candidate': return queue((pc) => onCandidate(pc, msg.candidate ?? null));
    case 'sfu_failed': // our server peer failed or timed out: it is gone, join again
      startOver();
      break;
    case 'participants': setParticipants(sfu, msg.participants); break;
    case 'tracks':
      setTracks(sfu, msg.tracks);
      askQualities(sfu.tracks, state.myId, sfu.qualities, send);
      break;
    case 'quality': setQuality(msg.participants); break;
    case 'active_speaker':
      state.activeSpeaker = msg.participant || null;
      emit('peers');
      emit('self');
      break;
    case 'recording': {
      sfu.recordAsked = false;
      const was = sfu.recording.state;
      sfu.recording = { ...msg };
      delete sfu.recording.type;
      if (msg.state === 'failed') notify('warn', `The recording failed: ${msg.reason || 'no reason given'}`, 'recording');
      else if (msg.state === 'stopped' && was !== 'stopped') {
        const n = Array.isArray(msg.files) ? msg.files.length : 0;
        notify('info', `Recording saved on the server${n ? ` (${n} file${n > 1 ? 's' : ''})` : ''}.`, 'recording');
      }
      emit('self');
      break;
    }
    case 'chat':
      if (typeof msg.text === 'string' && typeof msg.from === 'string') showChat(msg);
      break;
    default:
      break;
  }
  return null;
}

/** Leave SFU mode: close the connection and forget everyone's media. */
export function stopSfu() {
  closeConnection();
  for (const peer of [...state.peers.values()]) {
    if (!peer.sfu) continue;
    state.peers.delete(peer.id);
    emit('peerGone', peer);
  }
  sfu.participants = new Map();
  sfu.tracks = new Map();
  sfu.recording = { state: 'idle' };
  sfu.grants = { publish: true, subscribe: true, record: false, admin: false };
  sfu.chain = Promise.resolve();
  state.activeSpeaker = null;
  refreshCallState();
  emit('peers');
  emit('self');
}

function onServerError(msg) {
  if (!inSfu() || !sfu.pc || (state.roomState !== 'joined' && state.roomState !== 'calling')) return;
  if (sfu.recordAsked) { // the answer to our `record` (connection_failed: not configured)
    sfu.recordAsked = false;
    notify('warn', `Recording: ${msg.error || msg.code}`, 'recording');
  } else if (OFFER_REFUSED.has(msg.code)) {
    queue((pc) => onRefused(pc));
    notify('warn', `The server refused our media: ${msg.error || msg.code}`, msg.code);
  } else if (PEER_GONE.has(msg.code)) {
    startOver();
  }
}

/** Route the SFU frames and `joined` of SFU rooms here. */
export function installSfu() {
  onSignal('sfuJoined', sfuJoined);
  onSignal('sfu', sfuFrame);
  on('serverError', onServerError);
}
