// The README's quick-start client, run by test_lowest_versions.py:
//   node quickstart_client.mjs <url> <resolve-from>
// connects with auth {name: "ada"}, emits "message" with an ack and prints one JSON line.
// socket.io-client is resolved from <resolve-from> (tests/interop/package.json: its node_modules).

import { createRequire } from "node:module";

const [url, resolveFrom] = process.argv.slice(2);
const { io } = createRequire(resolveFrom)("socket.io-client");

function report(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
  process.exit(obj.ok ? 0 : 1);
}

setTimeout(() => report({ ok: false, error: "no ack within 10 s" }), 10000);

const socket = io(url, { auth: { name: "ada" }, reconnection: false });
socket.on("connect_error", (err) => report({ ok: false, error: `connect_error: ${err.message}`, data: err.data }));
socket.emit("message", "hello", (ack) => {
  const transport = socket.io.engine.transport.name;
  socket.disconnect();
  report({ ok: true, ack, transport });
});
