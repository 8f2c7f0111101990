// What the stock socket.io-client negotiates with a server: for a WebSocket-only client and
// for the default one (polling, then the upgrade), the Sec-WebSocket-Extensions the server
// accepted (Node's ws offers permessage-deflate) once an ack round trip proved the socket works.
// Usage: node deflate_check.js http://127.0.0.1:PORT
// Prints one JSON line {websocket: {...}, upgraded: {...}}; exits 1 on a failure or timeout.
'use strict';
const io = require('socket.io-client');

const url = process.argv[2];
setTimeout(() => { console.log(JSON.stringify({ fail: 'timed out' })); process.exit(1); }, 10000).unref();

async function probe(opts) {
  const client = io(url, { reconnection: false, forceNew: true, ...opts });
  if (!opts.transports) {
    await new Promise((resolve) => client.io.on('open', () => client.io.engine.once('upgrade', resolve)));
  } else {
    await new Promise((resolve) => client.once('connect', resolve));
  }
  // an event the server refuses answers in order: the WebSocket carries both ways
  const refused = new Promise((resolve) => client.once('error', resolve));
  client.emit('stop-call', {});
  const err = await refused;
  const transport = client.io.engine.transport;
  const out = { transport: transport.name, extensions: transport.ws.extensions, code: err.code };
  client.disconnect();
  return out;
}

(async () => {
  const websocket = await probe({ transports: ['websocket'] });
  const upgraded = await probe({});
  console.log(JSON.stringify({ websocket, upgraded }));
  process.exit(0);
})().catch((e) => { console.log(JSON.stringify({ fail: String(e) })); process.exit(1); });
