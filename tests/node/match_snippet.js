// Seed 001's "Socket.io Testing" snippet, run with the stock socket.io-client against
// rtchub, grown into a whole call: two clients queue, get matched, chat, and one stops.
// The seed's client sends the seed's own placeholder image, verbatim.
// Usage: node match_snippet.js http://127.0.0.1:PORT
// Prints one JSON line per step; exits 0 when every step happened, 1 otherwise.
'use strict';
const io = require('socket.io-client');

const url = process.argv[2];
const image = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const say = (step, data) => console.log(JSON.stringify({ step, ...data }));
const fail = (why) => { console.log(JSON.stringify({ step: 'fail', why })); process.exit(1); };
setTimeout(() => fail('timed out'), 10000).unref();

function once(socket, event) {
  return new Promise((resolve) => socket.once(event, (data) => resolve(data)));
}

async function main() {
  // The seed's example, verbatim apart from the URL (default transports: polling, then upgrade).
  const client = io(url);
  let upgraded = false;
  client.io.on('open', () => client.io.engine.once('upgrade', () => { upgraded = true; }));
  client.emit('request-room', {
    name: 'Test User',
    roomId: null,
    userImage: 'data:image/png;base64,...'
  });
  const clientMatched = once(client, 'match-done');
  client.on('match-done', (data) => {
    console.log(JSON.stringify({ step: 'log', line: 'Match found: ' + data.roomId }));
  });
  await once(client, 'connect');
  say('connected', { id: client.id });

  // A second stranger, WebSocket only.
  const other = io(url, { transports: ['websocket'] });
  await once(other, 'connect');
  const otherMatched = once(other, 'match-done');
  other.emit('request-room', { name: 'Other User', roomId: null, userImage: image });
  const [a, b] = await Promise.all([clientMatched, otherMatched]);
  if (a.roomId !== b.roomId) fail('different rooms');
  if (a.remoteUserDetails.socket !== other.id || b.remoteUserDetails.socket !== client.id) {
    fail('wrong partners');
  }
  // each partner sees the other's userImage exactly as it was sent (the seed's placeholder too)
  say('matched', { roomId: a.roomId, a: a.remoteUserDetails.userName,
                   b: b.remoteUserDetails.userName,
                   image: a.remoteUserDetails.userImage === image
                     && b.remoteUserDetails.userImage === 'data:image/png;base64,...' });

  const offerSeen = once(other, 'negotiation-call-offer');
  client.emit('negotiation-call-offer', { offer: { type: 'offer', sdp: 'v=0\r\n' },
    roomId: a.roomId, name: 'Test User', remoteSocketId: other.id });
  const offer = await offerSeen;
  say('offer', { from: offer.remoteUserDetails.socket === client.id,
                 userName: offer.remoteUserDetails.userName });

  const heard = [once(client, 'Message:recived'), once(other, 'Message:recived')];
  client.emit('newMessage', { message: 'hello from node', roomId: a.roomId,
                              remoteSocket: other.id });
  const [m1, m2] = await Promise.all(heard);
  say('chat', { both: m1.message === m2.message && m1.from === client.id, message: m2.message });

  const refused = once(client, 'error');
  client.emit('send-new-ice-candidates', { to: 'not-my-partner', candidate: null });
  say('refused', { code: (await refused).code });

  const stopped = once(other, 'stop-by-remote-user');
  client.emit('stop-call', { roomId: a.roomId, remoteSocketId: other.id, name: 'Test User' });
  await stopped;
  say('stopped', { transport: client.io.engine.transport.name, upgraded });

  // Long-polling only works too.
  const polling = io(url, { transports: ['polling'] });
  await once(polling, 'connect');
  const err = once(polling, 'error');
  polling.emit('newMessage', { message: 'nobody here', roomId: null, remoteSocket: other.id });
  say('polling', { transport: polling.io.engine.transport.name, code: (await err).code });
  client.close();
  other.close();
  polling.close();
}

main().then(() => process.exit(0), (err) => fail(String(err)));
