// Local media: camera and microphone, mute, camera off, screen share.
//
// Mute and camera-off disable the sent track (the other side receives silence
// and black frames) and are announced over the data channel so the other side
// shows an indicator. Screen share swaps the sent video track with
// replaceTrack: no renegotiation, and the camera comes back when the share ends.
// The lobby's preview (app.devices.js) becomes the call's stream on join.

import { state, emit, notify } from './app.state.js';
import { outgoingVideo, replaceVideo } from './app.peers.js';
import { broadcastStatus } from './app.channel.js';
import { mediaConstraints, takePreview, mediaProblem } from './app.devices.js';
import { inSfu, sfuStartScreen, sfuStopScreen } from './app.sfu.js';

const share = { stopping: null };

/** Get camera + microphone; falls back to microphone only, then to receive-only. */
export async function startLocalMedia() {
  if (state.localStream) return state.localStream;
  const preview = await takePreview();
  if (preview) {
    state.localStream = preview;
  } else if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    notify('warn', mediaProblem({ name: 'InsecureContext' }, 'camera and microphone'), 'insecure');
    return null;
  } else {
    const wanted = mediaConstraints();
    try {
      state.localStream = await navigator.mediaDevices.getUserMedia(wanted);
    } catch (err) {
      try {
        state.localStream = await navigator.mediaDevices.getUserMedia({ audio: wanted.audio });
        notify('warn', mediaProblem(err, 'camera'), 'camera_denied');
      } catch (err2) {
        state.localStream = null;
        notify('warn', mediaProblem(err2, 'camera and microphone'), 'media_denied');
      }
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

/** Apply the mute and camera-off flags to the tracks we send. */
export function applyTrackFlags() {
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

/**
 * Send `stream`'s video track instead of the camera (also the path tests drive).
 * `state.usingScreen` turns true once every call sends the screen, not before.
 */
export async function useScreenStream(stream) {
  const track = stream.getVideoTracks()[0];
  if (!track) return false;
  await share.stopping;
  track.addEventListener('ended', () => { stopScreenShare(); });
  if (inSfu()) { // a track of its own, beside the camera
    state.screenStream = stream;
    state.usingScreen = true;
    sfuStartScreen(stream);
  } else {
    await replaceVideo(track);
    state.screenStream = stream;
    state.usingScreen = true;
    await replaceVideo(outgoingVideo()); // a call set up during the swap sent the camera
  }
  broadcastStatus();
  emit('self');
  emit('localMedia', state.localStream);
  return true;
}

async function backToCamera() {
  const screen = state.screenStream;
  const camera = state.localStream ? state.localStream.getVideoTracks()[0] || null : null;
  if (inSfu()) {
    sfuStopScreen();
    state.usingScreen = false;
    state.screenStream = null;
    if (screen) for (const t of screen.getTracks()) t.stop();
  } else {
    await replaceVideo(camera);
    state.usingScreen = false;
    state.screenStream = null;
    if (screen) for (const t of screen.getTracks()) t.stop();
    await replaceVideo(outgoingVideo()); // a call set up during the swap sent the screen
  }
  broadcastStatus();
  emit('self');
  emit('localMedia', state.localStream);
}

/**
 * Go back to the camera. `state.usingScreen` turns false once every call sends the
 * camera again, so code that sees it false can rely on what is sent.
 */
export function stopScreenShare() {
  if (!state.usingScreen) return Promise.resolve();
  if (!share.stopping) share.stopping = backToCamera().finally(() => { share.stopping = null; });
  return share.stopping;
}
