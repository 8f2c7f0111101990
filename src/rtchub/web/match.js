// rtchub /match: meet a random stranger over seed 001's Socket.IO events.
// Start queues you (request-room), match-done pairs you, the peer with the smaller socket ID
// sends the offer, ICE goes through send-new-ice-candidates, Next asks for a new stranger
// (request-room with the room just left, so the server does not pair you with them again at
// once), Stop ends the call. The stock socket.io client is vendored at /vendor/.

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'), statusBox: document.querySelector('.side .status'),
  name: $('name'), start: $('start'), next: $('next'), stop: $('stop'),
  problem: $('camera-problem'), problemTitle: $('camera-problem-title'),
  problemText: $('camera-problem-text'), retry: $('camera-retry'), avatar: $('remote-avatar'),
  local: $('local-video'), remote: $('remote-video'), remoteName: $('remote-name'),
  remoteThumb: $('remote-thumb'), remoteWaiting: $('remote-waiting'),
  placeholder: $('remote-placeholder'), messages: $('messages'), chatForm: $('chat-form'),
  chatInput: $('chat-input'), send: $('send'),
};

const app = {
  socket: null,       // Socket.IO connection, opened on the first Start
  stream: null,       // camera + microphone
  thumbnail: '',      // data: URL taken from the preview
  rtcConfig: { iceServers: [] },
  pc: null,           // RTCPeerConnection of the current match
  room: null,         // current room ID
  lastRoom: null,     // the room just left (sent with request-room on Next)
  remote: null,       // {socket, userName, userImage}
  pendingIce: [],     // candidates that arrived before the remote description
  retry: 0,           // timer queueing again after a rate-limited request-room
};
window.rtchubMatch = app;   // for tests and the curious

function setState(state, text) {
  document.body.dataset.state = state;
  ui.statusBox.dataset.state = state;
  ui.status.textContent = text;
  const inCall = state === 'matched';
  ui.next.disabled = !(inCall || state === 'left' || state === 'waiting');
  ui.stop.disabled = !(inCall || state === 'waiting');
  ui.start.disabled = state === 'waiting' || inCall;
  ui.chatInput.disabled = !inCall;
  ui.send.disabled = !inCall;
}

function note(text, cls = 'note', who = '') {
  const li = document.createElement('li');
  li.className = cls;
  if (who) {
    const b = document.createElement('b');
    b.textContent = who;
    li.append(b);
  }
  li.append(document.createTextNode(text));
  ui.messages.append(li);
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

const CAMERA_PROBLEM = {
  insecure: ['Camera and microphone need a secure page',
    'This page was opened over plain http:// at an address that is not localhost. Open it as '
    + 'https://… (rtchub serves HTTPS with TLS_CERT_FILE and TLS_KEY_FILE) or as http://localhost.'],
  blocked: ['Your camera is blocked',
    'Meeting a stranger needs your camera and microphone. Allow them with the camera icon in '
    + 'the address bar, then press Try again.'],
  missing: ['No camera found',
    'Meeting a stranger needs a camera and a microphone. Connect one, then press Try again.'],
  busy: ['Your camera is in use',
    'Another application is using your camera or microphone. Close it, then press Try again.'],
};

/** Show why the camera cannot start ('insecure', 'blocked', 'missing', 'busy'), or hide it (''). */
function cameraProblem(kind) {
  document.body.dataset.camera = kind || 'ok';
  ui.problem.hidden = !kind;
  if (!kind) return;
  const [title, text] = CAMERA_PROBLEM[kind];
  ui.problemTitle.textContent = title;
  ui.problemText.textContent = text;
  ui.retry.hidden = kind === 'insecure';
}

function problemOf(err) {
  const name = err && err.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') return 'blocked';
  if (name === 'NotReadableError') return 'busy';
  return 'missing';
}

async function startCamera() {
  if (app.stream) return;
  if (!window.isSecureContext || !navigator.mediaDevices) {
    cameraProblem('insecure');
    const err = new Error('this page is not a secure context');
    err.name = 'InsecureContext';
    throw err;
  }
  try {
    app.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 },
                                                             audio: true });
  } catch (err) {
    cameraProblem(problemOf(err));
    throw err;
  }
  cameraProblem('');
  ui.local.srcObject = app.stream;
  await new Promise((resolve) => {
    if (ui.local.readyState >= 2) resolve();
    else ui.local.addEventListener('loadeddata', resolve, { once: true });
  });
}

function takeThumbnail() {
  const canvas = document.createElement('canvas');
  canvas.width = 96;
  canvas.height = 72;
  canvas.getContext('2d').drawImage(ui.local, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL('image/jpeg', 0.7);
}

async function loadRtcConfig() {
  try {
    const resp = await fetch('/api/rtc-config');
    if (resp.ok) app.rtcConfig = await resp.json();
  } catch (err) {
    console.warn('rtc-config unavailable, using no ICE servers', err);
  }
}

function connect() {
  if (app.socket) return app.socket;
  // same origin, /socket.io/: WebSocket first (the server's fast path), long-polling
  // when a WebSocket cannot be opened (a proxy that refuses upgrades)
  const socket = io({ transports: ['websocket', 'polling'], tryAllTransports: true });
  socket.on('match-done', onMatch);
  socket.on('negotiation-call-offer', onOffer);
  socket.on('negotiation-call-answer', onAnswer);
  socket.on('new-ice-candidates', onCandidate);
  socket.on('stop-by-remote-user', onRemoteStop);
  socket.on('Message:recived', onMessage);
  socket.on('error', (err) => {
    if (err && err.code === 'rate_limited' && err.event === 'request-room') {
      // request-room is limited (1 per 5 s by default): queue again when allowed
      clearTimeout(app.retry);
      app.retry = setTimeout(requestRoom, Math.ceil(err.retry_after * 1000) + 50);
      setState('waiting', `Waiting… (you can meet someone new in ${Math.ceil(err.retry_after)} s)`);
      return;
    }
    if (err && err.code === 'rate_limited') {
      note(`Slow down: try again in ${Math.ceil(err.retry_after)} s.`);
    } else {
      note(`Server: ${err && (err.message || err.error) || 'error'}`);
    }
    if (document.body.dataset.state === 'waiting' && err && err.event === 'request-room') {
      setState('idle', 'Press Start to try again.');
    }
  });
  socket.on('disconnect', () => {
    endCall();
    setState('idle', 'Disconnected from the server. Press Start to reconnect.');
  });
  socket.on('connect_error', () => setState('error', 'Cannot reach the server; retrying…'));
  app.socket = socket;
  return socket;
}

function requestRoom() {
  const name = ui.name.value.trim();
  if (!name) {
    ui.name.focus();
    setState('idle', 'Enter your name first.');
    return;
  }
  localStorage.setItem('rtchub-name', name);
  connect().emit('request-room', { name, roomId: app.lastRoom, userImage: app.thumbnail });
  setState('waiting', 'Waiting for a stranger…');
}

function endCall() {
  if (app.room) app.lastRoom = app.room;
  if (app.pc) {
    app.pc.ontrack = app.pc.onicecandidate = null;
    app.pc.close();
  }
  app.pc = null;
  app.room = null;
  app.remote = null;
  app.pendingIce = [];
  ui.remote.srcObject = null;
  ui.placeholder.classList.remove('has-video');
  ui.remoteThumb.hidden = true;
  ui.avatar.hidden = true;
  ui.remoteWaiting.textContent = 'No one yet';
  ui.remoteName.textContent = 'Stranger';
}

function newPeer() {
  const pc = new RTCPeerConnection(app.rtcConfig);
  for (const track of app.stream.getTracks()) pc.addTrack(track, app.stream);
  pc.onicecandidate = (ev) => {
    if (!app.remote) return;
    app.socket.emit('send-new-ice-candidates', {
      to: app.remote.socket, candidate: ev.candidate ? ev.candidate.toJSON() : null });
  };
  pc.ontrack = (ev) => {
    if (ui.remote.srcObject !== ev.streams[0]) {
      ui.remote.srcObject = ev.streams[0];
      ui.placeholder.classList.add('has-video');
    }
  };
  return pc;
}

/**
 * Whether a partner's userImage may be shown: only an inline data:image/… URL (no request
 * leaves the page, nothing to track you with); anything else gets a placeholder.
 */
function safeImage(url) {
  return typeof url === 'string' && url.length <= 2_000_000 && /^data:image\/[a-z0-9.+-]+[;,]/i.test(url);
}

/** Name and picture of the partner in the remote tile (before their video arrives). */
function showPartner(details) {
  const name = String(details.userName || 'Stranger').slice(0, 64);
  ui.remoteName.textContent = name;
  ui.remoteWaiting.textContent = `Connecting to ${name}…`;
  const image = safeImage(details.userImage);
  ui.remoteThumb.hidden = !image;
  if (image) ui.remoteThumb.src = details.userImage;
  else ui.remoteThumb.removeAttribute('src');
  ui.avatar.hidden = image;
  ui.avatar.textContent = name.trim().slice(0, 1).toUpperCase() || '?';
  let hue = 0;
  for (const ch of name) hue = (hue * 31 + ch.charCodeAt(0)) % 360;
  ui.avatar.style.setProperty('--hue', hue);
}
app.safeImage = safeImage;
app.showPartner = showPartner;

async function onMatch({ roomId, remoteUserDetails }) {
  endCall();
  app.room = roomId;
  app.remote = remoteUserDetails;
  showPartner(remoteUserDetails);
  ui.messages.replaceChildren();
  note(`You are talking to ${remoteUserDetails.userName}.`);
  setState('matched', `Matched with ${remoteUserDetails.userName}`);
  app.pc = newPeer();
  if (app.socket.id < remoteUserDetails.socket) {   // exactly one side offers
    const pc = app.pc;
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    if (pc !== app.pc) return;
    app.socket.emit('negotiation-call-offer', {
      offer: { type: offer.type, sdp: offer.sdp }, roomId,
      name: ui.name.value.trim(), remoteSocketId: remoteUserDetails.socket });
  }
}

async function flushIce(pc) {
  const queued = app.pendingIce;
  app.pendingIce = [];
  for (const c of queued) await pc.addIceCandidate(c).catch((e) => console.warn(e));
}

async function onOffer({ remoteUserDetails, roomId, offer }) {
  const pc = app.pc;
  if (!pc || roomId !== app.room) return;
  await pc.setRemoteDescription(offer);
  await flushIce(pc);
  const ans = await pc.createAnswer();
  await pc.setLocalDescription(ans);
  if (pc !== app.pc) return;
  app.socket.emit('negotiation-call-answer', {
    ans: { type: ans.type, sdp: ans.sdp }, roomId, name: ui.name.value.trim(),
    remoteSocketId: remoteUserDetails.socket });
}

async function onAnswer({ ans, roomId }) {
  const pc = app.pc;
  if (!pc || roomId !== app.room) return;
  await pc.setRemoteDescription(ans);
  await flushIce(pc);
}

async function onCandidate({ candidate }) {
  const pc = app.pc;
  if (!pc || !candidate) return;
  if (!pc.remoteDescription) {
    app.pendingIce.push(candidate);
    return;
  }
  await pc.addIceCandidate(candidate).catch((e) => console.warn(e));
}

function onRemoteStop() {
  const name = app.remote ? app.remote.userName : 'The stranger';
  endCall();
  note(`${name} left.`);
  setState('left', `${name} left. Press Next to meet someone new.`);
}

function onMessage({ from, message }) {
  const mine = app.socket && from === app.socket.id;
  note(message, mine ? 'mine' : '', mine ? 'You' : (app.remote ? app.remote.userName : 'Stranger'));
}

ui.start.addEventListener('click', async () => {
  try {
    await startCamera();
    app.thumbnail = takeThumbnail();
  } catch (err) {
    setState('error', 'Camera unavailable: see the message over the video.');
    return;
  }
  requestRoom();
});

ui.retry.addEventListener('click', () => {
  startCamera().then(() => setState('idle', 'Camera ready. Enter your name and press Start.'),
    () => {});
});

ui.next.addEventListener('click', () => {
  // stop-call first: it is never rate limited, so the stranger is told at once
  if (app.socket && app.room) app.socket.emit('stop-call', { roomId: app.room,
    remoteSocketId: app.remote ? app.remote.socket : null, name: ui.name.value.trim() });
  endCall();
  ui.messages.replaceChildren();
  requestRoom();
});

ui.stop.addEventListener('click', () => {
  clearTimeout(app.retry);
  if (app.socket) app.socket.emit('stop-call', { roomId: app.room,
    remoteSocketId: app.remote ? app.remote.socket : null, name: ui.name.value.trim() });
  endCall();
  setState('idle', 'Stopped. Press Start to meet someone.');
});

ui.chatForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const message = ui.chatInput.value.trim();
  if (!message || !app.remote) return;
  app.socket.emit('newMessage', { message, roomId: app.room, remoteSocket: app.remote.socket });
  ui.chatInput.value = '';
});

ui.name.value = localStorage.getItem('rtchub-name') || '';
setState('idle', 'Enter your name and press Start.');
loadRtcConfig();
startCamera().catch(() => { /* the problem is on screen; asked again on Start */ });
