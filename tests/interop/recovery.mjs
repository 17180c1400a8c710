// Connection state recovery scenarios for the official socket.io-client, run by
// test_recovery.py against tests/interop/recovery_app.py.
//
//   node recovery.mjs <scenario> <base-url> <mode> [extra...]
//
// mode: polling | websocket | upgrade (polling first, then the websocket upgrade after every
// (re)connection). The scenario prints one JSON object on the last stdout line
// ({ok: true, ...observations}) and exits 0, or {ok: false, error, trace} and exits 1; the
// Python side makes the assertions. A hard timer (INTEROP_NODE_TIMEOUT_MS, default 8000)
// bounds every run.
//
// The server's tickers emit numbered events `own` (to the socket's own room), `room` (to a room
// the socket joined) and `all` (to everyone) as (tag, n); with recovery on the client sees the
// offset as an extra last argument, which the streams here ignore except to check its type.

import http from "node:http";
import { closeAll, line, sleep, until as waitUntil } from "./harness.mjs";
import { io } from "socket.io-client";

// Drops land at chosen moments, so waits poll every 2 ms.
const until = (pred, ms = 3000, what = "condition") => waitUntil(pred, ms, what, 2);
const [scenario, base, mode = "websocket", ...extra] = process.argv.slice(2);
const LIMIT_MS = Number(process.env.INTEROP_NODE_TIMEOUT_MS || 8000);
// Unique names per run: a server is shared by a whole test module.
const TAG = Math.random().toString(36).slice(2, 10);
const sockets = [];
const tickers = [];
const trace = [];

let finished = false;
async function finish(code, result) {
  if (finished) return;
  finished = true;
  line(result);
  closeAll(sockets);
  // a ticker left running would flood the clients of the next tests with `all` events
  await Promise.race([Promise.allSettled(tickers.map((t) => stopTicker(t))), sleep(500)]);
  process.stdout.write("", () => process.exit(code));
}

setTimeout(() => finish(1, { ok: false, error: `hard timeout after ${LIMIT_MS} ms`, trace: trace.slice(-50) }), LIMIT_MS);

// A small seeded PRNG (mulberry32), so that a failing run's drop moments can be replayed.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function request(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}`);
  return res.json();
}

const serverState = (name) => request("GET", `/test/state/${encodeURIComponent(name)}`);

async function startTicker(spec) {
  await request("POST", "/test/ticker", { interval: 0.005, max_seconds: LIMIT_MS / 1000, ...spec });
  tickers.push(spec.tag);
}

async function stopTicker(tag) {
  const i = tickers.indexOf(tag);
  if (i >= 0) tickers.splice(i, 1);
  return (await request("POST", `/test/ticker/${encodeURIComponent(tag)}/stop`)).ticks;
}

// A client that records the ticker streams of `tag`, every `recovered` event and every
// (re)connection with the client's own view of it.
function client(auth, opts = {}, tag = TAG) {
  // polling: a private HTTP agent, so that a drop can cut the TCP connections of the pending requests
  const agent = mode !== "websocket" ? new http.Agent({ keepAlive: false }) : undefined;
  const s = io(base + "/", {
    agent,
    forceNew: true,
    reconnectionDelay: 1,
    reconnectionDelayMax: 20,
    randomizationFactor: 0,
    timeout: 4000,
    transports: mode === "upgrade" ? ["polling", "websocket"] : [mode],
    auth,
    ...opts,
  });
  const rec = {
    connects: [], // {id, recovered, pid} as the client saw each CONNECT reply
    disconnects: [],
    connectErrors: [],
    recoveredEvents: [], // payloads of the server's `recovered` event, in arrival order
    streams: { own: [], room: [], all: [] },
    offsets: new Set(),
    duplicateOffsets: 0,
    badOffsets: 0, // stored events whose last argument is not a string offset
    overPolling: 0, // ticker events that arrived while the transport was polling
  };
  const offset = (o) => {
    if (typeof o !== "string" || o.length === 0) rec.badOffsets++;
    else if (rec.offsets.has(o)) rec.duplicateOffsets++;
    else rec.offsets.add(o);
  };
  for (const stream of ["own", "room", "all"]) {
    s.on(stream, (t, n, o) => {
      if (t !== tag) return; // another test's ticker
      rec.streams[stream].push(n);
      if (s.io.engine?.transport?.name === "polling") rec.overPolling++;
      offset(o);
    });
  }
  s.on("recovered", (info, o) => {
    rec.recoveredEvents.push(info);
    offset(o);
  });
  s.on("connect", () => {
    rec.connects.push({ id: s.id, recovered: !!s.recovered, pid: s._pid ?? null });
    trace.push(`connect ${s.id} recovered=${!!s.recovered}`);
  });
  s.on("disconnect", (reason) => {
    rec.disconnects.push(reason);
    trace.push(`disconnect: ${reason}`);
  });
  s.on("connect_error", (e) => {
    rec.connectErrors.push({ message: e.message, data: e.data ?? null });
    trace.push(`connect_error: ${e.message}`);
  });
  s.rec = rec;
  s.agent = agent;
  sockets.push(s);
  return s;
}

async function connected(s, count = 1, ms = 4000) {
  await until(() => (s.connected && s.rec.connects.length >= count) || s.rec.connectErrors.length > 0, ms, `connect #${count}`);
  if (!s.connected) throw new Error(`connect_error: ${JSON.stringify(s.rec.connectErrors)}`);
}

// the server's `recovered` event of the count-th connection has arrived (one per connection)
const greeted = (s, count = 1, ms = 3000) =>
  until(() => s.rec.recoveredEvents.length >= count, ms, `recovered event #${count}`);

// Cut the client's transport the way a network failure or a dying transport would. The client
// treats all of these as a transport close and reconnects with its pid and last offset.
const DROPS = {
  websocket: ["engine.close", "ws.close", "ws.terminate"],
  polling: ["engine.close", "cut-tcp"],
  // Upgrade mode drops only once the upgrade is done: cut in mid-probe, a polling session can be
  // left without a request in flight, which no server can tell from a live one (it is kept until
  // the ping timeout, so it is not recoverable), and an engine.close() that waits for the upgrade
  // makes socket.io-client buffer the last polled events and replay them after the next
  // CONNECT on top of the server's replay. Missed events still arrive mid-upgrade, over polling.
  upgrade: ["engine.close", "ws.close", "ws.terminate"],
};

// Returns what was actually done (a method may not apply to the transport of the moment).
function drop(s, how) {
  const transport = s.io.engine.transport;
  const ws = transport.name === "websocket";
  if (how === "ws.close" && ws) {
    transport.ws.close();
    return how;
  }
  if (how === "ws.terminate" && ws) {
    transport.ws.terminate(); // no close frame: the TCP socket just goes
    return how;
  }
  if ((how === "cut-tcp" || how === "ws.terminate") && cutTcp(s)) return "cut-tcp";
  s.io.engine.close();
  return "engine.close";
}

// Destroy the TCP connections of the in-flight polling requests (the pending long-poll GET, a
// POST): the client sees an xhr error, the server a dropped request.
function cutTcp(s) {
  let cut = 0;
  for (const list of Object.values(s.agent?.sockets ?? {})) {
    for (const sock of list) {
      sock.destroy();
      cut++;
    }
  }
  return cut > 0;
}

// How a numbered stream arrived: exactly once and in order means [0, 1, ..., ticks - 1].
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
  return {
    exact: list.length === ticks && firstBad === -1,
    count: list.length,
    ticks,
    dups: dups.slice(0, 10),
    missing,
    firstBad,
    around: firstBad >= 0 ? list.slice(Math.max(0, firstBad - 3), firstBad + 5) : [],
  };
}

// Stop the ticker, then wait (bounded) for the last number of every stream the client expects.
async function drain(tag, clients, ms = 3000) {
  const ticks = await stopTicker(tag);
  const complete = () =>
    clients.every(([s, streams]) => streams.every((k) => ticks === 0 || s.rec.streams[k].includes(ticks - 1)));
  await until(complete, ms, "the ticker's last events").catch((e) => trace.push(String(e)));
  await sleep(100); // late duplicates would show up here
  return ticks;
}

function summary(s) {
  const r = s.rec;
  return {
    connects: r.connects,
    disconnects: r.disconnects,
    connectErrors: r.connectErrors,
    recoveredEvents: r.recoveredEvents,
    badOffsets: r.badOffsets,
    duplicateOffsets: r.duplicateOffsets,
    overPolling: r.overPolling,
  };
}

// One connected, greeted client, with the server emitting to it, its room and everyone.
async function tickingClient(name, room) {
  const s = client({ name, room });
  await connected(s);
  await greeted(s);
  await startTicker({ tag: TAG, sid: s.id, room });
  await sleep(50);
  return s;
}

const scenarios = {
  // Drop the transport `drops` times at varied moments while the server keeps emitting;
  // a second client that is never dropped shares the room and serves as the control.
  async churn() {
    const drops = Number(extra[0] ?? 100);
    const seed = Number(extra[1] ?? Date.now() % 100000);
    const rand = prng(seed);
    const name = `churn-${TAG}`;
    const room = `room-${TAG}`;
    const s = client({ name, room });
    const control = client({ name: `${name}-control`, room });
    await Promise.all([connected(s), connected(control)]);
    await Promise.all([greeted(s), greeted(control)]);
    const id = s.id;
    await startTicker({ tag: TAG, sid: s.id, room });
    const delays = [0, 0, 1, 2, 3, 5, 8, 13, 21, 34, 55];
    const methods = DROPS[mode];
    const used = {};
    const t0 = Date.now();
    for (let i = 0; i < drops; i++) {
      const delay = delays[Math.floor(rand() * delays.length)];
      if (mode === "upgrade") await until(() => s.io.engine.transport.name === "websocket", 3000, "upgrade");
      if (delay) await sleep(delay);
      const how = drop(s, methods[i % methods.length]);
      used[how] = (used[how] ?? 0) + 1;
      await connected(s, i + 2, 4000);
    }
    const churnMs = Date.now() - t0;
    await sleep(30);
    const ticks = await drain(TAG, [
      [s, ["own", "room", "all"]],
      [control, ["room", "all"]],
    ]);
    const who = await s.timeout(3000).emitWithAck("whoami");
    return {
      seed,
      id,
      ticks,
      churnMs,
      used,
      client: summary(s),
      streams: Object.fromEntries(Object.entries(s.rec.streams).map(([k, v]) => [k, analyse(v, ticks)])),
      control: {
        ...summary(control),
        streams: { room: analyse(control.rec.streams.room, ticks), all: analyse(control.rec.streams.all, ticks) },
      },
      whoami: who,
      server: await serverState(name),
    };
  },

  // max_disconnection_duration is short on this server: a quick drop recovers, a long one does not.
  async expiry() {
    const awayMs = Number(extra[0] ?? 1200);
    const name = `expiry-${TAG}`;
    const room = `room-${TAG}`;
    const s = await tickingClient(name, room);
    drop(s, "engine.close");
    await connected(s, 2);
    await greeted(s, 2);
    await sleep(50);
    // the next reconnection attempt waits longer than the server keeps the session
    s.io.reconnectionDelay(awayMs);
    s.io.reconnectionDelayMax(awayMs);
    const t0 = Date.now();
    drop(s, "engine.close");
    await connected(s, 3, awayMs + 3000);
    const awayMeasuredMs = Date.now() - t0;
    await greeted(s, 3);
    await sleep(50);
    const ticks = await stopTicker(TAG);
    await sleep(100);
    return {
      awayMeasuredMs,
      ticks,
      client: summary(s),
      streams: s.rec.streams,
      whoami: await s.timeout(3000).emitWithAck("whoami"),
      server: await serverState(name),
    };
  },

  // Middleware calls on a recovered connection; then the middleware is armed to reject and the
  // client dropped again: skipped middlewares let the recovery through, run ones refuse it.
  async middleware() {
    const name = `mw-${TAG}`;
    const s = client({ name });
    await connected(s);
    await greeted(s);
    drop(s, DROPS[mode][0]);
    await connected(s, 2);
    await greeted(s, 2);
    const first = { client: { ...s.rec.connects.at(-1) }, server: await serverState(name) };
    await request("POST", `/test/reject/${encodeURIComponent(name)}`);
    drop(s, DROPS[mode][1]);
    await until(() => (s.connected && s.rec.connects.length >= 3) || s.rec.connectErrors.length > 0, 4000, "reconnect or error");
    await sleep(200);
    await request("POST", `/test/reject/${encodeURIComponent(name)}?on=false`);
    return {
      first,
      second: {
        connected: s.connected,
        active: s.active,
        recovered: !!s.recovered,
        id: s.id ?? null,
        server: await serverState(name),
      },
      client: summary(s),
    };
  },

  // The client freezes past pingInterval + pingTimeout: the server drops it ("ping timeout"),
  // keeps its session, and the client recovers it after thawing.
  async freeze() {
    const freezeMs = Number(extra[0] ?? 1200);
    const name = `freeze-${TAG}`;
    const room = `room-${TAG}`;
    const s = await tickingClient(name, room);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, freezeMs); // blocks the event loop
    await connected(s, 2, 5000);
    await greeted(s, 2);
    await sleep(50);
    const ticks = await drain(TAG, [[s, ["own", "room", "all"]]]);
    return {
      ticks,
      client: summary(s),
      streams: Object.fromEntries(Object.entries(s.rec.streams).map(([k, v]) => [k, analyse(v, ticks)])),
      server: await serverState(name),
    };
  },

  // The test stops and restarts the server after the "connected" line: the memory store is
  // gone, so the client's pid cannot be recovered and it gets a clean new session.
  async restart() {
    const name = `restart-${TAG}`;
    const s = client({ name, room: `room-${TAG}` }, { reconnectionDelay: 100, reconnectionDelayMax: 300 });
    await connected(s);
    await greeted(s);
    const before = { id: s.id, pid: s._pid ?? null, greeting: s.rec.recoveredEvents.at(-1) };
    line({ event: "connected", ...before });
    await until(() => s.rec.disconnects.length > 0, LIMIT_MS, "disconnect");
    // connect errors are expected while the server is down: the client keeps trying
    await until(() => s.connected && s.rec.connects.length >= 2, LIMIT_MS, "reconnection");
    await greeted(s, 2);
    return {
      before,
      after: { id: s.id, pid: s._pid ?? null, recovered: !!s.recovered },
      client: summary(s),
      whoami: await s.timeout(3000).emitWithAck("whoami"),
    };
  },
};

const run = scenarios[scenario];
if (!run || !base) {
  finish(1, { ok: false, error: `usage: recovery.mjs <${Object.keys(scenarios).join("|")}> <base-url> <mode>` });
} else {
  run().then(
    (res) => finish(0, { ok: true, ...res }),
    (err) => finish(1, { ok: false, error: String(err?.stack ?? err), trace: trace.slice(-50) }),
  );
}
