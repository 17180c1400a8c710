// Connection state recovery across the nodes of a cluster, with the official socket.io-client.
//
//   node cluster_recovery.mjs <urlA> <urlB> <drops> <transport: websocket|polling>
//
// Both nodes run a ticker emitting `tick` (node, tag, n) to one room. The client joins that
// room, then drops its transport `drops` times; before each reconnection it is pointed at the
// other node, so every recovery happens on a node other than the one it left. The last line
// is the JSON report: per ticker, whether the client received 0..ticks-1 exactly once and in
// order, and how many reconnections were recoveries.

import { closeAll, line, sleep, until } from "./harness.mjs";
import { io } from "socket.io-client";

const [urlA, urlB, dropsArg = "100", transport = "websocket"] = process.argv.slice(2);
const DROPS = Number(dropsArg);
const LIMIT_MS = Number(process.env.INTEROP_NODE_TIMEOUT_MS || 60000);
const TAG = Math.random().toString(36).slice(2, 10);
const ROOM = `room-${TAG}`;
const sockets = [];

async function control(url, op, body) {
  const res = await fetch(`${url}/control/${op}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${op}: HTTP ${res.status}`);
  return res.json();
}

function analyse(list, ticks) {
  const seen = new Set();
  const dups = [];
  for (const n of list) {
    if (seen.has(n)) dups.push(n);
    seen.add(n);
  }
  const missing = [];
  for (let n = 0; n < ticks && missing.length < 10; n++) if (!seen.has(n)) missing.push(n);
  const firstBad = list.findIndex((n, i) => n !== i);
  return { exact: list.length === ticks && firstBad === -1, count: list.length, ticks, dups: dups.slice(0, 10), missing, firstBad };
}

async function main() {
  const streams = { a: [], b: [] };
  const offsets = [];
  let connects = 0;
  let recovered = 0;
  const s = io(urlA, { transports: [transport], auth: { rooms: [ROOM] }, reconnectionDelay: 5, reconnectionDelayMax: 20, randomizationFactor: 0 });
  sockets.push(s);
  s.on("connect", () => {
    connects++;
    if (s.recovered) recovered++;
  });
  s.on("tick", (node, tag, n, offset) => {
    if (tag === TAG) streams[node === "a" ? "a" : "b"].push(n);
    offsets.push(offset);
  });
  await until(() => connects === 1, 5000, "first connection");
  await control(urlA, "ticker", { tag: TAG, room: ROOM, interval: 0.004, max_seconds: LIMIT_MS / 1000 });
  await control(urlB, "ticker", { tag: TAG, room: ROOM, interval: 0.004, max_seconds: LIMIT_MS / 1000 });
  // A client recovers only from an offset it has seen: the first drop waits for a first event
  // (without one, socket.io-client sends its pid alone, and no server can recover it).
  await until(() => offsets.length > 0, 5000, "a first event");
  let at = urlA;
  const t0 = Date.now();
  for (let i = 0; i < DROPS; i++) {
    await sleep([0, 1, 3, 8, 15][i % 5]);
    at = at === urlA ? urlB : urlA;
    s.io.uri = at; // the next (re)connection goes to the other node
    s.io.engine.close();
    await until(() => connects === i + 2, 5000, `reconnection ${i + 1}`);
  }
  const churnMs = Date.now() - t0;
  await sleep(50);
  const ticksA = (await control(urlA, "stopTicker", { tag: TAG })).ticks;
  const ticksB = (await control(urlB, "stopTicker", { tag: TAG })).ticks;
  await until(() => streams.a.includes(ticksA - 1) && streams.b.includes(ticksB - 1), 5000, "the last ticks").catch(() => {});
  await sleep(200); // late duplicates would show up here
  return {
    ok: true,
    drops: DROPS,
    connects,
    recovered,
    churnMs,
    a: analyse(streams.a, ticksA),
    b: analyse(streams.b, ticksB),
    offsetsAreStreamIds: offsets.every((o) => typeof o === "string" && /^\d+-\d+$/.test(o)),
  };
}

const timer = setTimeout(() => {
  line({ ok: false, error: `hard timeout after ${LIMIT_MS} ms` });
  process.exit(1);
}, LIMIT_MS);

main()
  .then((result) => {
    clearTimeout(timer);
    line(result);
    closeAll(sockets);
    process.stdout.write("", () => process.exit(0));
  })
  .catch((err) => {
    clearTimeout(timer);
    line({ ok: false, error: String(err), trace: err.stack });
    closeAll(sockets);
    process.stdout.write("", () => process.exit(1));
  });
