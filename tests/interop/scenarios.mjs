// Interop scenarios for the official socket.io-client, run by test_node_client.py against
// tests/interop/app.py.
//
//   node scenarios.mjs <scenario> <base-url> <mode> [extra...]
//
// mode: polling | websocket | upgrade (polling first, then the websocket upgrade) | mixed
// (multi-client scenarios only: clients cycle through the three).
// The scenario prints one JSON object on the last stdout line ({ok: true, ...observations}) and
// exits 0, or {ok: false, error, trace} and exits 1. The Python side makes the assertions.
// A hard timer (INTEROP_NODE_TIMEOUT_MS, default 8000) bounds every run.
// Binary values are printed as {"$bin": "<hex>"}.

import { closeAll, line, sleep, until } from "./harness.mjs";
import { io, Manager } from "socket.io-client";

const [scenario, base, mode = "websocket", ...extra] = process.argv.slice(2);
const LIMIT_MS = Number(process.env.INTEROP_NODE_TIMEOUT_MS || 8000);
// Unique room names per run: a server is shared by a whole test module.
const TAG = Math.random().toString(36).slice(2, 10);
const MODES = ["polling", "websocket", "upgrade"];
const sockets = [];
const trace = [];

let finished = false;
function finish(code, result) {
  if (finished) return;
  finished = true;
  line(result);
  closeAll(sockets);
  process.stdout.write("", () => process.exit(code));
}

setTimeout(() => finish(1, { ok: false, error: `hard timeout after ${LIMIT_MS} ms`, trace }), LIMIT_MS);

function toBuf(x) {
  if (Buffer.isBuffer(x)) return x;
  if (x instanceof ArrayBuffer) return Buffer.from(x);
  if (ArrayBuffer.isView(x)) return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  throw new Error(`not binary: ${JSON.stringify(x)}`);
}

function plain(x) {
  if (Buffer.isBuffer(x) || x instanceof ArrayBuffer || ArrayBuffer.isView(x)) return { $bin: toBuf(x).toString("hex") };
  if (Array.isArray(x)) return x.map(plain);
  if (x && typeof x === "object") return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)]));
  return x;
}

function transportOpts(m) {
  if (m === "polling") return { transports: ["polling"] };
  if (m === "websocket") return { transports: ["websocket"] };
  if (m === "upgrade") return { transports: ["polling", "websocket"] };
  throw new Error(`bad mode ${m}`);
}

// mode of the i-th client of a multi-client scenario
const modeOf = (i) => (mode === "mixed" ? MODES[i % 3] : mode);

function client(nsp = "/", opts = {}, m = modeOf(0)) {
  const s = io(base + nsp, {
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    randomizationFactor: 0,
    timeout: 4000,
    ...transportOpts(m),
    ...opts,
  });
  const rec = { welcome: null, connects: 0, disconnects: [], connectErrors: [], mode: m };
  s.on("welcome", (w) => (rec.welcome = w));
  s.on("connect", () => rec.connects++);
  s.on("disconnect", (reason) => {
    rec.disconnects.push(reason);
    trace.push(`${nsp} disconnect: ${reason}`);
  });
  s.on("connect_error", (e) => {
    rec.connectErrors.push({ message: e.message, data: e.data ?? null });
    trace.push(`${nsp} connect_error: ${e.message}`);
  });
  s.rec = rec;
  sockets.push(s);
  return s;
}

// a second namespace multiplexed over `parent`'s connection, recording like client()
function subSocket(parent, nsp) {
  const s = parent.io.socket(nsp);
  const rec = { welcome: null, connects: 0, disconnects: [], connectErrors: [], mode: parent.rec.mode };
  s.on("welcome", (w) => (rec.welcome = w));
  s.on("connect", () => rec.connects++);
  s.on("disconnect", (reason) => {
    rec.disconnects.push(reason);
    trace.push(`${nsp} (multiplexed) disconnect: ${reason}`);
  });
  s.rec = rec;
  sockets.push(s);
  return s;
}

async function connected(s, ms = 4000) {
  await until(() => s.connected || s.rec.connectErrors.length > 0, ms, "connect");
  if (!s.connected) throw new Error(`connect_error: ${JSON.stringify(s.rec.connectErrors)}`);
}

// connected, welcome received and, in upgrade mode, the websocket upgrade done
async function ready(s) {
  await connected(s);
  await until(() => s.rec.welcome, 3000, "welcome");
  if (s.rec.mode === "upgrade") await until(() => s.io.engine.transport.name === "websocket", 3000, "upgrade");
}

// first ack argument
const ack = (s, event, ...args) => s.timeout(3000).emitWithAck(event, ...args);

// every ack argument
function ackAll(s, event, ...args) {
  return new Promise((resolve, reject) =>
    s.timeout(3000).emit(event, ...args, (err, ...resp) => (err ? reject(err) : resolve(resp))),
  );
}

// the disconnect reason the server recorded for a socket id (polled: it may land a bit later)
async function serverReason(id, ms = 3000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const res = await fetch(`${base}/test/reasons/${encodeURIComponent(id)}`);
    const { reason } = await res.json();
    if (reason !== null || Date.now() > deadline) return reason;
    await sleep(25);
  }
}

// collect every occurrence of `event` (its args) on a socket
function collect(s, event) {
  const got = [];
  s.on(event, (...args) => got.push(plain(args.length === 1 ? args[0] : args)));
  return got;
}

const scenarios = {
  async basic() {
    const s = client("/");
    await ready(s);
    return {
      id: s.id,
      welcome: s.rec.welcome,
      echoStr: await ack(s, "echo", "héllo wörld ✓ \u{1F600}"),
      echoObj: await ack(s, "echo", { a: 1, b: [true, null, 2.5], c: { d: "e" } }),
      echoPair: await ackAll(s, "echo-pair", "x", 42),
      echoNothing: await ackAll(s, "echo-nothing", 1),
      whoami: await ack(s, "whoami"),
      clientTransport: s.io.engine.transport.name,
    };
  },

  // numbered events both ways; in upgrade mode they cross the polling -> websocket switch
  async stream() {
    const count = Number(extra[0] ?? 200);
    const intervalMs = Number(extra[1] ?? 5);
    const received = [];
    const serverTransports = [];
    const clientTransports = [];
    let done = false;
    const s = client("/", { auth: { stream: { count, interval: intervalMs / 1000 } } });
    let upgradedAt = null;
    s.io.engine.on("upgrade", () => (upgradedAt = received.length));
    s.on("n", (i, t) => {
      received.push(i);
      serverTransports.push(t);
      clientTransports.push(s.io.engine.transport.name);
    });
    s.on("n-done", () => (done = true));
    // Start sending before the connection is even up (socket.io-client buffers until CONNECT), so
    // the first numbers surely go before the upgrade and the last ones after it.
    const sentTransports = [];
    for (let i = 0; i < count; i++) {
      sentTransports.push(s.io.engine.transport?.name ?? null);
      s.emit("numbered", i);
      await sleep(intervalMs);
    }
    await connected(s);
    await until(() => done, 5000, "n-done");
    if (s.rec.mode === "upgrade") await until(() => s.io.engine.transport.name === "websocket", 3000, "upgrade");
    return {
      received,
      serverTransports,
      clientTransports,
      sentTransports,
      upgradedAt,
      serverGot: await ack(s, "numbered-get"),
      finalTransport: s.io.engine.transport.name,
      welcome: s.rec.welcome,
      disconnects: s.rec.disconnects,
    };
  },

  async binary() {
    const s = client("/");
    await ready(s);
    s.on("bin-q", (buf, obj, cb) =>
      cb(Buffer.concat([toBuf(buf), Buffer.from([0xff])]), { size: toBuf(obj.inner).length, back: toBuf(obj.inner) }),
    );
    const small = Buffer.from([0, 1, 2, 253, 254, 255]);
    const big = Buffer.alloc(65536);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 255;
    const out = {};
    out.echoBuf = plain(await ack(s, "echo", small));
    out.echoNested = plain(
      await ack(s, "echo", { a: small, list: [Buffer.from("xyz"), "text", { deep: Buffer.from([9]) }] }),
    );
    const bigBack = toBuf(await ack(s, "echo", big));
    out.big = { len: bigBack.length, equal: bigBack.equals(big) };
    out.pair = plain(await ackAll(s, "echo-pair", Buffer.from([1]), Buffer.from([2, 3])));
    out.ask = plain(
      await ack(s, "ask", { event: "bin-q", args: [Buffer.from([5, 6, 7]), { inner: Buffer.from("inner") }], timeout: 3 }),
    );
    out.echoEmpty = plain(await ack(s, "echo", Buffer.alloc(0)));
    return out;
  },

  async acks() {
    const s = client("/");
    await ready(s);
    let ignoredCalls = 0;
    s.on("question", (a, b, c, cb) => cb(a + 1, String(b).toUpperCase(), c));
    s.on("question-single", (cb) => cb("one"));
    s.on("question-empty", (cb) => cb());
    s.on("ignored", () => ignoredCalls++); // never answers
    const out = {};
    out.echo = await ack(s, "echo", "ping");
    out.multi = await ack(s, "ask", { event: "question", args: [1, "two", { three: 3 }], timeout: 3 });
    out.single = await ack(s, "ask", { event: "question-single", args: [], timeout: 3 });
    out.empty = await ack(s, "ask", { event: "question-empty", args: [], timeout: 3 });
    const t0 = Date.now();
    out.timeout = await ack(s, "ask", { event: "ignored", args: [], timeout: 0.3 });
    out.timeoutElapsedMs = Date.now() - t0;
    out.ignoredCalls = ignoredCalls;
    out.afterTimeout = await ack(s, "echo", "still alive");
    return out;
  },

  async rooms() {
    const [A, B, C] = [0, 1, 2].map((i) => client("/", {}, modeOf(i)));
    await Promise.all([A, B, C].map(ready));
    const got = [A, B, C].map((s) => collect(s, "m"));
    const r1 = `${TAG}-r1`;
    const r2 = `${TAG}-r2`;
    const out = { modes: [A, B, C].map((s) => s.rec.mode), r1, r2 };
    out.joinA = await ack(A, "join", r1);
    await ack(B, "join", r1);
    await ack(C, "join", r2);
    await ack(A, "to-rooms", { rooms: [r1], event: "m", args: ["t1"] }); // B
    await ack(A, "broadcast", { to: [r1, r2], except: [r2], event: "m", args: ["t2"] }); // A B
    await ack(A, "broadcast", { event: "m", args: ["t3"] }); // everyone
    await ack(A, "except-rooms", { rooms: [r2], event: "m", args: ["t4"] }); // B (not the sender, not r2)
    await ack(C, "join", r1);
    await ack(A, "to-rooms", { rooms: [r1, r2], event: "m", args: ["t5"] }); // B C, once each
    out.leaveB = await ack(B, "leave", r1);
    await ack(A, "to-rooms", { rooms: [r1], event: "m", args: ["t6"] }); // C
    await ack(A, "broadcast", { to: [r1], event: "m", args: ["t7", Buffer.from([7, 7])] }); // A C
    await ack(A, "broadcast", { to: [r1, r2, B.id], event: "m", args: ["end"] });
    await until(() => got.every((g) => g.some((x) => x === "end")), 3000, "end markers");
    out.ids = [A.id, B.id, C.id];
    out.A = got[0];
    out.B = got[1];
    out.C = got[2];
    return out;
  },

  async broadcastAck() {
    const [A, B, C] = [0, 1, 2].map((i) => client("/", {}, modeOf(i)));
    await Promise.all([A, B, C].map(ready));
    const room = `${TAG}-ack`;
    const all = `${TAG}-all`;
    for (const [name, s] of [["A", A], ["B", B], ["C", C]]) {
      s.on("survey", (q, cb) => cb({ name, q }));
      s.on("survey-bin", (cb) => cb(Buffer.from(name)));
      if (name !== "B") s.on("survey-partial", (cb) => cb(name));
      await ack(s, "join", all);
    }
    await ack(A, "join", room);
    await ack(B, "join", room);
    const out = {};
    out.room = await ack(A, "broadcast-ack", { to: [room], timeout: 2, event: "survey", args: ["q1"] });
    out.all = await ack(A, "broadcast-ack", { to: [all], timeout: 2, event: "survey", args: ["q2"] });
    out.except = await ack(A, "broadcast-ack", { to: [all], except: [room], timeout: 2, event: "survey", args: ["q3"] });
    out.bin = plain(await ack(A, "broadcast-ack", { to: [all], timeout: 2, event: "survey-bin" }));
    const t0 = Date.now();
    out.partial = await ack(A, "broadcast-ack", { to: [all], timeout: 0.5, event: "survey-partial" });
    out.partialElapsedMs = Date.now() - t0;
    out.empty = await ack(A, "broadcast-ack", { to: [`${TAG}-nobody`], timeout: 1, event: "survey", args: ["q4"] });
    return out;
  },

  async namespaces() {
    const out = {};
    const custom = client("/custom");
    const dyn = client("/dyn-42");
    const bad = client("/nope");
    await Promise.all([ready(custom), ready(dyn)]);
    out.customWelcome = custom.rec.welcome;
    out.customWho = await ack(custom, "whoami");
    out.dynWelcome = dyn.rec.welcome;
    out.dynWho = await ack(dyn, "whoami");
    out.dynEcho = await ack(dyn, "echo", "dyn");
    await until(() => bad.rec.connectErrors.length > 0, 3000, "connect_error on /nope");
    await sleep(300);
    out.bad = { errors: bad.rec.connectErrors, connected: bad.connected, connects: bad.rec.connects };

    // "/" and "/custom" multiplexed over one Engine.IO connection
    const main = client("/");
    const sub = main.io.socket("/custom");
    sub.on("welcome", (w) => (sub.welcome = w));
    sockets.push(sub);
    await ready(main);
    await until(() => sub.connected && sub.welcome, 3000, "multiplexed /custom");
    const gotMain = collect(main, "iso");
    const gotSub = collect(sub, "iso");
    await ack(main, "broadcast", { event: "iso", args: ["from /"] });
    await ack(sub, "broadcast", { event: "iso", args: ["from /custom"] });
    await until(() => gotMain.length > 0 && gotSub.length > 0, 3000, "iso broadcasts");
    await ack(main, "echo", "sync");
    await ack(sub, "echo", "sync");
    out.multiplex = {
      sameEngine: main.io.engine === sub.io.engine,
      mainId: main.id,
      subId: sub.id,
      subWelcome: sub.welcome,
      gotMain,
      gotSub,
    };
    // a namespace disconnect of /custom leaves "/" on the same connection alive
    sub.emit("server-disconnect-me");
    await until(() => !sub.connected, 3000, "/custom disconnected");
    await sleep(200);
    out.afterSubDisconnect = { mainConnected: main.connected, mainEcho: await ack(main, "echo", "alive") };
    out.subServerReason = await serverReason(out.multiplex.subId);
    return out;
  },

  async middleware() {
    const out = {};
    const bad = client("/", { auth: { token: "bad" } });
    const badCustom = client("/custom", { auth: { token: "bad" } });
    await until(() => bad.rec.connectErrors.length > 0 && badCustom.rec.connectErrors.length > 0, 3000, "connect_error");
    await sleep(300); // no retry should happen
    out.bad = { errors: bad.rec.connectErrors, connected: bad.connected, connects: bad.rec.connects, active: bad.active };
    out.badCustom = { errors: badCustom.rec.connectErrors, connected: badCustom.connected };
    const good = client("/", { auth: { token: "good" } });
    await ready(good);
    out.goodWho = await ack(good, "whoami");
    return out;
  },

  // the server disconnects the namespace socket (extra[0] === "close": disconnect(close=True))
  async serverDisconnect() {
    const s = client("/");
    await ready(s);
    const id = s.id;
    let reconnectAttempts = 0;
    s.io.on("reconnect_attempt", () => reconnectAttempts++);
    s.emit(extra[0] === "close" ? "server-close-me" : "server-disconnect-me");
    await until(() => s.rec.disconnects.length > 0, 3000, "disconnect");
    await sleep(800); // a reconnection (there must be none) would happen within this window
    return {
      id,
      reasons: s.rec.disconnects,
      connected: s.connected,
      active: s.active,
      connects: s.rec.connects,
      reconnectAttempts,
      serverReason: await serverReason(id),
    };
  },

  async clientDisconnect() {
    const s = client("/");
    await ready(s);
    const id = s.id;
    s.disconnect();
    return { id, reasons: s.rec.disconnects, serverReason: await serverReason(id) };
  },

  // the client's Engine.IO transport closes: the server sees "transport close", the client reconnects
  async transportClose() {
    const s = client("/");
    await ready(s);
    const id1 = s.id;
    s.io.engine.close();
    await until(() => s.connected && s.id !== id1, 4000, "reconnection");
    return {
      id1,
      id2: s.id,
      reasons: s.rec.disconnects,
      connects: s.rec.connects,
      echo: await ack(s, "echo", "back"),
      serverReason: await serverReason(id1),
    };
  },

  // kick a room's sockets with disconnect_sockets; the kicked client must not reconnect
  async kick() {
    const [A, B, C] = [0, 1, 2].map((i) => client("/", {}, modeOf(i)));
    await Promise.all([A, B, C].map(ready));
    const room = `${TAG}-kick`;
    await ack(B, "join", room);
    await ack(C, "join", room);
    const ids = [A.id, B.id, C.id];
    await ack(A, "disconnect-sockets", { to: [room], close: extra[0] === "close" });
    await until(() => !B.connected && !C.connected, 3000, "kicked");
    await sleep(500);
    return {
      ids,
      connected: [A.connected, B.connected, C.connected],
      reasons: [A, B, C].map((s) => s.rec.disconnects),
      connects: [A, B, C].map((s) => s.rec.connects),
      echoA: await ack(A, "echo", "A ok"),
      serverReasons: [await serverReason(ids[1]), await serverReason(ids[2])],
    };
  },

  async fetch() {
    const [A, B, C] = [0, 1, 2].map((i) => client("/", {}, modeOf(i)));
    await Promise.all([A, B, C].map(ready));
    const fs = `${TAG}-fs`;
    const fs2 = `${TAG}-fs2`;
    await ack(A, "join", fs);
    await ack(B, "join", fs);
    const out = { ids: [A.id, B.id, C.id], fs, fs2 };
    out.fetched = await ack(C, "fetch-sockets", { to: [fs] });
    out.fetchedAll = await ack(C, "fetch-sockets", {});
    await ack(C, "sockets-join", { to: [fs], room: fs2 });
    out.afterJoin = await ack(C, "fetch-sockets", { to: [fs2] });
    out.roomsA = (await ack(A, "whoami")).rooms;
    const got = [A, B, C].map((s) => collect(s, "fs2-msg"));
    await ack(C, "broadcast", { to: [fs2], event: "fs2-msg", args: ["hi"] });
    await until(() => got[0].length && got[1].length, 3000, "fs2 broadcast");
    await ack(C, "sockets-leave", { to: [fs2], except: [B.id], room: fs2 });
    out.afterLeave = await ack(C, "fetch-sockets", { to: [fs2] });
    await ack(A, "echo", "sync");
    await ack(B, "echo", "sync");
    out.got = got;
    return out;
  },

  // volatile and local broadcasts (A triggers; B and C are in the room)
  async volatileLocal() {
    const [A, B, C] = [0, 1, 2].map((i) => client("/", {}, modeOf(i)));
    await Promise.all([A, B, C].map(ready));
    const room = `${TAG}-vl`;
    await ack(B, "join", room);
    await ack(C, "join", room);
    const got = [A, B, C].map((s) => collect(s, "v"));
    const vt = collect(A, "vt");
    // Let every client settle so that a polling client has its next GET waiting at the server:
    // a volatile packet is only written to a transport that can take it at once.
    const settle = () => sleep(150);
    await settle();
    await ack(A, "broadcast", { to: [room], volatile: true, event: "v", args: ["vol-room"] }); // B C
    await settle();
    await ack(A, "broadcast", { volatile: true, event: "v", args: ["vol-all", Buffer.from([1, 2])] }); // A B C
    await ack(A, "broadcast", { to: [room], local: true, event: "v", args: ["local-room"] }); // B C
    await ack(A, "broadcast", { local: true, event: "v", args: ["local-all"] }); // A B C
    await ack(A, "server-local", { to: [room], event: "v", args: ["rt-local-room"] }); // B C
    await ack(A, "server-local", { event: "v", args: ["rt-local-all"] }); // A B C
    await ack(A, "broadcast", { volatile: true, local: true, except: [room], event: "v", args: ["vol-local-except"] }); // A
    await ack(A, "broadcast", { event: "v", args: ["end"] });
    await until(() => got.every((g) => g.includes("end")), 3000, "end markers");
    // a volatile packet right after a plain one (same handler, no suspension in between)
    await settle();
    await ack(A, "emit-then-volatile");
    await until(() => vt.includes("plain-2"), 3000, "plain-2");
    await ack(A, "echo", "sync"); // anything still on its way has arrived by now
    return {
      modes: [A, B, C].map((s) => s.rec.mode),
      transports: [A, B, C].map((s) => s.io.engine.transport.name),
      A: got[0],
      B: got[1],
      C: got[2],
      vt,
      disconnects: [A, B, C].map((s) => s.rec.disconnects),
    };
  },

  // the catch-all (router.on_any) gets the events that have no handler of their own
  async catchAll() {
    const s = client("/");
    await ready(s);
    const custom = subSocket(s, "/custom");
    await until(() => custom.connected, 3000, "/custom");
    const out = {};
    out.one = await ackAll(s, "no-such-event", 1, "two", { three: [3] });
    out.none = await ackAll(s, "bare");
    out.bin = plain(await ack(s, "binary-thing", Buffer.from([0xde, 0xad])));
    out.custom = await ack(custom, "custom-thing", "x");
    s.emit("fire-and-forget", "no ack"); // no ack asked: the catch-all still runs
    out.echo = await ack(s, "echo", "handled"); // has its own handler: not caught
    out.caught = plain(await ack(s, "caught-get"));
    out.caughtCustom = await ack(custom, "caught-get");
    return out;
  },

  // namespaces given as callables: a plain one (/fn-*) and an async one looking at the auth (/vip-*)
  async callableNamespaces() {
    const fnName = `/fn-${TAG}`;
    const vipName = `/vip-${TAG}`;
    const fn = client(fnName);
    const notVip = client(vipName, { auth: { vip: false } });
    await ready(fn);
    await until(() => notVip.rec.connectErrors.length > 0, 3000, "connect_error on the vip namespace");
    const vip = client(vipName, { auth: { vip: true } });
    await ready(vip);
    const out = {
      fnName,
      vipName,
      fnWelcome: fn.rec.welcome,
      fnWho: await ack(fn, "whoami"),
      fnEcho: await ack(fn, "echo", "fn"),
      notVip: { errors: notVip.rec.connectErrors, connected: notVip.connected },
      vipWelcome: vip.rec.welcome,
      vipWho: await ack(vip, "whoami"),
    };
    // broadcasts stay inside the dynamic namespace
    const gotFn = collect(fn, "dn");
    const gotVip = collect(vip, "dn");
    await ack(vip, "broadcast", { event: "dn", args: ["to vip"] });
    await until(() => gotVip.length > 0, 3000, "broadcast in the vip namespace");
    await ack(fn, "echo", "sync");
    out.gotFn = gotFn;
    out.gotVip = gotVip;
    return out;
  },

  // socket.data (middleware, connect handler, events, fetch_sockets) and the handshake
  async dataHandshake() {
    const before = Date.now();
    const s = client("/", { auth: { nick: "ada" }, query: { foo: "bar" }, extraHeaders: { "x-interop": "node" } });
    const other = client("/", { auth: { nick: "bob" } });
    await Promise.all([ready(s), ready(other)]);
    const room = `${TAG}-data`;
    await ack(s, "join", room);
    await ack(other, "join", room);
    const out = { ids: [s.id, other.id], room, before };
    out.initial = await ack(s, "get-data");
    out.afterSet = await ackAll(s, "set-data", "score", { n: 1 });
    await ackAll(s, "set-data", "score", { n: 2 });
    out.later = await ack(s, "get-data");
    out.fetched = await ack(other, "fetch-sockets", { to: [room], details: true });
    out.handshake = await ack(s, "handshake");
    out.otherHandshake = await ack(other, "handshake");
    out.after = Date.now();
    return out;
  },

  // a client opens the Engine.IO connection but joins no namespace: closed after connect_timeout
  async connectTimeout() {
    const joined = client("/");
    const m = new Manager(base, { autoConnect: false, reconnection: false, ...transportOpts(mode) });
    const t0 = Date.now();
    let opened = null;
    let closed = null;
    m.on("close", (reason) => (closed = { reason, afterMs: Date.now() - t0 }));
    m.open((err) => (opened = err ? String(err) : "ok"));
    await ready(joined);
    await until(() => closed !== null, 5000, "close of the idle connection");
    await sleep(200);
    return {
      opened,
      closed,
      openedTransport: m.engine?.transport?.name ?? null,
      joinedConnected: joined.connected,
      joinedDisconnects: joined.rec.disconnects,
      joinedEcho: await ack(joined, "echo", "still here"),
    };
  },

  // more binary attachments than max_attachments (10): the sender is cut off with "parse error",
  // a client connected at the same time carries on
  async attachments() {
    const bad = client("/", { reconnection: false });
    const other = client("/");
    await Promise.all([ready(bad), ready(other)]);
    const bufs = (n) => Array.from({ length: n }, (_, i) => Buffer.from([i]));
    const out = { id: bad.id };
    out.ten = plain(await ack(bad, "echo", bufs(10))); // exactly the limit is fine
    bad.emit("echo", bufs(11));
    await until(() => bad.rec.disconnects.length > 0, 3000, "disconnect of the sender");
    await sleep(200);
    out.badReasons = bad.rec.disconnects;
    out.badConnected = bad.connected;
    out.serverReason = await serverReason(out.id); // bad.id is unset once disconnected
    out.other = { connected: other.connected, disconnects: other.rec.disconnects, echo: await ack(other, "echo", "fine") };
    return out;
  },

  // packets that break the session rules: "forced server close"; a malformed packet: "parse error"
  async badPackets() {
    const twice = client("/", { reconnection: false }); // a second CONNECT for "/"
    const twiceSub = subSocket(twice, "/custom");
    const stranger = client("/", { reconnection: false }); // an event for a namespace it has not joined
    const garbled = client("/", { reconnection: false }); // an EVENT whose payload is not an array
    const other = client("/");
    await Promise.all([twice, stranger, garbled, other].map(ready));
    await until(() => twiceSub.connected, 3000, "/custom");
    const ids = { twice: twice.id, twiceSub: twiceSub.id, stranger: stranger.id, garbled: garbled.id };
    // the raw Socket.IO packets go through the client's own Engine.IO socket ("4" + packet)
    twice.io.engine.write("0");
    stranger.io.engine.write('2/custom,["echo","x"]');
    garbled.io.engine.write('2{"not":"an array"}');
    const victims = [twice, twiceSub, stranger, garbled];
    await until(() => victims.every((s) => s.rec.disconnects.length > 0), 3000, "disconnects");
    await sleep(200);
    return {
      ids,
      clientReasons: {
        twice: twice.rec.disconnects,
        twiceSub: twiceSub.rec.disconnects,
        stranger: stranger.rec.disconnects,
        garbled: garbled.rec.disconnects,
      },
      serverReasons: {
        twice: await serverReason(ids.twice),
        twiceSub: await serverReason(ids.twiceSub),
        stranger: await serverReason(ids.stranger),
        garbled: await serverReason(ids.garbled),
      },
      other: { connected: other.connected, disconnects: other.rec.disconnects, echo: await ack(other, "echo", "fine") },
    };
  },

  // the client freezes longer than pingInterval + pingTimeout: the server must drop it with
  // "ping timeout" and the client must reconnect by itself
  async pingTimeout() {
    const s = client("/");
    await ready(s);
    const id1 = s.id;
    const freezeMs = Number(extra[0] ?? 1500);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, freezeMs); // blocks the event loop
    await until(() => s.connected && s.id !== id1, 5000, "reconnection");
    return {
      id1,
      id2: s.id,
      reasons: s.rec.disconnects,
      echo: await ack(s, "echo", "back"),
      serverReason: await serverReason(id1),
    };
  },

  // the test stops and restarts the server after the "connected" line
  async restart() {
    const s = client("/");
    await ready(s);
    const id1 = s.id;
    line({ event: "connected", id: id1, transport: s.io.engine.transport.name });
    await until(() => s.rec.disconnects.length > 0, LIMIT_MS, "disconnect");
    await until(() => s.connected && s.id !== id1, LIMIT_MS, "reconnection");
    return {
      id1,
      id2: s.id,
      reasons: s.rec.disconnects,
      connects: s.rec.connects,
      echo: await ack(s, "echo", "back"),
    };
  },
};

const run = scenarios[scenario];
if (!run || !base) {
  finish(1, { ok: false, error: `usage: scenarios.mjs <${Object.keys(scenarios).join("|")}> <base-url> <mode>` });
} else {
  run().then(
    (res) => finish(0, { ok: true, ...res }),
    (err) => finish(1, { ok: false, error: String(err?.stack ?? err), trace }),
  );
}
