// A real Node socket.io 4.8 server that joins a Redis-backed cluster, driven by the mixed-cluster tests.
//
//   node cluster_node.mjs <port> <redisUrl> <adapter> [optionsJSON]
//
// adapter:
//   redis    @socket.io/redis-adapter createAdapter(pub, sub)          (classic pub/sub, msgpack)
//   sharded  @socket.io/redis-adapter createShardedAdapter(pub, sub)   (SSUBSCRIBE/SPUBLISH; Redis >= 7)
//   streams  @socket.io/redis-streams-adapter createAdapter(client)    (connection state recovery on)
//
// optionsJSON (all optional):
//   cluster: ["redis://127.0.0.1:7000", ...]  use a Redis Cluster (createCluster) instead of <redisUrl>
//   namespaces: ["/chat", ...]                 extra namespaces served besides "/"
//   connectionStateRecovery: {...}             Server option (streams default: 120000 ms, skipMiddlewares)
//   server: {...}                              extra Server options (pingInterval, ...)
//   anything else (key, requestsTimeout, publishOnSpecificResponseChannel, channelPrefix, subscriptionMode,
//   streamName, streamCount, maxLen, blockTimeInMs, useShardedPubSub, ...) goes to the adapter factory.
//
// It listens on 127.0.0.1:<port> (socket.io at /socket.io/, the control API at /control/<name>) and prints
// one line {"ready": true, "uid": <uid of "/">, "uids": {nsp: uid}, "port": <port>} once every adapter's
// subscriptions are live in Redis (and, for streams, its XREAD loop is blocked on the stream), so that a
// message published after "ready" reaches it. Fatal errors print {"ready": false, "error": ...} and exit 1.
//
// On every namespace served: a middleware joins the rooms of `handshake.auth.rooms` and sets
// socket.data = handshake.auth.data ?? {node: "node"} (before CONNECT, subscriptions confirmed); client events
// `echo` (acks its args) and `broadcast` {rooms?, except?, event, args} (io.of(nsp).to().except().emit(), acks
// true); server-side `ping-node` acks {from: "node", args}; every server-side and client event is recorded.
//
// Control API: POST /control/<name>, a JSON body (each takes nsp, default "/"), a JSON answer (500 {error,
// stack} on failure). rooms/except select sockets as io.to(rooms).except(except) does.
//   emit {event, args, rooms, except, volatile?, local?, compress?}    -> {ok}
//   emitWithAck {event, args, rooms, except, timeout=5000}              -> {responses} | {error, responses}
//   fetchSockets {rooms, except, local?, timeout?}                      -> [{id, rooms, data, handshake}]
//   socketsJoin / socketsLeave {rooms, except, target, local?}          -> {ok}
//   disconnectSockets {rooms, except, close, local?}                    -> {ok}
//   serverSideEmit {event, args, ack=false, timeout=8000 (a guard)}     -> {ok} | {responses} | {error, responses}
//   serverCount -> {count}          received -> [{nsp, event, args, ack}]   events -> [{nsp, id, event, args, ack}]
//   localSockets -> [{id, rooms}]   rooms -> {room: [sid]}   settle -> {ok} (pending subscriptions confirmed)
//   reset -> {ok} (clears received and events)
// Binary values travel in the control API's JSON as {"$bin": "<hex>"}, both ways (tests/interop/node.py unbin).

import http from "node:http";
import { randomBytes } from "node:crypto";
import { Server } from "socket.io";
import { createClient, createCluster } from "redis";
import { createAdapter as createRedisAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";

const [portArg, redisUrl, adapterKind, optionsArg] = process.argv.slice(2);
const port = Number(portArg);
const options = optionsArg ? JSON.parse(optionsArg) : {};
const {
  cluster: clusterUrls,
  namespaces: extraNamespaces = [],
  connectionStateRecovery,
  server: serverOptions = {},
  ...adapterOptions
} = options;
const READY_TIMEOUT_MS = 15000;

function line(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function fail(err) {
  line({ ready: false, error: String(err?.stack ?? err) });
  process.exit(1);
}

if (!Number.isInteger(port) || !redisUrl || !["redis", "sharded", "streams"].includes(adapterKind)) {
  fail("usage: node cluster_node.mjs <port> <redisUrl> redis|sharded|streams [optionsJSON]");
}

// ---- JSON <-> values: {"$bin": hex} stands for a Buffer -------------------------------------------------

function toJson(value) {
  if (Buffer.isBuffer(value)) return { $bin: value.toString("hex") };
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString("hex") };
  if (ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex") };
  }
  if (value instanceof Set) return [...value].map(toJson);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [k, toJson(v)]));
  if (Array.isArray(value)) return value.filter((v) => typeof v !== "function").map(toJson);
  if (value && typeof value === "object" && typeof value.toJSON !== "function") {
    const out = {};
    for (const [k, v] of Object.entries(value)) if (typeof v !== "function") out[k] = toJson(v);
    return out;
  }
  return value;
}

function fromJson(value) {
  if (Array.isArray(value)) return value.map(fromJson);
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$bin" && typeof value.$bin === "string") {
      return Buffer.from(value.$bin, "hex");
    }
    return Object.fromEntries(keys.map((k) => [k, fromJson(value[k])]));
  }
  return value;
}

const asList = (v) => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- subscription tracking ---------------------------------------------------------------------------
// The adapters fire (S|P)SUBSCRIBE without awaiting them; wrapping the clients' methods lets "ready", the
// connection middleware and /control/settle wait until Redis has confirmed every subscription.

const pending = new Set();
let stopping = false;

function track(result) {
  if (result && typeof result.then === "function") {
    const p = Promise.resolve(result).catch((err) => {
      if (!stopping) process.stderr.write(`subscription failed: ${err}\n`); // on stop: "Disconnects client"
    });
    pending.add(p);
    p.finally(() => pending.delete(p));
  }
  return result;
}

async function settle() {
  while (pending.size > 0) await Promise.all([...pending]);
}

function instrument(client) {
  for (const name of ["subscribe", "pSubscribe", "sSubscribe", "unsubscribe", "pUnsubscribe", "sUnsubscribe"]) {
    const original = client[name];
    if (typeof original === "function") client[name] = (...args) => track(original.apply(client, args));
  }
  // the streams adapter duplicates the client for its subscriber and its XREAD loops
  const duplicate = client.duplicate;
  if (typeof duplicate === "function") {
    client.duplicate = (...args) => {
      const copy = instrument(duplicate.apply(client, args));
      clients.push(copy);
      return copy;
    };
  }
  return client;
}

// ---- Redis clients and the adapter ------------------------------------------------------------------

// a name unique to this process: CLIENT LIST then tells its connections apart (the streams XREAD check)
const clientName = `sio-node-${port}-${randomBytes(4).toString("hex")}`;
const clients = [];

async function connectClient() {
  const client = clusterUrls
    ? createCluster({ rootNodes: clusterUrls.map((url) => ({ url })), defaults: { name: clientName } })
    : createClient({ url: redisUrl, name: clientName });
  client.on("error", (err) => process.stderr.write(`redis client error: ${err}\n`));
  instrument(client);
  clients.push(client);
  await client.connect();
  return client;
}

const pubClient = await connectClient().catch(fail);
let adapterFactory;
let serverExtra = {};
if (adapterKind === "streams") {
  adapterFactory = createStreamsAdapter(pubClient, adapterOptions);
  serverExtra = { connectionStateRecovery: { maxDisconnectionDuration: 120000, skipMiddlewares: true } };
} else {
  const subClient = pubClient.duplicate(); // instrumented by the wrapped duplicate()
  subClient.on("error", (err) => process.stderr.write(`redis sub client error: ${err}\n`));
  await subClient.connect().catch(fail);
  const create = adapterKind === "redis" ? createRedisAdapter : createShardedAdapter;
  adapterFactory = create(pubClient, subClient, adapterOptions);
}

// `PUBSUB <kind> channel`, summed over the masters of a cluster (as the adapters count nodes)
async function numsub(kind, channel) {
  const nodes = clusterUrls ? pubClient.masters.map((m) => m.client) : [pubClient];
  let total = 0;
  for (const node of nodes) {
    const reply = await node.sendCommand(["PUBSUB", kind, channel]);
    total += Number(reply[1]);
  }
  return total;
}

// ---- the socket.io server ---------------------------------------------------------------------------

const httpServer = http.createServer((req, res) => handleControl(req, res));
const io = new Server(httpServer, {
  adapter: adapterFactory,
  ...serverExtra,
  ...(connectionStateRecovery !== undefined ? { connectionStateRecovery } : {}),
  ...serverOptions,
});

const namespaceNames = ["/", ...extraNamespaces.filter((n) => n !== "/")];
const received = []; // server-side events: {nsp, event, args, ack}
const events = []; // client events: {nsp, id, event, args, ack}

function serve(nsp) {
  // Rooms and data are set in a middleware rather than on "connection", so that they are in place (and a
  // sharded adapter's per-room SSUBSCRIBE is live) before the client sees its CONNECT.
  nsp.use(async (socket, next) => {
    try {
      const auth = socket.handshake.auth ?? {};
      const rooms = asList(auth.rooms);
      // its own room first, as socket.io's connect does, so socket.rooms keeps the usual order
      if (rooms.length) socket.join([socket.id, ...rooms]);
      socket.data = auth.data ?? { node: "node" };
      await settle();
      next();
    } catch (err) {
      next(err);
    }
  });

  nsp.on("connection", (socket) => {
    socket.onAny((event, ...args) => {
      const ack = typeof args[args.length - 1] === "function";
      events.push({ nsp: nsp.name, id: socket.id, event, args: toJson(args), ack });
    });
    socket.on("echo", (...args) => {
      const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
      ack?.(...args);
    });
    socket.on("broadcast", (spec, ack) => {
      const { rooms, except, event, args = [] } = spec ?? {};
      nsp.to(asList(rooms)).except(asList(except)).emit(event, ...fromJson(args));
      if (typeof ack === "function") ack(true);
    });
  });

  // every server-side event is recorded, whatever its name; `ping-node` also answers its ack
  const onServerSideEmit = nsp._onServerSideEmit.bind(nsp);
  nsp._onServerSideEmit = (packet) => {
    const [event, ...rest] = packet;
    const ack = typeof rest[rest.length - 1] === "function";
    received.push({ nsp: nsp.name, event, args: toJson(rest), ack });
    return onServerSideEmit(packet);
  };
  nsp.on("ping-node", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    ack?.({ from: "node", args });
  });
}

for (const name of namespaceNames) serve(io.of(name));

// ---- the control API --------------------------------------------------------------------------------

function target(body, { volatile = false, local = false, compress } = {}) {
  let op = io.of(body.nsp ?? "/");
  if (volatile) op = op.volatile;
  if (local) op = op.local;
  if (compress !== undefined) op = op.compress(compress);
  return op.to(asList(body.rooms)).except(asList(body.except));
}

function socketInfo(socket) {
  return { id: socket.id, rooms: [...socket.rooms], data: socket.data, handshake: socket.handshake };
}

function withTimeout(ms, run) {
  // a last resort, so that a control call always answers; the adapters' own timeouts come first
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ error: `no answer within ${ms} ms (control)`, responses: [] }), ms);
    run((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

// The adapters' addSockets/delSockets/disconnectSockets, with the arguments BroadcastOperator passes, so the
// call can be awaited (the public methods return nothing). `local` restricts them to this node.
function remoteOp(body) {
  const adapter = io.of(body.nsp ?? "/").adapter;
  return {
    adapter,
    opts: {
      rooms: new Set(asList(body.rooms)),
      except: new Set(asList(body.except)),
      flags: body.local ? { local: true } : {},
    },
  };
}

const controls = {
  async emit(body) {
    target(body, body).emit(body.event, ...asList(body.args));
    return { ok: true };
  },
  emitWithAck(body) {
    const timeout = body.timeout ?? 5000;
    return withTimeout(timeout + 3000, (done) =>
      target(body, body)
        .timeout(timeout)
        .emit(body.event, ...asList(body.args), (err, responses) =>
          done(err ? { error: err.message, responses } : { responses }),
        ),
    );
  },
  async fetchSockets(body) {
    let op = target(body, body);
    if (body.timeout !== undefined) op = op.timeout(body.timeout);
    const sockets = await op.fetchSockets();
    return sockets.map(socketInfo);
  },
  async socketsJoin(body) {
    const { adapter, opts } = remoteOp(body);
    await adapter.addSockets(opts, asList(body.target));
    await settle();
    return { ok: true };
  },
  async socketsLeave(body) {
    const { adapter, opts } = remoteOp(body);
    await adapter.delSockets(opts, asList(body.target));
    await settle();
    return { ok: true };
  },
  async disconnectSockets(body) {
    const { adapter, opts } = remoteOp(body);
    await adapter.disconnectSockets(opts, !!body.close);
    return { ok: true };
  },
  serverSideEmit(body) {
    const nsp = io.of(body.nsp ?? "/");
    const args = asList(body.args);
    if (!body.ack) {
      nsp.serverSideEmit(body.event, ...args);
      return { ok: true };
    }
    return withTimeout(body.timeout ?? 8000, (done) =>
      nsp.serverSideEmit(body.event, ...args, (err, responses) =>
        done(err ? { error: err.message, responses: responses ?? [] } : { responses }),
      ),
    );
  },
  async serverCount(body) {
    return { count: await io.of(body.nsp ?? "/").adapter.serverCount() };
  },
  async received(body) {
    return body.nsp ? received.filter((r) => r.nsp === body.nsp) : received;
  },
  async events(body) {
    return body.nsp ? events.filter((e) => e.nsp === body.nsp) : events;
  },
  async localSockets(body) {
    return [...io.of(body.nsp ?? "/").sockets.values()].map((s) => ({ id: s.id, rooms: [...s.rooms] }));
  },
  async rooms(body) {
    // this node's room map: {room: [sid, ...]}
    const rooms = io.of(body.nsp ?? "/").adapter.rooms;
    return Object.fromEntries([...rooms].map(([room, sids]) => [room, [...sids]]));
  },
  async settle() {
    await settle();
    return { ok: true };
  },
  async reset() {
    received.length = 0;
    events.length = 0;
    return { ok: true };
  },
};

function handleControl(req, res) {
  const reply = (status, value) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(toJson(value)));
  };
  const match = /^\/control\/([A-Za-z]+)$/.exec(new URL(req.url, "http://x").pathname);
  const control = match && Object.hasOwn(controls, match[1]) ? controls[match[1]] : null;
  if (!control || req.method !== "POST") return reply(404, { error: `no control ${req.method} ${req.url}` });
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    try {
      const raw = Buffer.concat(chunks).toString();
      const body = fromJson(raw ? JSON.parse(raw) : {});
      reply(200, await control(body));
    } catch (err) {
      reply(500, { error: String(err?.message ?? err), stack: String(err?.stack ?? "") });
    }
  });
}

// ---- readiness ----------------------------------------------------------------------------------------

// Every adapter's private channel is unique to it and subscribed by the same command as (or after) its
// other channels on the same connection, so NUMSUB = 1 on it means the subscriptions are live in Redis.
function privateChannel(nsp) {
  const uid = nsp.adapter.uid;
  if (adapterKind === "redis") {
    return ["NUMSUB", `${adapterOptions.key ?? "socket.io"}-response#${nsp.name}#${uid}#`];
  }
  const kind = adapterKind === "sharded" || adapterOptions.useShardedPubSub ? "SHARDNUMSUB" : "NUMSUB";
  return [kind, `${adapterOptions.channelPrefix ?? "socket.io"}#${nsp.name}#${uid}#`];
}

// The streams adapter's XREAD loops start at "$": an entry added before the first XREAD blocks is never read.
async function blockedReaders() {
  const list = String(await pubClient.sendCommand(["CLIENT", "LIST"]));
  return list
    .split("\n")
    .filter((l) => l.includes(` name=${clientName} `) && / cmd=xread /.test(l) && / flags=\S*b/.test(l)).length;
}

async function waitReady() {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const check = async () => {
    await settle();
    for (const name of namespaceNames) {
      const [kind, channel] = privateChannel(io.of(name));
      if ((await numsub(kind, channel)) < 1) return `${kind} ${channel}`;
    }
    if (adapterKind === "streams" && !clusterUrls) {
      const streams = adapterOptions.streamCount ?? 1;
      if ((await blockedReaders()) < streams) return "XREAD loop";
    }
    return null;
  };
  for (;;) {
    const missing = await check();
    if (missing === null) return;
    if (Date.now() > deadline) throw new Error(`not subscribed within ${READY_TIMEOUT_MS} ms: ${missing}`);
    await sleep(20);
  }
}

// ---- start and stop -----------------------------------------------------------------------------------

async function stop() {
  if (stopping) return;
  stopping = true;
  const quit = (async () => {
    await io.close(); // disconnects the sockets, closes the adapters and the http server
    await Promise.allSettled(clients.map((c) => (c.isOpen ? c.disconnect() : null)));
  })();
  // the streams adapter's XREAD may block for blockTimeInMs: do not wait for it
  await Promise.race([quit.catch(() => {}), sleep(2000)]);
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

try {
  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(port, "127.0.0.1", resolve);
  });
  await waitReady();
} catch (err) {
  fail(err);
}
line({
  ready: true,
  uid: io.of("/").adapter.uid,
  uids: Object.fromEntries(namespaceNames.map((n) => [n, io.of(n).adapter.uid])),
  port,
});
