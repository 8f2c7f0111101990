// A minimal seed 001 ("Live Loop") matchmaking server written with the stock socket.io 4
// package: the server a user of the seed would run, as the reference for rtchub's
// Socket.IO matchmaking. Events and payloads as seed 001 documents them; no rate limits
// and no payload validation beyond what routing needs (that only flatters this server).
// Usage: node node_server.js PORT   (prints "listening PORT" when ready)
'use strict';
const http = require('http');
const crypto = require('crypto');
const { Server } = require('socket.io');

const port = Number(process.argv[2] || 3000);
const httpServer = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ status: 'OK', message: 'Live Loop reference server' }));
});
// socket.io 4's defaults (perMessageDeflate off, both transports) apart from the buffer
const io = new Server(httpServer, { cors: { origin: '*' }, maxHttpBufferSize: 1e6 });

const queue = [];                 // sockets waiting for a partner, oldest first
const rooms = new Map();          // roomId -> [socketA, socketB]
const roomOf = new Map();         // socket.id -> roomId
const names = new Map();          // socket.id -> { name, image }

function partnerOf(socket) {
  const room = roomOf.get(socket.id);
  if (room === undefined) return undefined;
  const pair = rooms.get(room);
  return pair[0] === socket ? pair[1] : pair[0];
}

function endRoom(socket, notify) {
  const room = roomOf.get(socket.id);
  if (room === undefined) return false;
  const other = partnerOf(socket);
  rooms.delete(room);
  roomOf.delete(socket.id);
  roomOf.delete(other.id);
  if (notify) other.emit('stop-by-remote-user');
  return true;
}

function leaveQueue(socket) {
  const i = queue.indexOf(socket);
  if (i >= 0) queue.splice(i, 1);
}

io.on('connection', (socket) => {
  socket.on('request-room', (data) => {
    endRoom(socket, true);
    leaveQueue(socket);
    names.set(socket.id, { name: String(data && data.name), image: data && data.userImage });
    const other = queue.shift();
    if (other === undefined) {
      queue.push(socket);
      return;
    }
    const roomId = crypto.randomUUID();
    rooms.set(roomId, [other, socket]);
    roomOf.set(socket.id, roomId);
    roomOf.set(other.id, roomId);
    const me = names.get(socket.id);
    const them = names.get(other.id);
    socket.emit('match-done', { roomId, remoteUserDetails: {
      socket: other.id, userName: them.name, userImage: them.image } });
    other.emit('match-done', { roomId, remoteUserDetails: {
      socket: socket.id, userName: me.name, userImage: me.image } });
  });

  socket.on('negotiation-call-offer', (data) => {
    const other = partnerOf(socket);
    if (!other || other.id !== data.remoteSocketId) return;
    other.emit('negotiation-call-offer', {
      remoteUserDetails: { socket: socket.id, userName: names.get(socket.id).name },
      roomId: data.roomId, offer: data.offer });
  });

  socket.on('negotiation-call-answer', (data) => {
    const other = partnerOf(socket);
    if (!other || other.id !== data.remoteSocketId) return;
    other.emit('negotiation-call-answer', {
      ans: data.ans, roomId: data.roomId, name: names.get(socket.id).name,
      remoteSocketId: socket.id });
  });

  socket.on('send-new-ice-candidates', (data) => {
    const other = partnerOf(socket);
    if (!other || other.id !== data.to) return;
    other.emit('new-ice-candidates', { candidate: data.candidate });
  });

  socket.on('newMessage', (data) => {
    const other = partnerOf(socket);
    if (!other) return;
    const msg = { from: socket.id, message: data.message };
    other.emit('Message:recived', msg);
    socket.emit('Message:recived', msg);
  });

  socket.on('stop-call', () => {
    if (!endRoom(socket, true)) leaveQueue(socket);
  });

  socket.on('disconnect', () => {
    endRoom(socket, true);
    leaveQueue(socket);
    names.delete(socket.id);
  });
});

httpServer.listen(port, '127.0.0.1', () => console.log(`listening ${port}`));
