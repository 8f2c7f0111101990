// Per-peer connection quality from getStats(): round-trip time, received
// bitrate, packet loss, decoded frames and audio level; and who is speaking.

import { state, emit } from './app.state.js';

const EVERY_MS = 700;
const SPEAKING_LEVEL = 0.02;
const poll = { timer: null, busy: false };

async function sample(peer, reports) {
  // in SFU mode every peer shares one connection: one report per tick, read per peer
  // through the ids of the tracks that are theirs (peer.trackIds)
  if (!reports.has(peer.pc)) reports.set(peer.pc, peer.pc.getStats());
  const report = await reports.get(peer.pc);
  const now = performance.now();
  const s = {
    rttMs: null, kbps: 0, lossPct: 0, framesDecoded: 0, frameWidth: 0, frameHeight: 0,
    audioLevel: 0, audioEnergy: 0, bytes: 0, at: now,
  };
  let lost = 0;
  let received = 0;
  report.forEach((r) => {
    if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded'
        && typeof r.currentRoundTripTime === 'number') {
      s.rttMs = Math.round(r.currentRoundTripTime * 1000);
    } else if (r.type === 'inbound-rtp') {
      if (peer.trackIds && !peer.trackIds.has(r.trackIdentifier)) return;
      s.bytes += r.bytesReceived || 0;
      lost += Math.max(0, r.packetsLost || 0);
      received += r.packetsReceived || 0;
      if (r.kind === 'video') {
        s.framesDecoded = r.framesDecoded || 0;
        s.frameWidth = r.frameWidth || 0;
        s.frameHeight = r.frameHeight || 0;
      } else if (r.kind === 'audio') {
        s.audioLevel = r.audioLevel || 0;
        s.audioEnergy = r.totalAudioEnergy || 0;
      }
    }
  });
  const prev = peer.stats;
  if (prev && now > prev.at) s.kbps = Math.max(0, Math.round(((s.bytes - prev.bytes) * 8) / (now - prev.at)));
  s.lossPct = lost + received ? (100 * lost) / (lost + received) : 0;
  if (peer.remote.muted) s.audioLevel = 0;
  peer.stats = s;
}

async function localLevel() {
  const peer = state.peers.values().next().value;
  if (!peer || state.muted) return 0;
  let level = 0;
  (await peer.pc.getStats()).forEach((r) => {
    if (r.type === 'media-source' && r.kind === 'audio') level = r.audioLevel || 0;
  });
  return level;
}

async function tick() {
  if (poll.busy) return;
  poll.busy = true;
  try {
    const peers = [...state.peers.values()];
    const reports = new Map();
    await Promise.all(peers.map((p) => sample(p, reports).catch(() => null)));
    let speaker = null;
    let loudest = SPEAKING_LEVEL;
    for (const p of peers) {
      if (p.stats && p.stats.audioLevel > loudest) { loudest = p.stats.audioLevel; speaker = p.id; }
    }
    const mine = await localLevel().catch(() => 0);
    if (mine > loudest) speaker = state.myId;
    if (state.topology !== 'sfu') state.activeSpeaker = speaker; // SFU: the server says
    emit('stats');
  } finally {
    poll.busy = false;
  }
}

/** Poll every peer's stats while in a room. */
export function startStats() {
  if (poll.timer === null) poll.timer = setInterval(tick, EVERY_MS);
}

/** Stop polling. */
export function stopStats() {
  clearInterval(poll.timer);
  poll.timer = null;
  state.activeSpeaker = null;
}

/** A short human label for a peer's link: "12 ms · 1.4 Mb/s · 0.3% loss". */
export function badgeText(stats) {
  if (!stats) return '';
  const parts = [];
  if (stats.rttMs !== null) parts.push(`${stats.rttMs} ms`);
  parts.push(stats.kbps >= 1000 ? `${(stats.kbps / 1000).toFixed(1)} Mb/s` : `${stats.kbps} kb/s`);
  parts.push(`${stats.lossPct.toFixed(1)}% loss`);
  return parts.join(' · ');
}

/**
 * The badge of one participant of an SFU room from the server's `quality` frame entry:
 * "score 87 · 12 ms · 1.4 Mb/s · 0.3% loss", and its grade for the colour.
 */
export function serverBadge(q) {
  if (!q) return { text: '', grade: 'unknown' };
  const parts = [`score ${q.score}`];
  if (typeof q.latency === 'number') parts.push(`${Math.round(q.latency)} ms`);
  const kbps = Math.round(q.bitrate_kbps || 0);
  parts.push(kbps >= 1000 ? `${(kbps / 1000).toFixed(1)} Mb/s` : `${kbps} kb/s`);
  parts.push(`${Number(q.packet_loss || 0).toFixed(1)}% loss`);
  return { text: parts.join(' · '), grade: q.grade || 'unknown', title: (q.warnings || []).join('\n') };
}

/** good | fair | poor, for the badge colour. */
export function quality(stats) {
  if (!stats) return 'unknown';
  if (stats.lossPct > 5 || (stats.rttMs ?? 0) > 400) return 'poor';
  if (stats.lossPct > 1 || (stats.rttMs ?? 0) > 150) return 'fair';
  return 'good';
}
