// "X joined" / "X left": short notices on the stage when the room's members change.
// Nobody is announced when you join (they were there first), nor when someone's
// connection blips: a member who is back within LEAVE_GRACE_MS never "left", and
// after your own reconnect the people who are still reconnecting are not news.

import { state, on } from './app.state.js';

const LEAVE_GRACE_MS = 2500;
const SHOW_MS = 4500;
const room = { present: null, resuming: false, away: new Set(), leaving: new Map() };

function toast(text, kind) {
  const list = document.querySelector('#toasts');
  const li = document.createElement('li');
  li.className = 'toast';
  li.dataset.kind = kind;
  li.textContent = text;
  list.append(li);
  while (list.children.length > 4) list.firstElementChild.remove();
  setTimeout(() => li.remove(), SHOW_MS);
}

function forget() {
  for (const timer of room.leaving.values()) clearTimeout(timer);
  room.leaving.clear();
  room.away.clear();
  room.present = null;
  room.resuming = false;
  document.querySelector('#toasts').replaceChildren();
}

function onMembers(members) {
  if (state.roomState === 'idle') return;
  const now = new Set(members);
  if (room.present === null) { // our own join: everyone already here is not news
    room.present = now;
    return;
  }
  for (const id of now) {
    if (room.present.has(id) || id === state.myId) continue;
    if (room.leaving.has(id)) { // back within the grace period: never left
      clearTimeout(room.leaving.get(id));
      room.leaving.delete(id);
    } else if (!room.away.delete(id)) {
      toast(`${id} joined`, 'joined');
    }
  }
  for (const id of room.present) {
    if (now.has(id) || id === state.myId) continue;
    if (room.resuming) {
      room.away.add(id); // still reconnecting, like us a moment ago
    } else {
      room.leaving.set(id, setTimeout(() => {
        room.leaving.delete(id);
        toast(`${id} left`, 'left');
      }, LEAVE_GRACE_MS));
    }
  }
  room.resuming = false;
  room.present = now;
}

/** Announce members coming and going on the stage. */
export function installToasts() {
  on('roomState', ({ next }) => {
    if (next === 'idle') forget();
    if (next === 'reconnecting') room.resuming = true;
  });
  on('members', onMembers);
}
