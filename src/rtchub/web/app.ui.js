// The call view: tiles with indicators, their layout, the people and chat panels,
// the header's status, notices. Only reads `state` and listens to bus events.

import { state, on } from './app.state.js';
import { icons } from './app.icons.js';
import { badgeText, quality, serverBadge } from './app.stats.js';
import { fitTiles, layoutFor } from './app.layout.js';
import { mayRecord, serverRecording } from './app.sfu.js';

export { bestGrid } from './app.layout.js';

const $ = (sel) => document.querySelector(sel);

const STATUS_TEXT = {
  idle: '', connecting: 'Connecting…', joined: 'In the room',
  reconnecting: 'Reconnecting…', calling: 'In a call',
};

function initials(name) {
  const parts = String(name || '?').trim().split(/[\s._-]+/).filter(Boolean);
  return (parts.length > 1 ? parts[0][0] + parts[1][0] : (parts[0] || '?').slice(0, 2)).toUpperCase();
}

function hue(name) {
  let h = 0;
  for (const ch of String(name)) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return h;
}

function makeTile(id, self, kind = 'main') {
  const tile = document.createElement('div');
  tile.className = 'tile';
  tile.dataset.self = String(self);
  tile.dataset.kind = kind; // 'main' (camera and microphone) or 'screen' (SFU mode)
  tile.dataset.fit = 'contain';
  tile.innerHTML = `
    <video autoplay playsinline ${self ? 'muted' : ''}></video>
    <div class="avatar"><span></span></div>
    <div class="conn"></div>
    <div class="badge" data-q="unknown"></div>
    <div class="label"><span class="mic-off" title="Microphone off">${icons.micOff}</span>
      <span class="cam-off" title="Camera off">${icons.camOff}</span><span class="name"></span></div>`;
  nameTile(tile, id, self);
  tile.querySelector('video').addEventListener('resize', () => fit(tile));
  return tile;
}

function nameTile(tile, id, self, label = id) {
  tile.dataset.peer = id;
  tile.dataset.name = self ? (id ? `${id} (you)` : 'You') : label;
  tile.querySelector('.name').textContent = tile.dataset.name;
  const avatar = tile.querySelector('.avatar');
  avatar.style.setProperty('--hue', hue(id || 'you'));
  avatar.querySelector('span').textContent = initials(self ? id || 'You' : label);
}

/** Your own tile (shown from the moment you press Join; named once the server confirms). */
function selfTile() {
  const grid = $('#grid');
  let tile = grid.querySelector('.tile[data-self="true"]');
  if (!tile) {
    tile = makeTile(state.myId, true);
    grid.prepend(tile);
    layout();
  } else if (tile.dataset.peer !== state.myId) {
    nameTile(tile, state.myId, true);
  }
  return tile;
}

function tileFor(id, kind = 'main') {
  const grid = $('#grid');
  let tile = grid.querySelector(`.tile[data-self="false"][data-kind="${kind}"][data-peer="${CSS.escape(id)}"]`);
  if (!tile) {
    tile = makeTile(id, false, kind);
    grid.append(tile);
    layout();
  }
  return tile;
}

function attach(video, stream) {
  if (video.srcObject !== stream) video.srcObject = stream;
  if (stream && video.paused) {
    video.play().catch((err) => {
      if (!err || err.name !== 'NotAllowedError') return; // interrupted by a newer load: fine
      // autoplay with sound refused: play muted and let one click bring the sound
      video.muted = true;
      video.play().catch(() => {});
      $('#unmute-hint').hidden = false;
    });
  }
}

/** Size the tiles for the stage: 'solo', 'pip' (1:1) or a grid of up to 3:4..16:9 tiles. */
function layout() {
  const grid = $('#grid');
  const n = Math.max(1, grid.children.length);
  const width = grid.clientWidth;
  const height = grid.clientHeight;
  const mode = layoutFor(n);
  grid.dataset.count = n;
  grid.dataset.layout = mode;
  grid.dataset.portrait = String(height > width);
  if (mode === 'pip') for (const tile of grid.querySelectorAll('.tile[data-self="false"]')) fit(tile);
  if (width <= 0 || height <= 0 || mode === 'pip') return;
  const gap = parseFloat(getComputedStyle(grid).columnGap) || 12;
  const { cols, w, h } = fitTiles(n, width, height, gap);
  grid.style.setProperty('--cols', cols);
  grid.style.setProperty('--tile-w', `${w}px`);
  grid.style.setProperty('--tile-h', `${h}px`);
}

/** The share of a picture that `object-fit: cover` shows in a box (1: nothing cut). */
export function coverShare(videoW, videoH, boxW, boxH) {
  if (!videoW || !videoH || !boxW || !boxH) return 1;
  const video = videoW / videoH;
  const box = boxW / boxH;
  return video > box ? box / video : video / box;
}

/** A large tile fills itself with the picture when that cuts off little, else shows it whole. */
function fit(tile) {
  const video = tile.querySelector('video');
  const share = coverShare(video.videoWidth, video.videoHeight, tile.clientWidth, tile.clientHeight);
  tile.dataset.fit = share >= 0.85 ? 'cover' : 'contain';
}

function showServerBadge(badge, q) {
  const shown = serverBadge(q);
  badge.textContent = shown.text;
  badge.dataset.q = shown.grade;
  badge.title = shown.title || '';
}

function renderSelf() {
  if (state.roomState === 'idle') return;
  const tile = selfTile();
  const video = tile.querySelector('video');
  const stream = state.usingScreen && state.screenStream ? state.screenStream : state.localStream;
  attach(video, stream);
  const noVideo = !stream || !stream.getVideoTracks().length;
  tile.dataset.muted = String(state.muted || !(state.localStream && state.localStream.getAudioTracks().length));
  tile.dataset.camoff = String(!state.usingScreen && (state.cameraOff || noVideo));
  tile.dataset.screen = String(state.usingScreen);
  tile.dataset.speaking = String(state.activeSpeaker === state.myId);
  if (state.topology === 'sfu') showServerBadge(tile.querySelector('.badge'), state.myQuality);
  renderToggles();
  setButton('#btn-screen', state.usingScreen, icons.screen, state.usingScreen ? 'Stop sharing' : 'Share screen');
  // SFU rooms record on the server, for those whose token grants it; everyone sees REC
  const sfuMode = state.topology === 'sfu';
  const recording = sfuMode ? serverRecording() : !!state.recorder;
  setButton('#btn-record', recording, icons.record, recording ? 'Stop recording' : 'Record');
  $('#btn-record').hidden = sfuMode && !mayRecord();
  $('#rec-dot').hidden = !recording;
}

/** Mute and camera buttons, in the call's bar and on the lobby's preview. */
function renderToggles() {
  const local = state.localStream;
  const inCall = state.roomState !== 'idle';
  const muteLabel = state.muted ? 'Unmute' : 'Mute';
  const camLabel = state.cameraOff ? 'Start video' : 'Stop video';
  setButton('#btn-mute', state.muted, state.muted ? icons.micOff : icons.mic, muteLabel);
  setButton('#btn-camera', state.cameraOff, state.cameraOff ? icons.camOff : icons.cam, camLabel);
  $('#btn-mute').disabled = inCall && !(local && local.getAudioTracks().length);
  $('#btn-camera').disabled = inCall && !(local && local.getVideoTracks().length);
  for (const [sel, off, icon, label] of [
    ['#pre-mic', state.muted, state.muted ? icons.micOff : icons.mic, state.muted ? 'Turn microphone on' : 'Turn microphone off'],
    ['#pre-cam', state.cameraOff, state.cameraOff ? icons.camOff : icons.cam, state.cameraOff ? 'Turn camera on' : 'Turn camera off'],
  ]) {
    const b = $(sel);
    b.innerHTML = icon;
    b.dataset.active = String(off);
    b.setAttribute('aria-pressed', String(off));
    b.title = label;
    b.setAttribute('aria-label', label);
  }
}

function setButton(sel, active, icon, label) {
  const b = $(sel);
  b.dataset.active = String(active);
  b.setAttribute('aria-pressed', String(active));
  b.querySelector('.i').innerHTML = icon;
  b.querySelector('.t').textContent = label;
  b.title = label;
}

function connText(peer) {
  const cs = peer.pc.connectionState;
  if (cs === 'connected') return '';
  if (peer.attempt === 1) return 'Not connected yet: restarting the connection…';
  if (peer.attempt > 1) return `Not connected yet: calling again (attempt ${peer.attempt + 1})…`;
  if (cs === 'new') return 'Calling…';
  if (cs === 'disconnected') return 'Connection lost, reconnecting…';
  return `${cs[0].toUpperCase()}${cs.slice(1)}…`;
}

function renderPeer(peer) {
  const tile = tileFor(peer.id);
  attach(tile.querySelector('video'), peer.stream);
  const cs = peer.pc.connectionState;
  tile.dataset.state = cs;
  tile.dataset.attempt = String(peer.attempt);
  tile.dataset.retries = String(peer.retries);
  tile.dataset.muted = String(peer.remote.muted);
  tile.dataset.camoff = String(peer.remote.cameraOff);
  tile.dataset.screen = String(peer.remote.sharing);
  tile.dataset.speaking = String(state.activeSpeaker === peer.id);
  tile.querySelector('.conn').textContent = connText(peer);
  const badge = tile.querySelector('.badge');
  if (peer.sfu && peer.serverQuality) {  // SFU rooms: the server's view of their link
    showServerBadge(badge, peer.serverQuality);
  } else {
    badge.textContent = cs === 'connected' ? badgeText(peer.stats) : '';
    badge.dataset.q = quality(peer.stats);
  }
  const label = peer.displayName || peer.id;
  if (tile.dataset.name !== label) nameTile(tile, peer.id, false, label);
  if (peer.screen) renderScreen(peer, label);
}

/** A screen someone shares in an SFU room: a tile of its own beside theirs. */
function renderScreen(peer, label) {
  const tile = tileFor(peer.id, 'screen');
  attach(tile.querySelector('video'), peer.screen);
  if (tile.dataset.name !== `${label}’s screen`) nameTile(tile, peer.id, false, `${label}’s screen`);
  tile.dataset.state = peer.pc.connectionState;
  tile.dataset.screen = 'true';
  tile.dataset.muted = 'false';
  tile.dataset.camoff = 'false';
}

function renderPeers() {
  const grid = $('#grid');
  for (const peer of state.peers.values()) renderPeer(peer);
  for (const tile of [...grid.querySelectorAll('.tile[data-self="false"]')]) {
    const peer = state.peers.get(tile.dataset.peer);
    if (!peer || (tile.dataset.kind === 'screen' && !peer.screen)) tile.remove();
  }
  sortTiles(grid);
  layout();
  renderMembers();
}

/** Keep tiles in a stable order: you first, then the room's join order. */
function sortTiles(grid) {
  const rank = (tile) => {
    if (tile.dataset.self === 'true') return -1;
    const i = state.members.indexOf(tile.dataset.peer);
    return (i < 0 ? state.members.length : i) + (tile.dataset.kind === 'screen' ? 0.5 : 0);
  };
  const tiles = [...grid.children];
  const sorted = [...tiles].sort((a, b) => rank(a) - rank(b));
  if (sorted.some((tile, i) => tile !== tiles[i])) grid.append(...sorted);
}

function renderMembers() {
  const list = $('#member-list');
  list.replaceChildren();
  const sfuMode = state.topology === 'sfu' && state.sfu;
  if (sfuMode) renderParticipants(list);
  for (const id of sfuMode ? [] : state.members) {
    const li = document.createElement('li');
    li.dataset.member = id;
    const name = document.createElement('span');
    name.className = 'who';
    name.textContent = id === state.myId ? `${id} (you)` : id;
    li.append(name);
    if (id !== state.myId) {
      const peer = state.peers.get(id);
      const inCall = !!peer && peer.pc.connectionState !== 'closed';
      const b = document.createElement('button');
      b.type = 'button';
      b.className = inCall ? 'btn small danger' : 'btn small';
      b.textContent = inCall ? 'Hang up' : 'Call';
      b.dataset.action = inCall ? 'hangup' : 'call';
      b.dataset.peer = id;
      li.append(b);
    }
    list.append(li);
  }
  $('#hangup-all').hidden = state.peers.size === 0 || !!sfuMode;
  $('#people-count').textContent = String(state.members.length || '');
  const inRoom = state.roomState === 'joined' || state.roomState === 'calling';
  $('#waiting').hidden = !(inRoom && state.members.length <= 1);
}

/** SFU mode's people: display names, microphone and screen state, who is speaking. */
function renderParticipants(list) {
  const people = [...state.sfu.participants.values()]
    .sort((a, b) => (a.joined_at || 0) - (b.joined_at || 0));
  for (const p of people) {
    const me = p.id === state.myId;
    const peer = state.peers.get(p.id);
    const muted = me ? state.muted : !!(peer && peer.remote.muted);
    const sharing = me ? state.usingScreen : !!(peer && peer.remote.sharing);
    const li = document.createElement('li');
    li.dataset.member = p.id;
    li.dataset.muted = String(muted);
    li.dataset.speaking = String(state.activeSpeaker === p.id);
    const name = document.createElement('span');
    name.className = 'who';
    const shown = p.display_name || p.id;
    name.textContent = me ? `${shown} (you)` : shown;
    const marks = document.createElement('span');
    marks.className = 'marks';
    marks.innerHTML = (sharing ? `<span class="sharing" title="Sharing the screen">${icons.screen}</span>` : '')
      + (muted ? `<span class="mic-off" title="Microphone off">${icons.micOff}</span>`
        : `<span class="mic-on" title="Microphone on">${icons.mic}</span>`);
    li.append(name, marks);
    list.append(li);
  }
}

function renderRoomState() {
  const s = state.roomState;
  const status = $('#status');
  status.dataset.state = s;
  status.hidden = s === 'idle'; // nothing to report before the person did anything
  status.querySelector('.t').textContent = STATUS_TEXT[s] || s;
  const inRoom = s !== 'idle';
  document.body.dataset.inRoom = String(inRoom);
  $('#lobby').hidden = inRoom;
  $('#call').hidden = !inRoom;
  $('#controls').hidden = !inRoom;
  $('#room-info').hidden = !inRoom;
  $('#room-name').textContent = state.roomId;
  document.title = inRoom ? `${state.roomId} · rtchub` : 'rtchub';
  // one set of device pickers: in the lobby, or in the call's Devices panel
  const home = inRoom ? $('#devices-call') : $('#devices-home');
  if ($('#devices').parentElement !== home) home.append($('#devices'));
  renderMembers();
  if (!inRoom) {
    $('#grid').replaceChildren();
    $('#side').hidden = true;
    for (const b of ['#btn-people', '#btn-chat', '#btn-devices']) $(b).dataset.active = 'false';
    renderToggles();
  } else {
    renderSelf();
  }
}

const noticeFade = { id: 0 };

function renderNotice(n) {
  const box = $('#notice');
  if (n && n.kind === 'clear') {
    box.hidden = true;
    box.dataset.kind = '';
    return;
  }
  if (!n) {
    if (['reconnecting', 'unreachable', 'copied', ''].includes(box.dataset.code)) box.hidden = true;
    return;
  }
  box.hidden = false;
  clearTimeout(noticeFade.id);
  if (n.kind === 'info') noticeFade.id = setTimeout(() => { box.hidden = true; }, 5000);
  box.dataset.kind = n.kind;
  box.dataset.code = n.code || '';
  box.querySelector('.t').textContent = n.text;
}

function renderChat(line) {
  const log = $('#chat-log');
  const li = document.createElement('li');
  li.className = line.mine ? 'mine' : '';
  const who = document.createElement('span');
  who.className = 'from';
  who.textContent = line.mine ? 'You' : line.from;
  const when = document.createElement('time');
  when.textContent = new Date(line.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const text = document.createElement('p');
  text.textContent = line.text;
  li.append(who, when, text);
  log.append(li);
  log.scrollTop = log.scrollHeight;
  const side = $('#side');
  if ((side.hidden || side.dataset.tab !== 'chat') && !line.mine) {
    const badge = $('#chat-unread');
    badge.textContent = String(Number(badge.textContent || 0) + 1);
    badge.hidden = false;
  }
}

/** Subscribe the view to the bus. */
export function installUi() {
  on('roomState', renderRoomState);
  on('notice', renderNotice);
  on('members', renderMembers);
  on('peers', renderPeers);
  on('peerMedia', renderPeers);
  on('peerGone', renderPeers);
  on('localMedia', renderSelf);
  on('self', () => { renderSelf(); renderToggles(); });
  on('chat', renderChat);
  // stats refresh tiles only: rebuilding the people list each tick would eat clicks
  on('stats', () => { for (const peer of state.peers.values()) renderPeer(peer); renderSelf(); });
  renderRoomState();
  new ResizeObserver(() => layout()).observe($('#grid'));
}
