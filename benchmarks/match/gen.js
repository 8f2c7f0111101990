// Load generator for Socket.IO matchmaking: the stock socket.io-client 4 over WebSocket.
// One complete match: both sides request-room, match-done to both, the lower socket ID
// sends negotiation-call-offer, the other answers, each side sends two ICE candidates
// (the answerer after its answer, the offerer when the answer arrives), the offerer sends
// stop-call once it has the answer and both candidates, and the match is complete when
// the answerer gets stop-by-remote-user with both candidates in hand.
//
// Usage: node gen.js URL CLIENTS MODE RATE DURATION [SEED]
//   MODE max:  closed loop, every client requests a room again as soon as its match ends
//   MODE rate: open loop, RATE matches/s started evenly (two idle clients request
//              back to back), clients wait idle between matches
// Prints {"ready": n} once every client is connected, runs when a line arrives on stdin,
// and prints one JSON result line at the end.
'use strict';
const io = require('socket.io-client');
const crypto = require('crypto');
const { monitorEventLoopDelay } = require('perf_hooks');

const [url, clientsArg, mode, rateArg, durationArg, seedArg] = process.argv.slice(2);
const nClients = Number(clientsArg);
const rate = Number(rateArg);
const duration = Number(durationArg) * 1000;
let seed = Number(seedArg || 1);
const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const hex = (n) => crypto.randomBytes(n).toString('hex');
const now = () => performance.now();

const IMAGE = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

function sdp(kind) {
  // Chrome-like audio+video description with random secrets (about 3 KB)
  const ufrag = hex(2), pwd = hex(12), fp = hex(32).match(/../g).join(':').toUpperCase();
  const lines = ['v=0', `o=- ${Math.floor(rand() * 1e15)} 2 IN IP4 127.0.0.1`, 's=-', 't=0 0',
    'a=group:BUNDLE 0 1', 'a=extmap-allow-mixed', 'a=msid-semantic: WMS'];
  const media = [['audio', ['111 opus/48000/2', '63 red/48000/2', '9 G722/8000', '0 PCMU/8000',
    '8 PCMA/8000', '13 CN/8000', '110 telephone-event/48000']],
  ['video', ['96 VP8/90000', '97 rtx/90000', '98 VP9/90000', '99 rtx/90000', '100 H264/90000',
    '101 rtx/90000', '45 AV1/90000', '46 rtx/90000']]];
  media.forEach(([m, codecs], mid) => {
    lines.push(`m=${m} 9 UDP/TLS/RTP/SAVPF ${codecs.map((c) => c.split(' ')[0]).join(' ')}`,
      'c=IN IP4 0.0.0.0', 'a=rtcp:9 IN IP4 0.0.0.0', `a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`,
      'a=ice-options:trickle', `a=fingerprint:sha-256 ${fp}`,
      `a=setup:${kind === 'offer' ? 'actpass' : 'active'}`, `a=mid:${mid}`,
      'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
      'a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
      'a=sendrecv', `a=msid:- ${hex(16)}`, 'a=rtcp-mux', 'a=rtcp-rsize');
    for (const c of codecs) {
      const [pt, name] = c.split(' ');
      lines.push(`a=rtpmap:${pt} ${name}`, `a=rtcp-fb:${pt} transport-cc`, `a=rtcp-fb:${pt} nack`,
        `a=fmtp:${pt} minptime=10;useinbandfec=1`);
    }
    const ssrc = Math.floor(rand() * 4294967295);
    lines.push(`a=ssrc:${ssrc} cname:${hex(8)}`, `a=ssrc:${ssrc} msid:- ${hex(16)}`);
  });
  return { type: kind, sdp: lines.join('\r\n') + '\r\n' };
}

function candidate() {
  return { candidate: `candidate:${Math.floor(rand() * 2147483647)} 1 udp 2122260223 127.0.0.1 `
    + `${10000 + Math.floor(rand() * 50000)} typ host generation 0 ufrag ${hex(2)} network-id 1`,
  sdpMid: '0', sdpMLineIndex: 0 };
}

const stats = { matches: 0, errors: 0, latencies: [], slow: [], shortfall: 0, started: 0 };
let running = false;   // inside the measuring window (latencies and matches count)
let draining = false;  // window over: no new requests
const idle = [];       // clients between matches (rate mode)

function makeClient(i) {
  const s = io(url, { transports: ['websocket'], reconnection: false, forceNew: true,
    timeout: 60000 });
  const c = { s, i, asked: 0, room: null, partner: null, offerer: false, gotAnswer: false,
    cands: 0, busy: false };
  const finish = () => {
    c.busy = false; c.room = null;
    if (draining) return;
    if (mode === 'max') request(c); else idle.push(c);
  };
  s.on('match-done', (d) => {
    if (running) {
      const ms = now() - c.asked;
      stats.latencies.push(ms);
      // when the slow ones were asked (ms since the epoch), to line up with the server's
      if (ms > 20 && stats.slow.length < 5000) {
        stats.slow.push([Math.round(performance.timeOrigin + c.asked), Math.round(ms)]);
      }
    }
    c.room = d.roomId; c.partner = d.remoteUserDetails.socket;
    c.offerer = s.id < c.partner; c.gotAnswer = false; c.cands = 0;
    if (c.offerer) {
      s.emit('negotiation-call-offer', { offer: sdp('offer'), roomId: c.room, name: `user${i}`,
        remoteSocketId: c.partner });
    }
  });
  s.on('negotiation-call-offer', (d) => {
    s.emit('negotiation-call-answer', { ans: sdp('answer'), roomId: d.roomId, name: `user${i}`,
      remoteSocketId: d.remoteUserDetails.socket });
    s.emit('send-new-ice-candidates', { to: c.partner, candidate: candidate() });
    s.emit('send-new-ice-candidates', { to: c.partner, candidate: candidate() });
  });
  s.on('negotiation-call-answer', () => {
    c.gotAnswer = true;
    s.emit('send-new-ice-candidates', { to: c.partner, candidate: candidate() });
    s.emit('send-new-ice-candidates', { to: c.partner, candidate: candidate() });
    maybeStop();
  });
  s.on('new-ice-candidates', () => { c.cands += 1; maybeStop(); });
  function maybeStop() {
    if (c.offerer && c.gotAnswer && c.cands === 2) {
      s.emit('stop-call', { roomId: c.room, remoteSocketId: c.partner, name: `user${i}` });
      finish();
    }
  }
  s.on('stop-by-remote-user', () => {
    if (c.cands !== 2) stats.errors += 1;
    stats.matches += 1;
    finish();
  });
  s.on('error', () => { stats.errors += 1; });
  s.on('disconnect', (why) => { if (!draining) { stats.errors += 1; console.error('disconnect', why); } });
  return c;
}

function request(c) {
  c.busy = true;
  c.asked = now();
  c.s.emit('request-room', { name: `user${c.i}`, roomId: null, userImage: IMAGE });
}

async function main() {
  const clients = [];
  for (let i = 0; i < nClients; i += 1) {
    clients.push(makeClient(i));
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 20));
  }
  await Promise.all(clients.map((c) => (c.s.connected ? null
    : new Promise((resolve, reject) => { c.s.once('connect', resolve); c.s.once('connect_error', reject); }))));
  console.log(JSON.stringify({ ready: clients.length }));
  await new Promise((resolve) => process.stdin.once('data', resolve));
  const cpu0 = process.cpuUsage();
  // the generator's own event-loop delay: a latency sample can only be as good as this
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const t0 = now();
  running = true;
  if (mode === 'max') {
    for (const c of clients) request(c);
  } else {
    idle.push(...clients);
    const timer = setInterval(() => {
      const due = Math.floor(((now() - t0) / 1000) * rate);
      while (stats.started < due) {
        if (idle.length < 2) { stats.shortfall += 1; stats.started += 1; continue; }
        request(idle.shift()); request(idle.shift());
        stats.started += 1;
      }
    }, 1);
    setTimeout(() => clearInterval(timer), duration);
  }
  await new Promise((r) => setTimeout(r, duration));
  running = false;
  const matches = stats.matches;
  const wall = (now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  loopDelay.disable();
  draining = true;
  // let the matches in flight end so the server is idle when its CPU is read
  const quiet = now();
  while (clients.some((c) => c.room !== null) && now() - quiet < 5000) await new Promise((r) => setTimeout(r, 10));
  const lat = stats.latencies.sort((a, b) => a - b);
  const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null);
  const result = JSON.stringify({ matches, wall, errors: stats.errors, shortfall: stats.shortfall,
    total_matches: stats.matches, gen_cpu_s: (cpu.user + cpu.system) / 1e6,
    p50_ms: q(0.5), p99_ms: q(0.99), max_ms: lat.length ? lat[lat.length - 1] : null,
    samples: lat.length, slow: stats.slow, loop_p99_ms: loopDelay.percentile(99) / 1e6,
    loop_max_ms: loopDelay.max / 1e6, stuck: clients.filter((c) => c.room !== null).length });
  for (const c of clients) c.s.disconnect();
  // a pipe is written asynchronously: exit once the whole line is out
  process.stdout.write(`${result}\n`, () => process.exit(0));
}
main().catch((e) => { console.error(e); process.exit(1); });
