// Shared state and the tiny event bus every module talks through.
//
// `state` is seed 000's AppState (see types/webrtc.d.ts); it is also exposed as
// `window.state`. Modules never import each other's internals: they change
// `state` and `emit(...)` an event the UI and other modules listen to.

/** @type {import('./types/webrtc').AppState} */
export const state = {
  myId: '',
  ws: null,
  roomId: '',
  roomState: 'idle',
  localStream: null,
  screenStream: null,
  usingScreen: false,
  muted: false,
  cameraOff: false,
  peers: new Map(),
  recorder: null,
  recordedChunks: [],
  // rtchub extras (documented in the .d.ts as AppState's optional fields)
  members: [],
  resumeToken: null,
  rtcConfig: { iceServers: [] },
  autoCall: true,
  lastError: null,
  reconnectAttempt: 0,
  // call rooms (seed 003): the room's topology from `joined`, the one asked for on join
  // ('' lets the room decide), the access token (`?access_token=`), the SFU session
  topology: 'mesh',
  wantTopology: '',
  accessToken: '',
  sfu: null,
};

const bus = new EventTarget();

/** Notify listeners: emit('peers'), emit('chat', {...}). */
export function emit(type, detail = null) {
  bus.dispatchEvent(new CustomEvent(type, { detail }));
}

/** Listen to a bus event; returns the detail to `fn`. */
export function on(type, fn) {
  bus.addEventListener(type, (ev) => fn(ev.detail));
}

/**
 * Change roomState. Internal code calls it through `window.setRoomState`, so a
 * page can wrap it the way seed 000 shows:
 *   const orig = setRoomState; setRoomState = (s) => { console.log(s); orig(s); };
 */
export function setRoomState(next) {
  const prev = state.roomState;
  state.roomState = next;
  if (prev !== next) emit('roomState', { prev, next });
}

/** Go through the (possibly wrapped) global setRoomState. */
export function changeRoomState(next) {
  if (state.roomState === next) return;
  const fn = typeof window.setRoomState === 'function' ? window.setRoomState : setRoomState;
  fn(next);
}

/** 'calling' while any peer connection is connected, else 'joined' (when in a room). */
export function refreshCallState() {
  if (state.roomState !== 'joined' && state.roomState !== 'calling') return;
  let live = false;
  for (const peer of state.peers.values()) {
    if (peer.pc.connectionState === 'connected') live = true;
  }
  changeRoomState(live ? 'calling' : 'joined');
}

/** Show a notice (kind: 'error' | 'warn' | 'info'); text null hides transient ones, kind 'clear' all. */
export function notify(kind, text, code = null) {
  if (kind === 'clear') {
    state.lastError = null;
    emit('notice', { kind });
    return;
  }
  if (kind === 'error') state.lastError = { code, text };
  emit('notice', text === null ? null : { kind, text, code });
}
