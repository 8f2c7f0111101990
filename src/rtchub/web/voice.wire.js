// Seed 002's voice protocol on /ws, for the voice page: one WebSocket (reconnected
// with backoff when it drops) and the two peer connections a page can hold, the
// sender's (our microphone to the server) and the receiver's (a broadcast to us).
//
// rtchub additions are used when the server sends them and ignored otherwise:
// `start_sending.name`, `available_streams.details`, `stream_available.name` and
// `.started_at`, and `stream_listeners` to the sender.

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];

/**
 * Open /ws and keep it open. `on.open()`, `on.message(msg)` and `on.down(attempt)` report
 * what happens. Returns {send(msg) -> bool, isOpen()}.
 */
export function openSocket(on) {
  const conn = { ws: null, attempt: 0 };
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const open = () => {
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    conn.ws = ws;
    ws.onopen = () => { conn.attempt = 0; on.open(); };
    ws.onmessage = (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch { return; }
      if (msg && typeof msg.type === 'string') on.message(msg);
    };
    ws.onclose = () => {
      if (conn.ws !== ws) return;
      const delay = BACKOFF_MS[Math.min(conn.attempt, BACKOFF_MS.length - 1)];
      conn.attempt += 1;
      on.down(conn.attempt, delay);
      setTimeout(open, delay);
    };
  };
  open();
  return {
    send(msg) {
      if (!conn.ws || conn.ws.readyState !== WebSocket.OPEN) return false;
      conn.ws.send(JSON.stringify(msg));
      return true;
    },
    isOpen: () => !!conn.ws && conn.ws.readyState === WebSocket.OPEN,
  };
}

function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') { resolve(); return; }
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
  });
}

/**
 * The sender's offer for `stream`'s audio, with every candidate in it (rtchub needs no
 * trickle). `onState(connectionState)` follows the connection.
 */
export async function senderOffer(stream, onState) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.onconnectionstatechange = () => onState(pc.connectionState);
  for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  return { pc, offer: { sdp: pc.localDescription.sdp, type: pc.localDescription.type } };
}

/** A peer connection for receiving a broadcast; `onTrack(stream)` gets its audio. */
export function receiverPeer(onTrack, onState) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.onconnectionstatechange = () => onState(pc.connectionState);
  pc.ontrack = (e) => onTrack(e.streams[0] || new MediaStream([e.track]));
  return pc;
}

/** Answer the server's offer on `pc`. */
export async function answerOffer(pc, offer) {
  await pc.setRemoteDescription(offer);
  await pc.setLocalDescription(await pc.createAnswer());
  return { sdp: pc.localDescription.sdp, type: pc.localDescription.type };
}

/** What an `error` frame means for a person, in one sentence. */
export function errorText(msg) {
  const code = msg.code || '';
  const raw = msg.message || msg.error || '';
  if (code === 'no_stream' || /no audio stream/i.test(raw)) return 'Nothing is live right now.';
  if (code === 'stream_ended' || /stream ended/i.test(raw)) return 'That broadcast has just ended.';
  if (code === 'capacity') return `The server is at its limit (${raw}). Try again in a while.`;
  if (code === 'codec_not_supported') return 'This browser offered no Opus audio, which the server needs.';
  if (code === 'rate_limited') return 'Too many requests: wait a moment and try again.';
  if (code === 'server_error' || /^server error/i.test(raw)) return `The server could not set up the audio: ${raw.replace(/^Server error:\s*/i, '')}`;
  return raw || 'Something went wrong.';
}
