// Camera and microphone before and during a call: the lobby's preview, the device
// pickers (in the lobby, and in the Devices panel during a call: the same element
// moves), the microphone level meter, and switching a device without a new offer.
//
// The preview's stream becomes the call's `state.localStream` on join (takePreview),
// so the camera is opened once.

import { state, emit, on, notify } from './app.state.js';
import { replaceOutgoing } from './app.peers.js';
import { meter } from './ui.meter.js';

const CAMERA = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
const KEY = 'rtchub.devices';
const $ = (sel) => document.querySelector(sel);

const dev = {
  stream: null,      // the lobby's preview stream (not yet the call's)
  starting: null,    // the preview's getUserMedia in flight
  status: 'off',     // off | starting | live | nocamera | denied | missing | busy | insecure
  problem: '',
  chosen: {},        // {camera, mic}: device IDs picked by the person
  stopMeter: () => {},
  metered: null,     // the audio track the meter listens to
  meterShown: true,  // the meter is on screen (lobby, or the call's Devices panel)
};

function load() {
  try { return JSON.parse(localStorage.getItem(KEY) || '{}') || {}; } catch { return {}; }
}

function save() {
  try { localStorage.setItem(KEY, JSON.stringify(dev.chosen)); } catch { /* private mode */ }
}

/** getUserMedia constraints for the devices the person picked (the defaults otherwise). */
export function mediaConstraints() {
  const video = { ...CAMERA };
  if (dev.chosen.camera) video.deviceId = dev.chosen.camera;
  const audio = dev.chosen.mic ? { deviceId: dev.chosen.mic } : true;
  return { audio, video };
}

/** Whether this page may use camera and microphone at all (a secure context). */
export function mediaAllowedHere() {
  return !!(window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

/** A sentence for a getUserMedia failure: what happened and what to do. */
export function mediaProblem(err, what) {
  const name = err && err.name;
  if (name === 'InsecureContext') {
    return `This page needs HTTPS (or localhost) to use your ${what}: open it as https://… `
      + '(rtchub serves HTTPS with TLS_CERT_FILE and TLS_KEY_FILE) or as http://localhost. '
      + 'You can still see and hear the others.';
  }
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return `Access to your ${what} was blocked. Allow it in the browser's site settings `
      + '(the camera icon in the address bar), then leave and join again. '
      + 'You can still see and hear the others.';
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError') {
    return `No ${what} was found. Others can still reach you.`;
  }
  if (name === 'NotReadableError') return `Your ${what} is in use by another application. Close it and try again.`;
  return `Could not start your ${what}: ${err && err.message ? err.message : err}`;
}

function statusOf(err) {
  const name = err && err.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') return 'denied';
  if (name === 'NotReadableError') return 'busy';
  return 'missing';
}

const PREVIEW_TEXT = {
  off: 'Camera and microphone are off.',
  starting: 'Starting your camera…',
  denied: 'Camera and microphone are blocked for this page. Allow them with the camera icon '
    + 'in the address bar, then press Try again. You can join anyway to see and hear the others.',
  missing: 'No camera or microphone was found. You can join anyway to see and hear the others.',
  busy: 'Your camera or microphone is in use by another application. Close it, then press Try again.',
  insecure: 'Camera and microphone need a secure page. Open this app as https://… (rtchub serves '
    + 'HTTPS with TLS_CERT_FILE and TLS_KEY_FILE) or as http://localhost. You can join anyway '
    + 'to see and hear the others.',
};

/** Start the lobby's camera and microphone preview (no-op while one runs). */
export function startPreview() {
  if (dev.stream || dev.starting) return dev.starting || Promise.resolve(dev.stream);
  if (!mediaAllowedHere()) {
    setStatus('insecure');
    return Promise.resolve(null);
  }
  setStatus('starting');
  dev.starting = openPreview().finally(() => { dev.starting = null; });
  return dev.starting;
}

async function openPreview() {
  const wanted = mediaConstraints();
  let stream = null;
  try {
    stream = await navigator.mediaDevices.getUserMedia(wanted);
  } catch (err) {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: wanted.audio });
      dev.problem = mediaProblem(err, 'camera');
    } catch (err2) {
      setStatus(statusOf(err2));
      return null;
    }
  }
  if (dev.status !== 'starting') { // turned off (or joined) meanwhile
    for (const t of stream.getTracks()) t.stop();
    return null;
  }
  dev.stream = stream;
  applyFlags(stream);
  setStatus(stream.getVideoTracks().length ? 'live' : 'nocamera');
  listDevices();
  return stream;
}

/** Stop the preview (after Leave, the camera light goes out). */
export function stopPreview(status = 'off') {
  if (dev.stream) for (const t of dev.stream.getTracks()) t.stop();
  dev.stream = null;
  setStatus(status);
}

/** Hand the preview's stream to the call (null when there is none). */
export async function takePreview() {
  if (dev.starting) await dev.starting;
  const stream = dev.stream;
  dev.stream = null;
  setStatus('off'); // the call owns the tracks now; the hidden preview lets go of them
  return stream;
}

function applyFlags(stream) {
  for (const t of stream.getAudioTracks()) t.enabled = !state.muted;
  for (const t of stream.getVideoTracks()) t.enabled = !state.cameraOff;
}

function setStatus(status) {
  dev.status = status;
  if (status !== 'nocamera') dev.problem = '';
  renderPreview();
}

function renderPreview() {
  const box = $('#preview');
  const video = $('#preview-video');
  box.dataset.state = dev.status;
  box.dataset.camoff = String(state.cameraOff || dev.status === 'nocamera');
  box.dataset.muted = String(state.muted);
  $('#mic-meter').dataset.off = String(state.muted); // muted: what the microphone hears, dimmed
  if (video.srcObject !== dev.stream) video.srcObject = dev.stream;
  const text = dev.status === 'nocamera' ? (dev.problem || 'No camera: the others will hear you.')
    : PREVIEW_TEXT[dev.status] || '';
  $('#preview-msg .t').textContent = text;
  $('#preview-retry').hidden = !['off', 'denied', 'busy', 'missing'].includes(dev.status);
  $('#preview-retry').textContent = dev.status === 'off' ? 'Turn on camera and microphone' : 'Try again';
  remeter();
}

/** The stream whose microphone the meter shows: the call's, else the preview's. */
function meteredStream() {
  return state.localStream || dev.stream;
}

function remeter() {
  const stream = dev.meterShown ? meteredStream() : null;
  const track = stream ? stream.getAudioTracks()[0] || null : null;
  if (track === dev.metered) return;
  dev.stopMeter();
  dev.metered = track;
  dev.stopMeter = meter($('#mic-meter'), track ? new MediaStream([track]) : null);
}

/** Fill the camera and microphone pickers (labels exist once permission was given). */
export async function listDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const all = await navigator.mediaDevices.enumerateDevices();
  const stream = meteredStream();
  const inUse = {
    videoinput: stream && stream.getVideoTracks()[0] ? stream.getVideoTracks()[0].getSettings().deviceId : null,
    audioinput: stream && stream.getAudioTracks()[0] ? stream.getAudioTracks()[0].getSettings().deviceId : null,
  };
  for (const [kind, sel] of [['videoinput', '#camera-select'], ['audioinput', '#mic-select']]) {
    const select = $(sel);
    const list = all.filter((d) => d.kind === kind && d.deviceId);
    select.replaceChildren(...list.map((d, i) => {
      const opt = document.createElement('option');
      opt.value = d.deviceId;
      opt.textContent = d.label || `${kind === 'videoinput' ? 'Camera' : 'Microphone'} ${i + 1}`;
      return opt;
    }));
    const current = inUse[kind] || dev.chosen[kind === 'videoinput' ? 'camera' : 'mic'];
    if (current && list.some((d) => d.deviceId === current)) select.value = current;
    select.disabled = list.length < 2 || !stream;
    select.closest('label').dataset.count = String(list.length);
  }
  $('#devices').dataset.ready = 'true';
  emit('devices');
}

/**
 * Use another camera or microphone: in the lobby the preview switches, in a call the new
 * track replaces the old one on every call (no renegotiation). Returns whether it worked.
 */
export async function useDevice(kind, deviceId) {
  dev.chosen[kind === 'videoinput' ? 'camera' : 'mic'] = deviceId;
  save();
  const target = meteredStream();
  if (!target) {
    await startPreview();
    return !!dev.stream;
  }
  const audio = kind === 'audioinput';
  const wanted = audio ? { audio: { deviceId: { exact: deviceId } } }
    : { video: { ...CAMERA, deviceId: { exact: deviceId } } };
  let fresh;
  try {
    fresh = (await navigator.mediaDevices.getUserMedia(wanted)).getTracks()[0];
  } catch (err) {
    notify('warn', mediaProblem(err, audio ? 'microphone' : 'camera'), 'device_failed');
    listDevices();
    return false;
  }
  fresh.enabled = audio ? !state.muted : !state.cameraOff;
  if (target === state.localStream && (audio || !state.usingScreen)) {
    await replaceOutgoing(audio ? 'audio' : 'video', fresh);
  }
  // the old device is let go only once every call sends the new one
  const old = audio ? target.getAudioTracks()[0] : target.getVideoTracks()[0];
  if (old) { target.removeTrack(old); old.stop(); }
  target.addTrack(fresh);
  remeter();
  emit('localMedia', state.localStream);
  renderPreview();
  listDevices();
  return true;
}

/** Wire the preview and the pickers. */
export function installDevices() {
  dev.chosen = load();
  $('#preview-retry').addEventListener('click', () => startPreview());
  $('#camera-select').addEventListener('change', (ev) => useDevice('videoinput', ev.target.value));
  $('#mic-select').addEventListener('change', (ev) => useDevice('audioinput', ev.target.value));
  if (navigator.mediaDevices && 'ondevicechange' in navigator.mediaDevices) {
    navigator.mediaDevices.addEventListener('devicechange', () => listDevices());
  }
  on('self', () => { if (dev.stream) applyFlags(dev.stream); renderPreview(); });
  // measure only while someone can see the meter (not behind a closed Devices panel)
  new IntersectionObserver(([entry]) => {
    dev.meterShown = entry.isIntersecting;
    remeter();
  }).observe($('#mic-meter'));
  on('localMedia', () => { remeter(); listDevices(); });
  renderPreview();
}
