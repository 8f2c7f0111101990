// The voice page: go live with your microphone, or listen to a live broadcast.
// `window.voice` shows what the page knows (tests read it): `state` (the socket's
// 'open', then the last peer connection's state, as the seed's page did), `streams`,
// `errors`, and the `sending` and `listening` sides.

import { openSocket, senderOffer, receiverPeer, answerOffer, errorText } from './voice.wire.js';
import { meter } from './ui.meter.js';

const $ = (id) => document.getElementById(id);
const none = () => {};

const voice = {
  state: 'connecting',
  streams: [],
  errors: [],
  details: {},      // stream_id -> {name, startedAt (ms), listeners}
  extended: false,  // the server sends rtchub's additions (details, names, listener counts)
  sending: {
    status: 'idle', streamId: null, name: '', since: 0, listeners: null, pc: null, mic: null, stopMeter: none,
  },
  listening: { status: 'idle', streamId: null, pc: null, stopMeter: none },
};
window.voice = voice;

const secure = !!(window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
const socket = openSocket({ open: onOpen, down: onDown, message: onMessage });

// -- the server connection -----------------------------------------------------------

function onOpen() {
  voice.state = 'open';
  const status = $('server-status');
  status.hidden = true;
  status.dataset.state = 'open';
}

function onDown(attempt, delay) {
  voice.state = 'connecting';
  const status = $('server-status');
  status.hidden = false;
  status.dataset.state = 'reconnecting';
  status.querySelector('.t').textContent = `Lost the server, reconnecting in ${Math.ceil(delay / 1000)} s…`;
  // the server ended what this connection was doing
  if (voice.sending.status !== 'idle') endSending('The connection to the server dropped, so your broadcast ended. Go live again when it is back.');
  if (voice.listening.status !== 'idle') endListening('The connection to the server dropped.');
  setStreams([], []);
}

function onMessage(msg) {
  switch (msg.type) {
    case 'available_streams':
      setStreams(Array.isArray(msg.streams) ? msg.streams : [], Array.isArray(msg.details) ? msg.details : null);
      break;
    case 'stream_available':
      if (!voice.streams.includes(msg.stream_id)) voice.streams.push(msg.stream_id);
      voice.details[msg.stream_id] = {
        name: typeof msg.name === 'string' ? msg.name : '',
        startedAt: typeof msg.started_at === 'number' ? msg.started_at * 1000 : Date.now(),
        listeners: voice.details[msg.stream_id] ? voice.details[msg.stream_id].listeners : null,
      };
      if (msg.stream_id === voice.sending.streamId) voice.sending.since = voice.details[msg.stream_id].startedAt;
      renderStreams();
      break;
    case 'stream_ended':
      voice.streams = voice.streams.filter((s) => s !== msg.stream_id);
      delete voice.details[msg.stream_id];
      if (msg.stream_id === voice.listening.streamId) endListening('The broadcast has ended.');
      if (msg.stream_id === voice.sending.streamId) endSending('Your broadcast ended on the server.');
      renderStreams();
      break;
    case 'stream_listeners':
      if (voice.details[msg.stream_id]) voice.details[msg.stream_id].listeners = (msg.webrtc | 0) + (msg.mp3 | 0);
      if (msg.stream_id === voice.sending.streamId) {
        voice.sending.listeners = { webrtc: msg.webrtc | 0, mp3: msg.mp3 | 0 };
        renderSending();
      }
      renderStreams();
      break;
    case 'sender_ready':
      onSenderReady(msg).catch((err) => endSending(`Could not start the broadcast: ${err.message || err}`));
      break;
    case 'webrtc_answer':
      if (voice.sending.pc) voice.sending.pc.setRemoteDescription(msg.answer).catch((err) => endSending(`The server's answer was refused: ${err.message}`));
      break;
    case 'webrtc_offer':
      onReceiverOffer(msg).catch((err) => endListening(`Could not play the broadcast: ${err.message || err}`));
      break;
    case 'error':
      onServerError(msg);
      break;
    default:
      break; // rooms frames on the shared /ws are not ours
  }
}

function onServerError(msg) {
  const text = errorText(msg);
  voice.errors.push(msg.message || msg.error || msg.code);
  if (voice.sending.status === 'asking' || voice.sending.status === 'connecting') endSending(text);
  else if (voice.listening.status === 'connecting') endListening(text);
  else showProblem('listen-problem', text);
}

function setStreams(ids, details) {
  voice.streams = [...ids];
  const known = voice.details;
  voice.details = {};
  for (const id of ids) voice.details[id] = known[id] || { name: '', startedAt: null, listeners: null };
  if (details) voice.extended = true;
  for (const d of details || []) {
    if (!d || !voice.details[d.stream_id]) continue;
    voice.details[d.stream_id] = {
      name: typeof d.name === 'string' ? d.name : '',
      startedAt: typeof d.started_at === 'number' ? d.started_at * 1000 : null,
      listeners: typeof d.listeners === 'number' ? d.listeners : null,
    };
  }
  renderStreams();
}

// -- sending -------------------------------------------------------------------------

async function goLive() {
  if (!secure || voice.sending.status !== 'idle') return;
  showProblem('send-problem', '');
  setSending('asking');
  let mic;
  try {
    mic = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (err) {
    const blocked = err && (err.name === 'NotAllowedError' || err.name === 'SecurityError');
    endSending(blocked
      ? 'Your microphone is blocked for this page. Allow it with the microphone icon in the address bar, then press Go live again.'
      : `Your microphone could not start: ${err && err.name === 'NotFoundError' ? 'no microphone was found' : err.message}.`);
    document.body.dataset.mic = blocked ? 'blocked' : 'failed';
    return;
  }
  document.body.dataset.mic = 'ok';
  voice.sending.mic = mic;
  voice.sending.stopMeter = meter($('send-meter'), mic);
  const name = $('stream-name').value.trim().slice(0, 64);
  voice.sending.name = name;
  if (!socket.send(name ? { type: 'start_sending', name } : { type: 'start_sending' })) {
    endSending('Not connected to the server yet: try again in a moment.');
    return;
  }
  setSending('connecting');
}

async function onSenderReady(msg) {
  const s = voice.sending;
  if (s.status !== 'connecting' || !s.mic) return;
  s.streamId = `stream_${msg.connection_id}`;
  const { pc, offer } = await senderOffer(s.mic, (cs) => {
    if (voice.sending.pc !== pc) return;
    voice.state = cs;
    if (cs === 'connected') setSending('live');
    if (cs === 'failed') endSending('The audio connection to the server failed.');
  });
  if (voice.sending.status !== 'connecting') { pc.close(); return; }
  s.pc = pc;
  socket.send({ type: 'webrtc_offer', offer });
  voice.state = 'sending';
}

function stopSending() {
  socket.send({ type: 'stop_stream' });
  endSending('');
}

function endSending(problem) {
  const s = voice.sending;
  if (s.pc) s.pc.close();
  if (s.mic) for (const t of s.mic.getTracks()) t.stop();
  s.stopMeter();
  Object.assign(s, {
    streamId: null, name: '', since: 0, listeners: null, pc: null, mic: null, stopMeter: none,
  });
  setSending('idle');
  showProblem('send-problem', problem);
}

function setSending(status) {
  voice.sending.status = status;
  if (status === 'live' && !voice.sending.since) voice.sending.since = Date.now();
  renderSending();
  renderStreams();
}

// -- listening -----------------------------------------------------------------------

function listen(streamId) {
  if (voice.sending.status !== 'idle') return;
  endListening('');
  showProblem('listen-problem', '');
  voice.listening.streamId = streamId;
  setListening('connecting');
  socket.send({ type: 'start_receiving', stream_id: streamId });
  // a click is a user gesture: let the <audio> element play when the track arrives
  $('player').play().catch(() => {});
}

async function onReceiverOffer(msg) {
  const l = voice.listening;
  if (l.status !== 'connecting') return;
  if (msg.stream_id) l.streamId = msg.stream_id;
  if (l.pc) l.pc.close();
  const pc = receiverPeer((stream) => {
    if (voice.listening.pc !== pc) return;
    const audio = $('player');
    audio.srcObject = stream;
    audio.play().catch(() => {});
    voice.listening.stopMeter();
    voice.listening.stopMeter = meter($('play-meter'), stream);
  }, (cs) => {
    if (voice.listening.pc !== pc) return;
    voice.state = cs;
    if (cs === 'connected') setListening('playing');
    if (cs === 'failed') endListening('The audio connection failed.');
  });
  l.pc = pc;
  const answer = await answerOffer(pc, msg.offer);
  if (voice.listening.pc === pc) socket.send({ type: 'webrtc_answer', answer });
}

function stopListening() {
  socket.send({ type: 'stop_stream' });
  endListening('');
}

function endListening(problem) {
  const l = voice.listening;
  if (l.pc) l.pc.close();
  l.stopMeter();
  $('player').srcObject = null;
  Object.assign(l, { streamId: null, pc: null, stopMeter: none });
  setListening('idle');
  if (problem) showProblem('listen-problem', problem);
}

function setListening(status) {
  voice.listening.status = status;
  renderListening();
  renderStreams();
}

// -- rendering -----------------------------------------------------------------------

function showProblem(id, text) {
  $(id).hidden = !text;
  $(id).textContent = text || '';
}

function since(ms) {
  const secs = Math.max(0, Math.floor((Date.now() - ms) / 1000));
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = secs % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}` : `${m}:${String(s).padStart(2, '0')}`;
}

function liveFor(ms) {
  const mins = Math.floor((Date.now() - ms) / 60000);
  if (mins < 1) return 'live for less than a minute';
  if (mins < 60) return `live for ${mins} min`;
  return `live for ${Math.floor(mins / 60)} h ${mins % 60} min`;
}

function mp3Url(streamId) {
  return `${location.origin}/stream/${streamId ? `${encodeURIComponent(streamId)}.mp3` : 'latest.mp3'}`;
}

function givenName(id) {
  const d = voice.details[id];
  if (d && d.name) return d.name;
  if (id === voice.sending.streamId && voice.sending.name) return voice.sending.name; // ours
  return '';
}

function nameOf(id) {
  const name = givenName(id);
  if (name) return name;
  const unnamed = voice.streams.filter((s) => !givenName(s));
  return unnamed.length > 1 ? `Unnamed broadcast ${unnamed.indexOf(id) + 1}` : 'Unnamed broadcast';
}

function renderSending() {
  const s = voice.sending;
  const card = $('send-card');
  const shown = s.status === 'asking' ? 'idle' : s.status;
  card.dataset.state = shown;
  $('live-mark').hidden = s.status !== 'live';
  $('send-state').textContent = s.status === 'live' ? 'You are live' : 'Connecting…';
  $('live-time').textContent = s.status === 'live' ? since(s.since) : '';
  const go = $('send');
  go.disabled = !secure || s.status !== 'idle';
  go.textContent = s.status === 'asking' ? 'Waiting for your microphone…' : 'Go live';
  const count = $('listeners');
  count.hidden = !(s.status === 'live' && s.listeners);
  if (s.listeners) {
    const total = s.listeners.webrtc + s.listeners.mp3;
    count.innerHTML = '';
    const b = document.createElement('b');
    b.textContent = String(total);
    if (total) {
      count.append(b, total === 1 ? ' person listening' : ' people listening');
      count.append(` (${s.listeners.webrtc} in a browser, ${s.listeners.mp3} via MP3)`);
    } else {
      count.append('Nobody is listening yet.');
    }
    count.dataset.count = String(total);
  }
  $('own-mp3').value = s.streamId ? mp3Url(s.streamId) : '';
}

function renderListening() {
  const l = voice.listening;
  $('listen-card').dataset.state = l.status;
  $('player-box').hidden = l.status === 'idle';
  $('player-state').textContent = l.status === 'playing' ? 'Playing' : 'Connecting…';
  $('player-name').textContent = l.streamId ? nameOf(l.streamId) : '';
}

function metaText(d) {
  const bits = [d.startedAt ? liveFor(d.startedAt) : 'live'];
  if (typeof d.listeners === 'number') bits.push(d.listeners === 1 ? '1 listener' : `${d.listeners} listeners`);
  return bits.join(' · ');
}

const clock = { ticks: 0 };

/** Once a second: the clocks move (the list itself is not rebuilt, so no click is lost). */
function tick() {
  clock.ticks += 1;
  // listener counts of other broadcasts come with the list: ask for it now and then
  if (voice.extended && clock.ticks % 15 === 0) socket.send({ type: 'get_available_streams' });
  if (voice.sending.status === 'live') $('live-time').textContent = since(voice.sending.since);
  for (const li of $('stream-list').children) {
    li.querySelector('.meta').textContent = metaText(voice.details[li.dataset.stream] || {});
  }
}

function renderStreams() {
  const list = $('stream-list');
  list.replaceChildren();
  for (const id of voice.streams) {
    const d = voice.details[id] || {};
    const mine = id === voice.sending.streamId;
    const li = document.createElement('li');
    li.dataset.stream = id;
    li.dataset.playing = String(id === voice.listening.streamId);
    const dot = document.createElement('span');
    dot.className = 'dotlive';
    const what = document.createElement('div');
    what.className = 'what';
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = mine ? `${nameOf(id)} (you)` : nameOf(id);
    const meta = document.createElement('span');
    meta.className = 'meta';
    meta.textContent = metaText(d);
    what.append(name, meta);
    li.append(dot, what);
    if (!mine) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'btn small primary';
      b.dataset.listen = id;
      b.textContent = id === voice.listening.streamId ? 'Listening' : 'Listen';
      b.disabled = id === voice.listening.streamId || voice.sending.status !== 'idle';
      if (voice.sending.status !== 'idle') b.title = 'Stop your broadcast to listen';
      li.append(b);
    }
    const copy = document.createElement('button');
    copy.type = 'button';
    copy.className = 'btn small ghost';
    copy.dataset.copyUrl = mp3Url(id);
    copy.textContent = 'MP3 link';
    copy.title = `Copy ${mp3Url(id)}`;
    li.append(copy);
    list.append(li);
  }
  $('no-streams').hidden = voice.streams.length > 0;
}

async function copyText(text, button) {
  let done = false;
  try {
    await navigator.clipboard.writeText(text);
    done = true;
  } catch { /* no clipboard on a page that is not secure */ }
  const old = button.textContent;
  button.textContent = done ? 'Copied' : 'Select and copy';
  setTimeout(() => { button.textContent = old; }, 1500);
  return done;
}

function wire() {
  $('send').addEventListener('click', goLive);
  $('stop').addEventListener('click', stopSending);
  $('stop-listening').addEventListener('click', stopListening);
  $('stream-list').addEventListener('click', (ev) => {
    const listenBtn = ev.target.closest('button[data-listen]');
    if (listenBtn) listen(listenBtn.dataset.listen);
    const copyBtn = ev.target.closest('button[data-copy-url]');
    if (copyBtn) copyText(copyBtn.dataset.copyUrl, copyBtn);
  });
  for (const b of document.querySelectorAll('button[data-copy]')) {
    b.addEventListener('click', () => {
      const input = $(b.dataset.copy);
      input.select();
      copyText(input.value, b);
    });
  }
  $('latest-mp3').value = mp3Url(null);
  if (!secure) {
    showProblem('send-problem', '');
    const box = $('send-problem');
    box.hidden = false;
    box.dataset.kind = 'error';
    box.innerHTML = '<strong>Broadcasting needs a secure page.</strong> '
      + '<span>Browsers give the microphone only to https:// pages and to localhost; this page was opened as '
      + '<code class="here"></code>. Start rtchub with <code>TLS_CERT_FILE</code> and <code>TLS_KEY_FILE</code> '
      + 'and open https://…/voice.html, or open <code class="local"></code> on the machine that runs rtchub. '
      + 'Listening works here as it is.</span>';
    box.querySelector('code.here').textContent = location.origin;
    box.querySelector('code.local').textContent = `http://localhost${location.port ? `:${location.port}` : ''}/voice.html`;
    document.body.dataset.secure = 'false';
  }
  // live clocks
  setInterval(tick, 1000);
  renderSending();
  renderListening();
  renderStreams();
}

wire();
