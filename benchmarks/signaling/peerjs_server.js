// Starts the PeerJS server (npm package "peer") on loopback for the signaling benchmark.
// usage: node peerjs_server.js PORT   (run with NODE_PATH pointing at its node_modules)
"use strict";
const { PeerServer } = require("peer");
const port = Number(process.argv[2]);
// concurrent_limit defaults to 5000 clients; the benchmark opens up to 10,000 per server.
PeerServer({ port, host: "127.0.0.1", concurrent_limit: 1000000 }, () => {
  process.stdout.write(`listening ${port}\n`);
});
