// rtchub browser app: entry point. Wires the modules together, exposes seed
// 000's JavaScript API as globals on `window`, and connects the buttons.
//
//   connect(roomId, myId)  disconnect()      callPeer(id)   hangupPeer(id)  hangupAll()
//   toggleMute()           toggleCamera()    startScreenShare()  stopScreenShare()
//   startRecording()       stopRecording()   sendChat(text)      setRoomState(s)
//   state                  (AppState, see types/webrtc.d.ts)

import { state, setRoomState, changeRoomState, notify, on } from './app.state.js';
import {
  startSignaling, stopSignaling, dropSocket, backoffDelay, holdSignals,
} from './app.signal.js';
import { installPeers, callPeer, hangupPeer, hangupAll, sendChat } from './app.peers.js';
import {
  startLocalMedia, stopLocalMedia, toggleMute, toggleCamera, startScreenShare, stopScreenShare,
  useScreenStream,
} from './app.media.js';
import { startRecording, stopRecording } from './app.record.js';
import { startStats, stopStats } from './app.stats.js';
import { installUi } from './app.ui.js';
import { icons } from './app.icons.js';

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
  forgetActive();
  hangupAll();
  stopSignaling();
  stopStats();
  if (state.recorder) stopRecording();
  stopLocalMedia();
  changeRoomState('idle');
}

const api = {
  state, connect, disconnect, callPeer, hangupPeer, hangupAll, toggleMute, toggleCamera,
  startScreenShare, stopScreenShare, startRecording, stopRecording, sendChat, setRoomState,
};
Object.assign(window, api);
// rtchub extras for tests and power users
window.rtchub = { useScreenStream, dropSocket, backoffDelay, holdSignals, version: 1 };

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
  control('#btn-record', icons.record, 'Record',
    () => (state.recorder ? stopRecording() : startRecording()));
  control('#btn-people', icons.people, 'People', () => toggleSide('people'));
  control('#btn-chat', icons.chat, 'Chat', () => toggleSide('chat'));
  control('#btn-leave', icons.leave, 'Leave', () => disconnect());
  $('#btn-chat').append($('#chat-unread'));
  $('#btn-people').append($('#people-count'));
  $('#copy-link').innerHTML = `${icons.link}<span>Copy invite link</span>`;
  $('#copy-link-2').addEventListener('click', () => $('#copy-link').click());
  $('#copy-link').addEventListener('click', async () => {
    const link = `${location.origin}/?room=${encodeURIComponent(state.roomId)}`;
    try {
      await navigator.clipboard.writeText(link);
      notify('info', `Invite link copied: ${link}`, 'copied');
    } catch {
      notify('info', `Share this link: ${link}`, 'copied');
    }
  });
  $('#join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    $('#join-btn').disabled = true;
    connect($('#room-input').value, $('#name-input').value);
  });
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

function prefill() {
  const params = new URLSearchParams(location.search);
  const room = params.get('room');
  let name = params.get('name');
  try { name = name || localStorage.getItem('rtchub.name'); } catch { /* private mode */ }
  $('#room-input').value = room || '';
  $('#name-input').value = name || '';
  if (params.get('autocall') === '0') state.autoCall = false;
  (room ? $('#name-input') : $('#room-input')).focus();
  if (room) $('#lobby-title').textContent = `Join “${room}”`;
}

// A reload (or a crashed tab restored) puts you back in the call as the same person.
const ACTIVE = 'rtchub.active';
function forgetActive() {
  try { sessionStorage.removeItem(ACTIVE); } catch { /* private mode */ }
}
on('roomState', ({ next }) => {
  if (next !== 'joined') return;
  try { sessionStorage.setItem(ACTIVE, JSON.stringify({ room: state.roomId, id: state.myId })); } catch { /* ignore */ }
});
on('replaced', forgetActive);
on('joinRefused', () => { forgetActive(); stopStats(); stopLocalMedia(); });

function resumeAfterReload() {
  let active = null;
  try { active = JSON.parse(sessionStorage.getItem(ACTIVE) || 'null'); } catch { active = null; }
  const room = new URLSearchParams(location.search).get('room');
  if (active && active.room && active.room === room) connect(active.room, active.id);
}

installPeers();
installUi();
wire();
prefill();
resumeAfterReload();
document.documentElement.dataset.ready = 'true';
