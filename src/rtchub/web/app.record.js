// Recording: the call grid drawn onto a canvas plus every voice mixed into one
// track, recorded with MediaRecorder as WebM and downloaded on stop.

import { state, emit, on, notify } from './app.state.js';
import { bestGrid } from './app.layout.js';

const FPS = 15;
const WIDTH = 1280;
const HEIGHT = 720;
const rec = { timer: null, audio: null, mixed: new WeakSet(), dest: null, done: null };

function pickMime() {
  const kinds = ['video/webm;codecs=vp8,opus', 'video/webm;codecs=vp9,opus', 'video/webm'];
  return kinds.find((k) => MediaRecorder.isTypeSupported(k)) || '';
}

function drawFrame(ctx) {
  const tiles = [...document.querySelectorAll('#grid .tile')];
  ctx.fillStyle = '#0f1216';
  ctx.fillRect(0, 0, WIDTH, HEIGHT);
  const n = Math.max(1, tiles.length);
  const gap = 8;
  const { cols, w } = bestGrid(n, WIDTH - 2 * gap, HEIGHT - 2 * gap, gap);
  const h = (w * 9) / 16;
  const rows = Math.ceil(n / cols);
  const top = (HEIGHT - rows * h - (rows - 1) * gap) / 2;
  tiles.forEach((tile, i) => {
    const row = Math.floor(i / cols);
    const inRow = Math.min(cols, n - row * cols);
    const left = (WIDTH - inRow * w - (inRow - 1) * gap) / 2;
    const x = left + (i % cols) * (w + gap);
    const y = top + row * (h + gap);
    ctx.fillStyle = '#1b2027';
    ctx.fillRect(x, y, w, h);
    const video = tile.querySelector('video');
    if (video && video.videoWidth && tile.dataset.camoff !== 'true') {
      const scale = Math.min(w / video.videoWidth, h / video.videoHeight);
      const vw = video.videoWidth * scale;
      const vh = video.videoHeight * scale;
      ctx.drawImage(video, x + (w - vw) / 2, y + (h - vh) / 2, vw, vh);
    }
    ctx.font = '600 16px system-ui, sans-serif';
    const label = tile.dataset.name || '';
    ctx.fillStyle = 'rgba(10,12,15,.65)';
    ctx.fillRect(x + 10, y + h - 38, ctx.measureText(label).width + 20, 28);
    ctx.fillStyle = '#fff';
    ctx.fillText(label, x + 20, y + h - 18);
  });
}

function mix(stream) {
  if (!rec.audio || !stream || rec.mixed.has(stream) || !stream.getAudioTracks().length) return;
  rec.mixed.add(stream);
  rec.audio.createMediaStreamSource(stream).connect(rec.dest);
}

/** Start recording the call; returns false when already recording or unsupported. */
export function startRecording() {
  if (state.recorder) return false;
  if (typeof MediaRecorder === 'undefined') {
    notify('warn', 'This browser cannot record.', 'no_recorder');
    return false;
  }
  const canvas = document.createElement('canvas');
  canvas.width = WIDTH;
  canvas.height = HEIGHT;
  const ctx = canvas.getContext('2d');
  drawFrame(ctx);
  rec.timer = setInterval(() => drawFrame(ctx), 1000 / FPS);
  const out = canvas.captureStream(FPS);
  try {
    rec.audio = new AudioContext();
    rec.dest = rec.audio.createMediaStreamDestination();
    rec.mixed = new WeakSet();
    mix(state.localStream);
    for (const peer of state.peers.values()) mix(peer.stream);
    out.addTrack(rec.dest.stream.getAudioTracks()[0]);
  } catch (err) {
    console.warn('recording without audio', err);
    rec.audio = null;
  }
  const mimeType = pickMime();
  state.recordedChunks = [];
  const recorder = new MediaRecorder(out, mimeType ? { mimeType, videoBitsPerSecond: 2500000 } : {});
  recorder.ondataavailable = (ev) => { if (ev.data && ev.data.size) state.recordedChunks.push(ev.data); };
  recorder.onstop = () => finish(out);
  recorder.start(1000);
  state.recorder = recorder;
  emit('self');
  return true;
}

function finish(out) {
  clearInterval(rec.timer);
  for (const t of out.getTracks()) t.stop();
  if (rec.audio) rec.audio.close();
  rec.audio = null;
  const blob = new Blob(state.recordedChunks, { type: 'video/webm' });
  const a = document.createElement('a');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  a.href = URL.createObjectURL(blob);
  a.download = `rtchub-${state.roomId || 'call'}-${stamp}.webm`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  state.recorder = null;
  emit('self');
  if (rec.done) rec.done(blob);
  rec.done = null;
}

/** Stop recording and download the WebM; resolves with the Blob. */
export function stopRecording() {
  const recorder = state.recorder;
  if (!recorder) return Promise.resolve(null);
  const done = new Promise((resolve) => { rec.done = resolve; });
  recorder.stop();
  return done;
}

on('peerMedia', (peer) => mix(peer.stream));
