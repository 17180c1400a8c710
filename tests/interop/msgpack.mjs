// socket.io-client with socket.io-msgpack-parser against tests/interop/msgpack_app.py.
//   node msgpack.mjs <base-url> <polling|websocket|upgrade>
// Prints one JSON line with what the client saw; binary values as {"$bin": "<hex>"}.
import { io } from "socket.io-client";
import parser from "socket.io-msgpack-parser";

const [base, mode] = process.argv.slice(2);
const transports = mode === "polling" ? ["polling"] : mode === "websocket" ? ["websocket"] : ["polling", "websocket"];
setTimeout(() => { console.log(JSON.stringify({ ok: false, error: "timeout" })); process.exit(1); }, 8000);

const hex = (x) => ({ $bin: Buffer.from(x).toString("hex") });
const plain = (x) => (x instanceof Uint8Array || x instanceof ArrayBuffer ? hex(x) : Array.isArray(x) ? x.map(plain) : x);
const connect = () => new Promise((resolve, reject) => {
  const s = io(base, { parser, transports, auth: { token: "t1" }, reconnection: false, forceNew: true });
  s.on("welcome", (w) => resolve([s, w]));
  s.on("connect_error", reject);
});

const [a, welcome] = await connect();
const [b] = await connect();
if (mode === "upgrade") await new Promise((r) => (a.io.engine.transport.name === "websocket" ? r() : a.io.engine.once("upgrade", r)));
const echoed = await new Promise((r) =>
  a.emit("echo", "héllo ✓", 42, 1.5, null, true, { nested: [1, { deep: "x" }] }, Buffer.from([1, 2, 3]), (...args) => r(args)));
a.on("question", (q, ack) => ack(q.toUpperCase()));
const answered = await a.emitWithAck("ask", "are you there");
const shouted = new Promise((r) => b.once("shouted", (...args) => r(args)));
a.emit("shout", "to everyone");
const received = await shouted;
console.log(JSON.stringify({
  ok: true, welcome, echoed: plain(echoed), answered, received: plain(received),
  transport: a.io.engine.transport.name,
}));
a.close(); b.close();
process.exit(0);
