// A watchdog on every call: a call that is not connected within a bounded time is
// retried, first by an ICE restart, then by a fresh offer on a new RTCPeerConnection,
// then by fresh offers at growing intervals for as long as the member stays in the room.
// No race or lost frame can leave a call sitting at "calling…" for ever.
//
// The impolite side waits half as long again before each step, so that the two sides
// of a call rarely start over at the same moment (perfect negotiation settles it when
// they do).

import { state, emit } from './app.state.js';

/**
 * Delays in milliseconds, read at each step: the ICE restart after `restartMs` without a
 * connection, the first fresh offer `freshMs` later, then doubling up to `maxMs`. Change
 * them live through `rtchub.watchdog`, or for every page of the site (reloads included)
 * with localStorage 'rtchub.watchdog' = JSON of the fields to change.
 */
export const timing = { restartMs: 6000, freshMs: 6000, maxMs: 30000 };
try {
  const saved = JSON.parse(localStorage.getItem('rtchub.watchdog') || 'null');
  for (const key of Object.keys(timing)) {
    if (saved && Number.isFinite(saved[key]) && saved[key] > 0) timing[key] = saved[key];
  }
} catch { /* private mode, or not JSON: the defaults */ }

const actions = { restart: null, fresh: null };

/** Install what a retry does: `restart(peer)` (ICE restart) and `fresh(peer)` (new offer). */
export function installWatchdog(restart, fresh) {
  actions.restart = restart;
  actions.fresh = fresh;
}

function delayFor(peer) {
  const step = peer.attempt;
  let ms = step === 0 ? timing.restartMs : Math.min(timing.maxMs, timing.freshMs * 2 ** (step - 1));
  if (!peer.polite) ms *= 1.5;
  return ms;
}

/** Stop watching (the call is connected or closed). */
export function unwatch(peer) {
  clearTimeout(peer.watchdog);
  peer.watchdog = null;
}

/**
 * Watch `peer`: unless it is connected when the countdown ends, retry. Called when a
 * connection is created or renewed, and when a connected call loses its path.
 */
export function watch(peer) {
  unwatch(peer);
  if (peer.pc.connectionState === 'connected') {
    peer.attempt = 0;
    return;
  }
  peer.watchdog = setTimeout(() => fire(peer), delayFor(peer));
}

function fire(peer) {
  peer.watchdog = null;
  if (state.peers.get(peer.id) !== peer || peer.pc.connectionState === 'connected') return;
  const reachable = state.ws && state.ws.readyState === WebSocket.OPEN
    && state.members.includes(peer.id);
  if (reachable) {
    peer.attempt += 1;
    peer.retries += 1;
    if (peer.attempt === 1) actions.restart(peer); else actions.fresh(peer);
    emit('peers');
  }
  // nobody to signal to right now (server away, member gone for a moment): look again later
  if (!peer.watchdog) watch(peer);
}
