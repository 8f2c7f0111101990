// The signaling connection: join/leave, resume tokens and auto-reconnect.
//
// One WebSocket to /ws at a time. When it drops while we are in a room, we
// reconnect with exponential backoff and jitter and send `join` with the same
// room, ID and resume token, so the others see the same person come back.

import { state, emit, changeRoomState, notify } from './app.state.js';

const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 8000;
const PING_EVERY_MS = 15000;
const PONG_TIMEOUT_MS = 10000;
const CLOSE_REPLACED = 4001;

/** Handlers for relayed signaling, installed by the peers module. */
const handlers = { signal: null, members: null, joined: null, sfuJoined: null, sfu: null };
/** Frames of SFU rooms (docs/protocol.md "Call rooms"), handled by app.sfu.js. */
const SFU_FRAMES = new Set([
  'sfu_offer', 'sfu_answer', 'sfu_ignored', 'sfu_candidate', 'participants', 'tracks',
  'active_speaker', 'recording', 'chat', 'quality', 'sfu_failed',
]);
const held = { on: false, queue: [], lose: new Map() };
const conn = { why: '', wanted: false, timer: null, pingTimer: null, pongDeadline: null, everJoined: false };

/** Register the callbacks that consume signaling frames. */
export function onSignal(name, fn) {
  handlers[name] = fn;
}

/** Send one protocol frame if the socket is open; returns whether it went out. */
export function send(msg) {
  const ws = state.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(msg));
  return true;
}

/** The delay before reconnect attempt `n` (0-based): base * 2^n, capped, with full jitter on half. */
export function backoffDelay(n) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** n);
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

function wsUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

function tokenKey() {
  return `rtchub.token.${state.roomId}.${state.myId}`;
}

function joinFrame(topology) {
  const join = { type: 'join', room: state.roomId };
  if (state.myId) join.from = state.myId;
  if (state.resumeToken) join.token = state.resumeToken;
  if (topology) join.topology = topology; // else the room's own
  if (state.accessToken) join.access_token = state.accessToken;
  return join;
}

/**
 * Leave and join again on the same socket, as the same person, in a room of the topology
 * we are in (an SFU room gives a fresh server peer this way). Returns whether it was sent.
 */
export function rejoin() {
  const ws = state.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN || !conn.everJoined) return false;
  ws.send('{"type":"leave"}');
  ws.send(JSON.stringify(joinFrame(state.topology)));
  return true;
}

/** Open the socket and join (or resume). */
export function openSocket() {
  clearTimeout(conn.timer);
  const ws = new WebSocket(wsUrl());
  state.ws = ws;
  let opened = false;
  ws.onopen = () => {
    opened = true;
    ws.send(JSON.stringify(joinFrame(state.wantTopology)));
    startHeartbeat(ws);
  };
  ws.onmessage = (ev) => {
    if (state.ws !== ws) return; // left or replaced: frames still in flight are not ours
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (msg && typeof msg.type === 'string') dispatch(msg);
  };
  ws.onclose = (ev) => {
    if (state.ws !== ws) return;
    stopHeartbeat();
    state.ws = null;
    if (!conn.wanted) return;
    if (ev.code === CLOSE_REPLACED) {
      conn.wanted = false;
      notify('error', 'You joined this room from another tab or window, so this one was disconnected.', 'replaced');
      emit('replaced');
      changeRoomState('idle');
      return;
    }
    scheduleReconnect(opened, ev.code);
  };
}

function scheduleReconnect(opened, code) {
  const delay = backoffDelay(state.reconnectAttempt);
  state.reconnectAttempt += 1;
  const secs = Math.max(1, Math.round(delay / 1000));
  if (conn.everJoined) {
    changeRoomState('reconnecting');
    // the first drop says why; later refused attempts keep that reason
    if (state.reconnectAttempt === 1) {
      conn.why = code === 1001 ? 'The server is restarting.' : 'Lost the connection to the server.';
    }
    const why = conn.why;
    notify('warn', `${why} Reconnecting in ${secs}s… your calls stay up meanwhile.`, 'reconnecting');
  } else {
    notify('error', `Can't reach the server at ${location.host}. Retrying in ${secs}s…`, 'unreachable');
  }
  if (!opened && !conn.everJoined) changeRoomState('connecting');
  conn.timer = setTimeout(() => { if (conn.wanted) openSocket(); }, delay);
}

function startHeartbeat(ws) {
  stopHeartbeat();
  conn.pingTimer = setInterval(() => {
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send('{"type":"ping"}');
    if (conn.pongDeadline === null) {
      conn.pongDeadline = setTimeout(() => ws.close(4000, 'no pong'), PONG_TIMEOUT_MS);
    }
  }, PING_EVERY_MS);
}

function stopHeartbeat() {
  clearInterval(conn.pingTimer);
  clearTimeout(conn.pongDeadline);
  conn.pingTimer = null;
  conn.pongDeadline = null;
}

const ERROR_TEXT = {
  room_full: (m) => {
    const size = /\((\d+) members?\)/.exec(m.error || '');
    return `“${state.roomId}” is full${size ? ` (${size[1]} people is this server's limit)` : ''}. `
      + 'Try another room name.';
  },
  too_many_rooms: () => 'The server has reached its room limit. Try again later.',
  id_taken: () => 'Someone in this room already uses that name. Pick another one.',
  invalid_id: (m) => `That room or name is not allowed: ${m.error || ''}`,
  topology_mismatch: () => (state.wantTopology === 'sfu'
    ? `“${state.roomId}” is a mesh room (media goes browser to browser): uncheck “through the server” to join it.`
    : `“${state.roomId}” is an SFU room (media goes through the server): check “through the server” to join it.`),
  room_elsewhere: (m) => (m.url
    ? `“${state.roomId}” is hosted by another server of this service: taking you there…`
    : `“${state.roomId}” is hosted by another server of this service (${m.node || 'unknown'}), which did not say how to reach it.`),
  unauthorized: (m) => (state.roomState === 'connecting' || state.roomState === 'reconnecting'
    ? `This room needs a valid invitation (access token): ${m.error || 'refused'}.`
    : `Not allowed: ${m.error || 'refused'}.`),
};

function dispatch(msg) {
  switch (msg.type) {
    case 'joined': {
      state.myId = msg.from;
      state.roomId = msg.room;
      if (msg.token) {
        state.resumeToken = msg.token;
        try { sessionStorage.setItem(tokenKey(), msg.token); } catch { /* private mode */ }
      }
      const resumed = conn.everJoined;
      conn.everJoined = true;
      state.reconnectAttempt = 0;
      state.members = msg.members || [];
      state.topology = msg.topology === 'sfu' ? 'sfu' : 'mesh';
      notify('info', null);
      changeRoomState('joined');
      if (state.topology === 'sfu') {
        if (handlers.sfuJoined) handlers.sfuJoined(msg, resumed);
      } else if (handlers.joined) {
        handlers.joined(state.members, resumed);
      }
      emit('members', state.members);
      break;
    }
    case 'room_members':
      state.members = msg.members || [];
      if (handlers.members && state.topology !== 'sfu') handlers.members(state.members);
      emit('members', state.members);
      break;
    case 'pong':
      clearTimeout(conn.pongDeadline);
      conn.pongDeadline = null;
      break;
    case 'offer': case 'answer': case 'candidate': case 'hangup':
      if (state.topology === 'sfu') break; // no browser-to-browser calls in an SFU room
      if (held.lose.get(msg.type) > 0) {
        held.lose.set(msg.type, held.lose.get(msg.type) - 1);
        break;
      }
      if (held.on) held.queue.push(msg);
      else if (handlers.signal) handlers.signal(msg);
      break;
    case 'error':
      onError(msg);
      break;
    case 'sfu_offer': case 'sfu_answer': case 'sfu_ignored': case 'sfu_candidate':
      if (held.on) held.queue.push(msg);
      else if (state.topology === 'sfu' && handlers.sfu) handlers.sfu(msg);
      break;
    default:
      if (SFU_FRAMES.has(msg.type) && state.topology === 'sfu' && handlers.sfu) handlers.sfu(msg);
      break; // other dialects on /ws (available_streams, ...) are not ours
  }
}

function onError(msg) {
  const text = ERROR_TEXT[msg.code];
  emit('serverError', msg);
  if (!text) {
    console.warn('rtchub server error', msg.code, msg.error);
    return;
  }
  // a refused join ends the attempt: no reconnect loop against a full room
  const wasJoined = conn.everJoined;
  notify('error', text(msg), msg.code);
  if (state.roomState === 'connecting' || state.roomState === 'reconnecting') {
    conn.wanted = false;
    if (state.ws) state.ws.close(1000);
    state.ws = null;
    changeRoomState('idle');
    emit('joinRefused', { code: msg.code, wasJoined });
  }
}

/** Start a signaling session for roomId as myId (empty: the server picks). */
export function startSignaling(roomId, myId) {
  conn.wanted = true;
  conn.everJoined = false;
  state.roomId = roomId;
  state.myId = myId || '';
  state.reconnectAttempt = 0;
  let token = null;
  try { token = myId ? sessionStorage.getItem(tokenKey()) : null; } catch { token = null; }
  state.resumeToken = token;
  changeRoomState('connecting');
  openSocket();
}

/** Leave the room and close the socket; no reconnect. */
export function stopSignaling() {
  conn.wanted = false;
  conn.everJoined = false;
  clearTimeout(conn.timer);
  stopHeartbeat();
  const ws = state.ws;
  state.ws = null;
  if (ws) {
    if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"leave"}');
    ws.close(1000, 'bye');
  }
  try { sessionStorage.removeItem(tokenKey()); } catch { /* ignore */ }
  state.resumeToken = null;
  state.members = [];
  emit('members', state.members);
}

/** Drop the socket as a network failure would (tests and the "simulate drop" path). */
export function dropSocket() {
  if (state.ws) state.ws.close(4000, 'dropped by client');
}

/**
 * Hold relayed offers/answers/candidates (and the server's sfu_* frames) in arrival
 * order (true) and deliver them (false). Tests use it to make both sides offer before
 * either hears the other, the glare that perfect negotiation must settle.
 */
export function holdSignals(on) {
  held.on = !!on;
  if (held.on) return;
  for (const msg of held.queue.splice(0)) {
    if (msg.type.startsWith('sfu_')) {
      if (state.topology === 'sfu' && handlers.sfu) handlers.sfu(msg);
    } else if (handlers.signal) {
      handlers.signal(msg);
    }
  }
}

/** The types of the frames holdSignals(true) holds now, in arrival order (tests). */
export function heldSignals() {
  return held.queue.map((msg) => msg.type);
}

/**
 * Lose the next `count` relayed frames of `type` ('offer', 'answer', 'candidate'), as a
 * lossy path would: tests use it to show that every call's watchdog recovers.
 */
export function loseSignals(type, count = 1) {
  held.lose.set(type, Math.max(0, count | 0));
}
