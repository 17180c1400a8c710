'use strict';
// Node reference server for `python -m bench`: socket.io 4.8 (tests/interop/node_modules) with
// the same handlers as bench/app_ours.py and bench/app_pysio.py.
//
// Usage: node app_node.js <port>; binds 127.0.0.1. Configuration from the environment, as the
// Python apps:
//   BENCH_JOIN_ROOM    room every client joins on connect (empty: join nothing)
//   BENCH_YIELD_EVERY  the "blast" loop yields to the event loop every this many emits

const path = require('path');
const http = require('http');
const { Server } = require(require.resolve('socket.io', {
  paths: [path.join(__dirname, '..', 'tests', 'interop'), __dirname],
}));

const port = Number(process.argv[2] || process.env.BENCH_PORT || 8000);
const joinRoom = process.env.BENCH_JOIN_ROOM || '';
const yieldEvery = Math.max(1, Number(process.env.BENCH_YIELD_EVERY || 8));
// setImmediate, not a resolved promise: a microtask would not let socket I/O run in between.
const yieldLoop = () => new Promise((resolve) => setImmediate(resolve));

const httpServer = http.createServer();
// Defaults otherwise (polling + websocket, no permessage-deflate), like the Python servers.
const io = new Server(httpServer, { serveClient: false });

io.on('connection', (socket) => {
  if (joinRoom) socket.join(joinRoom);

  socket.on('echo', (data, ack) => {
    if (typeof ack === 'function') ack(data);
  });

  socket.on('blast', async (count, ack) => {
    // Broadcast `count` messages to the room as fast as the server can take them.
    const op = joinRoom ? io.to(joinRoom) : io;
    const n = Number(count) | 0;
    for (let i = 0; i < n; i++) {
      op.emit('msg', { n: i, s: 'hello world' });
      if (i % yieldEvery === yieldEvery - 1) await yieldLoop();
    }
    if (typeof ack === 'function') ack(n);
  });
});

// Like uvicorn --backlog 4096: the 10,000-connection scenario opens them in bursts.
httpServer.listen({ port, host: '127.0.0.1', backlog: 4096 });
process.on('SIGTERM', () => process.exit(0));
