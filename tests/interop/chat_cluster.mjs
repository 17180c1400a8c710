// The example chat served by two processes (A and B) on one Redis: a member that drops from A
// and recovers on B keeps its place, with the official socket.io-client.
//
//   node chat_cluster.mjs recover <urlA> <urlB> <room> <holdMs>
//
// dora and fred join <room> on A, erin on B. dora and fred drop their transport; erin writes
// while they are away; dora reconnects to B (recovering her session there), fred never comes
// back. After <holdMs> (longer than the grace period) the script reports, as one JSON line,
// what dora and erin saw and both processes' room lists; then it waits a moment (so the test
// can look at its own clients before anyone leaves), closes its clients and prints {"ok": true}.

import { closeAll, line, sleep, until } from "./harness.mjs";
import { io } from "socket.io-client";

const [scenario, urlA, urlB, room, holdArg = "4000"] = process.argv.slice(2);
const HOLD_MS = Number(holdArg);
const LIMIT_MS = Number(process.env.INTEROP_NODE_TIMEOUT_MS || 30000);
const sockets = [];

// A chat member: its events as [event, payload] (the offset a stored event carries is dropped).
function member(url, nickname) {
  const s = io(url, {
    transports: ["websocket"], auth: { nickname }, forceNew: true, // a connection of its own
    reconnectionDelay: 20, reconnectionDelayMax: 50, randomizationFactor: 0,
  });
  sockets.push(s);
  const seen = { connects: 0, recovered: 0, events: [] };
  s.on("connect", () => {
    seen.connects++;
    if (s.recovered) seen.recovered++;
  });
  s.onAny((event, payload) => seen.events.push([event, payload]));
  return { s, seen };
}

const texts = (m, event) => m.seen.events.filter(([e]) => e === event).map(([, p]) => p.text);

async function call(s, event, payload) {
  return s.timeout(5000).emitWithAck(event, payload);
}

async function rooms(url) {
  const res = await fetch(`${url}/api/rooms`);
  if (!res.ok) throw new Error(`GET ${url}/api/rooms: HTTP ${res.status}`);
  return res.json();
}

async function enter(url, nickname) {
  const m = member(url, nickname);
  await until(() => m.seen.connects === 1, 5000, `${nickname} connected`);
  const joined = await call(m.s, "join", { room });
  if (joined.room !== room) throw new Error(`${nickname} could not join: ${JSON.stringify(joined)}`);
  return m;
}

async function recover() {
  const dora = await enter(urlA, "dora");
  const fred = await enter(urlA, "fred");
  const erin = await enter(urlB, "erin");
  const doraId = dora.s.id;

  // Both drop (a transport close: recoverable) and stay away until erin's message is out.
  for (const m of [dora, fred]) {
    m.s.io.reconnection(false);
    m.s.io.engine.close();
  }
  await until(() => !dora.s.connected && !fred.s.connected, 5000, "the drops");
  const receipt = await call(erin.s, "message", { room, text: "said while dora was away" });
  if (!receipt.id) throw new Error(`erin's message: ${JSON.stringify(receipt)}`);

  // dora comes back, to the other process.
  dora.s.io.uri = urlB;
  dora.s.io.reconnection(true);
  dora.s.connect();
  await until(() => dora.seen.connects === 2, 5000, "dora's reconnection");
  const sameId = dora.s.id === doraId;
  await until(() => texts(dora, "message").includes("said while dora was away"), 5000, "the missed message");
  const back = await call(dora.s, "message", { room, text: "dora is back" });
  if (!back.id) throw new Error(`dora's message: ${JSON.stringify(back)}`);
  await until(() => texts(erin, "message").includes("dora is back"), 5000, "erin gets dora's message");

  // Past the grace period: fred's place is let go (once), dora's is not.
  await sleep(HOLD_MS);
  return {
    step: "report",
    doraId,
    sameId,
    recovered: dora.seen.recovered,
    missed: texts(dora, "message").filter((t) => t === "said while dora was away").length,
    doraSystem: texts(dora, "system"),
    erinSystem: texts(erin, "system"),
    roomsA: await rooms(urlA),
    roomsB: await rooms(urlB),
  };
}

const timer = setTimeout(() => {
  line({ ok: false, error: `hard timeout after ${LIMIT_MS} ms` });
  process.exit(1);
}, LIMIT_MS);

const scenarios = { recover };

(scenarios[scenario] || (async () => { throw new Error(`unknown scenario ${scenario}`); }))()
  .then(async (report) => {
    line(report);
    await sleep(500); // the test looks at its own clients now, before these leave
    clearTimeout(timer);
    line({ ok: true });
    closeAll(sockets);
    process.stdout.write("", () => process.exit(0));
  })
  .catch((err) => {
    clearTimeout(timer);
    line({ ok: false, error: String(err), trace: err.stack });
    closeAll(sockets);
    process.stdout.write("", () => process.exit(1));
  });
