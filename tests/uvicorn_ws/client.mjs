// socket.io-client against the coalescing protocol, run by test_clients.py:
//   node client.mjs <url> <resolve-from> <websocket|upgrade> <n> <bigSize>
// A burst of n events (one server loop iteration), a large message between two small ones and a
// room burst; prints one JSON line with what arrived, in arrival order.
// socket.io-client is resolved from <resolve-from> (tests/interop/package.json: its node_modules).

import { createRequire } from "node:module";

const [url, resolveFrom, mode, nArg, bigArg] = process.argv.slice(2);
const n = Number(nArg);
const bigSize = Number(bigArg);
const { io } = createRequire(resolveFrom)("socket.io-client");

function report(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
  process.exit(0);
}

setTimeout(() => report({ error: "timed out" }), 15000);

const transports = mode === "websocket" ? ["websocket"] : ["polling", "websocket"];
const socket = io(url, { transports, reconnection: false });
const m = [];
const r = [];
let big = null;
socket.on("m", (i) => m.push(i));
socket.on("r", (i) => r.push(i));
socket.on("big", (s) => { big = s; });
socket.on("connect_error", (err) => report({ error: `connect_error: ${err.message}` }));

socket.on("connect", async () => {
  if (mode === "upgrade") {
    // Wait for the switch to WebSocket, so the bursts travel over the coalescing protocol.
    const deadline = Date.now() + 5000;
    while (socket.io.engine.transport.name !== "websocket" && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 20));
    }
  }
  const burstAck = await socket.emitWithAck("burst", n);
  const afterBurst = m.slice();
  m.length = 0;
  const bigAck = await socket.emitWithAck("big", bigSize);
  const roomAck = await socket.emitWithAck("room_burst", n);
  const transport = socket.io.engine.transport.name;
  socket.disconnect();
  report({
    burstAck, burst: afterBurst, bigAck, bigOrder: m, bigLength: big === null ? null : big.length,
    bigHead: big === null ? null : big.slice(0, 64), bigTail: big === null ? null : big.slice(-64),
    roomAck, room: r, transport,
  });
});
