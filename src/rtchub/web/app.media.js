// Local media: camera and microphone, mute, camera off, screen share.
//
// Mute and camera-off disable the sent track (the other side receives silence
// and black frames) and are announced over the data channel so the other side
// shows an indicator. Screen share swaps the sent video track with
// replaceTrack: no renegotiation, and the camera comes back when the share ends.

import { state, emit, notify } from './app.state.js';
import { broadcastStatus, outgoingVideo, replaceVideo } from './app.peers.js';

const CAMERA = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };

function deniedText(err, what) {
  if (err && (err.name === 'NotAllowedError' || err.name === 'SecurityError')) {
    return `Access to your ${what} was blocked. Allow it in the browser's site settings `
      + '(the camera icon in the address bar), then leave and join again. '
      + 'You can still see and hear the others.';
  }
  if (err && err.name === 'NotFoundError') return `No ${what} was found. Others can still reach you.`;
  if (err && err.name === 'NotReadableError') {
    return `Your ${what} is in use by another application. Close it and join again.`;
  }
  return `Could not start your ${what}: ${err && err.message ? err.message : err}`;
}

/** Get camera + microphone; falls back to microphone only, then to receive-only. */
export async function startLocalMedia() {
  if (state.localStream) return state.localStream;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    notify('warn', 'This page needs HTTPS (or localhost) to use your camera and microphone.', 'insecure');
    return null;
  }
  try {
    state.localStream = await navigator.mediaDevices.getUserMedia({ audio: true, video: CAMERA });
  } catch (err) {
    try {
      state.localStream = await navigator.mediaDevices.getUserMedia({ audio: true });
      notify('warn', deniedText(err, 'camera'), 'camera_denied');
    } catch (err2) {
      state.localStream = null;
      notify('warn', deniedText(err2, 'camera and microphone'), 'media_denied');
    }
  }
  applyTrackFlags();
  emit('localMedia', state.localStream);
  return state.localStream;
}

/** Stop every local track (on leave). */
export function stopLocalMedia() {
  for (const s of [state.localStream, state.screenStream]) {
    if (s) for (const t of s.getTracks()) t.stop();
  }
  state.localStream = null;
  state.screenStream = null;
  state.usingScreen = false;
  emit('localMedia', null);
}

function applyTrackFlags() {
  const s = state.localStream;
  if (!s) return;
  for (const t of s.getAudioTracks()) t.enabled = !state.muted;
  for (const t of s.getVideoTracks()) t.enabled = !state.cameraOff;
}

/** Mute or unmute the microphone; returns the new muted flag. */
export function toggleMute() {
  state.muted = !state.muted;
  applyTrackFlags();
  broadcastStatus();
  emit('self');
  return state.muted;
}

/** Turn the camera off or on; returns the new cameraOff flag. */
export function toggleCamera() {
  state.cameraOff = !state.cameraOff;
  applyTrackFlags();
  broadcastStatus();
  emit('self');
  return state.cameraOff;
}

/** Share a screen or window in place of the camera (needs a user gesture in most browsers). */
export async function startScreenShare() {
  if (state.usingScreen) return true;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) {
    notify('warn', 'This browser cannot share the screen.', 'no_screen_share');
    return false;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
  } catch (err) {
    if (err && err.name !== 'NotAllowedError') notify('warn', `Screen share failed: ${err.message}`, 'screen_failed');
    return false;
  }
  return useScreenStream(stream);
}

/** Send `stream`'s video track instead of the camera (also the path tests drive). */
export async function useScreenStream(stream) {
  const track = stream.getVideoTracks()[0];
  if (!track) return false;
  state.screenStream = stream;
  state.usingScreen = true;
  track.addEventListener('ended', () => { stopScreenShare(); });
  await replaceVideo(track);
  broadcastStatus();
  emit('self');
  emit('localMedia', state.localStream);
  return true;
}

/** Go back to the camera. */
export async function stopScreenShare() {
  if (!state.usingScreen) return;
  const screen = state.screenStream;
  state.usingScreen = false;
  state.screenStream = null;
  if (screen) for (const t of screen.getTracks()) t.stop();
  await replaceVideo(outgoingVideo());
  broadcastStatus();
  emit('self');
  emit('localMedia', state.localStream);
}
