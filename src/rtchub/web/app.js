// rtchub browser app: entry point. Wires the modules together, exposes seed
// 000's JavaScript API as globals on `window`, and connects the buttons.
//
//   connect(roomId, myId)  disconnect()      callPeer(id)   hangupPeer(id)  hangupAll()
//   toggleMute()           toggleCamera()    startScreenShare()  stopScreenShare()
//   startRecording()       stopRecording()   sendChat(text)      setRoomState(s)
//   state                  (AppState, see types/webrtc.d.ts)

import { state, setRoomState, changeRoomState, notify, on } from './app.state.js';
import {
  startSignaling, stopSignaling, dropSocket, backoffDelay, holdSignals, heldSignals, loseSignals,
} from './app.signal.js';
import { installPeers, callPeer, hangupPeer, hangupAll } from './app.peers.js';
import { sendChat } from './app.channel.js';
import {
  startLocalMedia, stopLocalMedia, toggleMute, toggleCamera, startScreenShare, stopScreenShare,
  useScreenStream,
} from './app.media.js';
import { installDevices, startPreview, stopPreview, useDevice } from './app.devices.js';
import { startRecording, stopRecording } from './app.record.js';
import { startStats, stopStats } from './app.stats.js';
import { installUi } from './app.ui.js';
import { installToasts } from './app.toasts.js';
import { timing as watchdog } from './app.watchdog.js';
import { icons } from './app.icons.js';
import { installSfu, toggleServerRecording } from './app.sfu.js';

const $ = (sel) => document.querySelector(sel);

async function loadRtcConfig() {
  try {
    const res = await fetch('/api/rtc-config', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const cfg = await res.json();
    state.rtcConfig = cfg && typeof cfg === 'object' ? cfg : { iceServers: [] };
  } catch (err) {
    state.rtcConfig = { iceServers: [] };
    console.warn('no ICE configuration from the server', err);
  }
}

/** Join `roomId` as `myId` (empty or omitted: the server picks an ID). */
async function connect(roomId, myId = '') {
  const room = String(roomId ?? '').trim();
  const me = String(myId ?? '').trim();
  if (!room) {
    notify('error', 'Enter a room name to join.', 'no_room');
    return;
  }
  if (state.roomState !== 'idle') disconnect();
  notify('clear', null);
  $('#left-note').hidden = true;
  state.roomId = room;
  state.myId = me;
  changeRoomState('connecting');
  const url = new URL(location.href);
  url.searchParams.set('room', room);
  history.replaceState(null, '', url);
  try { if (me) localStorage.setItem('rtchub.name', me); } catch { /* private mode */ }
  await Promise.all([startLocalMedia(), loadRtcConfig()]);
  if (state.roomState !== 'connecting') { // left while the camera was starting
    if (state.roomState === 'idle') stopLocalMedia();
    return;
  }
  startSignaling(room, me);
  startStats();
}

/** Hang up every call, leave the room and release camera and microphone. */
function disconnect() {
  const room = state.roomId;
  const was = state.roomState;
  forgetActive();
  hangupAll();
  stopSignaling();
  stopStats();
  if (state.recorder) stopRecording();
  stopLocalMedia();
  stopPreview('off'); // after leaving, the camera light goes out until asked again
  changeRoomState('idle');
  if (was !== 'idle' && room) showLeft(room);
}

function showLeft(room) {
  const note = $('#left-note');
  note.replaceChildren();
  const text = document.createElement('span');
  text.textContent = `You left “${room}”.`;
  const again = document.createElement('button');
  again.type = 'button';
  again.className = 'btn small primary';
  again.id = 'rejoin';
  again.textContent = 'Rejoin';
  again.addEventListener('click', () => connect(room, $('#name-input').value));
  note.append(text, again);
  note.hidden = false;
  $('#room-input').value = room;
  syncJoin();
}

const api = {
  state, connect, disconnect, callPeer, hangupPeer, hangupAll, toggleMute, toggleCamera,
  startScreenShare, stopScreenShare, startRecording, stopRecording, sendChat, setRoomState,
};
Object.assign(window, api);
// rtchub extras for tests and power users
window.rtchub = {
  useScreenStream, dropSocket, backoffDelay, holdSignals, heldSignals, loseSignals, useDevice, watchdog,
  version: 2,
};

function control(id, icon, label, onClick) {
  const b = $(id);
  b.innerHTML = `<span class="i">${icon}</span><span class="t">${label}</span>`;
  b.title = label;
  b.addEventListener('click', onClick);
}

function toggleSide(tab) {
  const side = $('#side');
  const show = side.hidden || side.dataset.tab !== tab;
  side.hidden = !show;
  side.dataset.tab = tab;
  $('#btn-chat').dataset.active = String(show && tab === 'chat');
  $('#btn-people').dataset.active = String(show && tab === 'people');
  $('#btn-devices').dataset.active = String(show && tab === 'devices');
  if (show && tab === 'chat') {
    $('#chat-unread').hidden = true;
    $('#chat-unread').textContent = '';
    $('#chat-input').focus();
  }
}

function wire() {
  control('#btn-mute', icons.mic, 'Mute', () => toggleMute());
  control('#btn-camera', icons.cam, 'Stop video', () => toggleCamera());
  control('#btn-screen', icons.screen, 'Share screen',
    () => (state.usingScreen ? stopScreenShare() : startScreenShare()));
  control('#btn-record', icons.record, 'Record', () => {
    if (state.topology === 'sfu') toggleServerRecording(); // the server's recorder
    else if (state.recorder) stopRecording();
    else startRecording();
  });
  control('#btn-people', icons.people, 'People', () => toggleSide('people'));
  control('#btn-chat', icons.chat, 'Chat', () => toggleSide('chat'));
  control('#btn-devices', icons.gear, 'Devices', () => toggleSide('devices'));
  control('#btn-leave', icons.leave, 'Leave', () => disconnect());
  $('#btn-chat').append($('#chat-unread'));
  $('#btn-people').append($('#people-count'));
  $('#copy-link').innerHTML = `${icons.link}<span>Copy invite link</span>`;
  $('#copy-link-2').addEventListener('click', () => $('#copy-link').click());
  $('#copy-link').addEventListener('click', async () => {
    const sfu = state.topology === 'sfu' ? '&topology=sfu' : '';
    const link = `${location.origin}/?room=${encodeURIComponent(state.roomId)}${sfu}`;
    try {
      await navigator.clipboard.writeText(link);
      notify('info', `Invite link copied: ${link}`, 'copied');
    } catch {
      notify('info', `Share this link: ${link}`, 'copied');
    }
  });
  $('#join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!$('#room-input').value.trim()) {
      $('#room-input').focus();
      return;
    }
    $('#join-btn').disabled = true;
    connect($('#room-input').value, $('#name-input').value);
  });
  $('#room-input').addEventListener('input', syncJoin);
  $('#sfu-input').addEventListener('change', () => wantTopology($('#sfu-input').checked ? 'sfu' : ''));
  $('#room-random').addEventListener('click', () => {
    $('#room-input').value = randomRoom();
    syncJoin();
    $('#name-input').focus();
  });
  $('#pre-mic').addEventListener('click', () => toggleMute());
  $('#pre-cam').addEventListener('click', () => toggleCamera());
  $('#chat-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $('#chat-input');
    if (sendChat(input.value) >= 0) input.value = '';
  });
  $('#member-list').addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-peer]');
    if (!b) return;
    if (b.dataset.action === 'call') callPeer(b.dataset.peer); else hangupPeer(b.dataset.peer);
  });
  $('#hangup-all').addEventListener('click', () => hangupAll());
  $('#notice-close').addEventListener('click', () => { $('#notice').hidden = true; });
  $('#unmute-hint').addEventListener('click', () => {
    for (const v of document.querySelectorAll('.tile[data-self="false"] video')) v.muted = false;
    $('#unmute-hint').hidden = true;
  });
  window.addEventListener('pagehide', () => { if (state.roomState !== 'idle') hangupAll(); });
}

/** Join is possible once a room name is typed (no browser bubble about a required field). */
function syncJoin() {
  const ready = !!$('#room-input').value.trim();
  $('#join-btn').disabled = !ready || state.roomState !== 'idle';
  $('#room-hint').hidden = ready;
}

const WORDS = [
  ['amber', 'brisk', 'calm', 'clever', 'cosy', 'eager', 'gentle', 'lucky', 'mellow', 'quiet', 'sunny', 'swift'],
  ['badger', 'comet', 'falcon', 'harbor', 'maple', 'meadow', 'otter', 'pebble', 'river', 'robin', 'summit', 'willow'],
];

function randomRoom() {
  const pick = (list) => list[Math.floor(Math.random() * list.length)];
  return `${pick(WORDS[0])}-${pick(WORDS[1])}-${100 + Math.floor(Math.random() * 900)}`;
}

function prefill() {
  const params = new URLSearchParams(location.search);
  const room = params.get('room');
  let name = params.get('name');
  try { name = name || localStorage.getItem('rtchub.name'); } catch { /* private mode */ }
  $('#room-input').value = room || '';
  $('#name-input').value = name || '';
  if (params.get('autocall') === '0') state.autoCall = false;
  state.accessToken = params.get('access_token') || '';
  const topology = params.get('topology');
  wantTopology(topology === 'sfu' || topology === 'mesh' ? topology : '');
  (room ? $('#name-input') : $('#room-input')).focus();
  if (room) $('#lobby-title').textContent = `Join “${room}”`;
  syncJoin();
}

/**
 * The topology to ask for on join ('sfu', 'mesh', or '' for the room's own), kept in the
 * page's address (`?topology=sfu`) so that a reload and an invite link ask for it too.
 */
function wantTopology(topology) {
  state.wantTopology = topology;
  $('#sfu-input').checked = topology === 'sfu';
  $('#media-path').textContent = topology === 'sfu'
    ? 'Media goes through the server: one connection each, for larger calls.'
    : 'Media flows directly between browsers.';
  const url = new URL(location.href);
  if (topology) url.searchParams.set('topology', topology); else url.searchParams.delete('topology');
  history.replaceState(null, '', url);
}

// A reload (or a crashed tab restored) puts you back in the call as the same person.
const ACTIVE = 'rtchub.active';
function forgetActive() {
  try { sessionStorage.removeItem(ACTIVE); } catch { /* private mode */ }
}
on('roomState', ({ next }) => {
  if (next !== 'joined') return;
  if (state.topology === 'sfu' && state.wantTopology !== 'sfu') wantTopology('sfu'); // a room made SFU
  try { sessionStorage.setItem(ACTIVE, JSON.stringify({ room: state.roomId, id: state.myId })); } catch { /* ignore */ }
});
on('replaced', forgetActive);
on('joinRefused', () => { forgetActive(); stopStats(); stopLocalMedia(); startPreview(); });
on('roomState', ({ next }) => { if (next === 'idle') syncJoin(); });

/**
 * An SFU room lives on one server of a cluster: a join that landed on another one is
 * refused with room_elsewhere and that server's address (its NODE_URL). Go there with
 * the same room, name and invitation, and join at once (`autojoin=1`).
 */
function goToNode(base) {
  let dest;
  try { dest = new URL(base); } catch { return; }
  if (dest.origin === location.origin) return; // already here: never loop
  dest.pathname = dest.pathname.replace(/\/$/, '') + location.pathname;
  const params = new URLSearchParams(location.search);
  params.set('room', state.roomId);
  if (state.myId) params.set('name', state.myId);
  params.set('topology', 'sfu');
  params.set('autojoin', '1');
  dest.search = params.toString();
  location.assign(dest.toString());
}
on('serverError', (msg) => { if (msg.code === 'room_elsewhere' && msg.url) goToNode(msg.url); });

/** Sent here by another server (goToNode): join the room named in the address now. */
function autoJoin() {
  const url = new URL(location.href);
  const room = url.searchParams.get('room');
  if (url.searchParams.get('autojoin') !== '1' || !room) return false;
  url.searchParams.delete('autojoin'); // a reload shows the lobby, as any other page
  history.replaceState(null, '', url);
  connect(room, url.searchParams.get('name') || '');
  return true;
}

function resumeAfterReload() {
  let active = null;
  try { active = JSON.parse(sessionStorage.getItem(ACTIVE) || 'null'); } catch { active = null; }
  const room = new URLSearchParams(location.search).get('room');
  if (active && active.room && active.room === room) {
    connect(active.room, active.id);
    return true;
  }
  return false;
}

installPeers();
installSfu();
installDevices();
wire();
installUi();
installToasts();
prefill();
if (!resumeAfterReload() && !autoJoin()) startPreview();
document.documentElement.dataset.ready = 'true';
