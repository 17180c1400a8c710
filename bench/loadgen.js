'use strict';
// Load generator for `python -m bench`. Speaks the Engine.IO v4 / Socket.IO v5 text protocol
// directly over `ws` (WebSocket) or node's http with a keep-alive agent (long-polling), so the
// client side stays cheap enough not to be the bottleneck.
//
// Usage: node loadgen.js '<json config>'. Progress and results are JSON lines on stdout:
//   {"event":"window_start"} / {"event":"window_end"}  measurement window boundaries
//   {"event":"ready",...}   (idle mode) all connections are open; send "close\n" on stdin to end;
//                           (conns mode) send "go\n" to start the ack load
//   {"event":"result",...}  final figures
//   {"event":"connect_start"} / {"event":"connect_end",...} / {"event":"ready"}  (conns mode)
// Modes: ack-ws, ack-polling, broadcast, idle, conns. Kinds: sio (Socket.IO server), raw (ASGI echo).
// Broadcast with `urls` (several nodes of one cluster): client i connects to urls[i % n], the
// first client of each url sends the blast at the same time, and every client counts every
// node's messages (target = n * count * clients).

const path = require('path');
const http = require('http');
const { performance } = require('perf_hooks');
const WebSocket = require(require.resolve('ws', {
  paths: [path.join(__dirname, '..', 'tests', 'interop'), __dirname],
}));

const cfg = Object.assign({
  mode: 'ack-ws',
  kind: 'sio',
  host: '127.0.0.1',
  port: 8000,
  path: '/socket.io/',
  clients: 50,
  warmup: 2,          // seconds before the measurement window
  duration: 5,        // seconds of measurement window (broadcast: target length of the run)
  openConcurrency: 100,
  holdMax: 120,       // idle mode: seconds to keep connections open at most
  deflate: false,     // offer permessage-deflate (off: measure the servers, not zlib)
  connectTimeout: 60, // seconds to open all connections
  urls: null,         // broadcast mode: WebSocket base URLs (ws://host:port) of several nodes
  maxMessages: 5000,  // broadcast mode: cap on the messages of one blast (bounds its length)
  ackClients: 50,     // conns mode: clients (spread over all) that run the ack load
}, JSON.parse(process.argv[2] || '{}'));

const now = () => performance.now();
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The same Socket.IO-shaped frame for every server (the raw echo just sends it back).
const PAYLOAD = '{"n":12345,"s":"hello world"}';
const eventFrame = (id) => '42' + id + '["echo",' + PAYLOAD + ']';

const URLS = Array.isArray(cfg.urls) && cfg.urls.length ? cfg.urls : null;

// Client `index`'s node: its entry of `urls` when given, else host:port.
function urlIndex(index) { return URLS ? index % URLS.length : 0; }

function wsUrl(index) {
  const base = URLS ? URLS[urlIndex(index)] : `ws://${cfg.host}:${cfg.port}`;
  if (cfg.kind === 'raw') return `${base}/ws`;
  return `${base}${cfg.path}?EIO=4&transport=websocket`;
}

// Parse the ack id of a Socket.IO ACK "43<id>[...]" without JSON parsing the payload.
function ackId(s) {
  let id = 0;
  for (let i = 2; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) break;
    id = id * 10 + (c - 48);
  }
  return id;
}

// Same on the raw frame bytes (ASCII digits), so hot paths never decode the frame to a string.
function ackIdBuf(b) {
  let id = 0;
  for (let i = 2; i < b.length; i++) {
    const c = b[i];
    if (c < 48 || c > 57) break;
    id = id * 10 + (c - 48);
  }
  return id;
}

// ---------------------------------------------------------------------------------------------
// WebSocket client
class WsClient {
  constructor(index, handlers) {
    this.index = index;
    this.h = handlers; // {onAck(client, id), onEvent(client, text), onEcho(client, text)}
    this.ws = null;
    this.closed = false;
  }

  // Resolves once the Socket.IO CONNECT to "/" is acknowledged (raw: once the WS is open).
  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl(this.index), {
        perMessageDeflate: cfg.deflate,
        skipUTF8Validation: true,
      });
      this.ws = ws;
      let settled = false;
      const done = (err) => {
        if (settled) return;
        settled = true;
        if (err) reject(err); else resolve();
      };
      ws.on('error', (err) => done(err));
      ws.on('close', () => { this.closed = true; done(new Error('closed before connect')); });
      if (cfg.kind === 'raw') {
        ws.on('open', () => done());
        ws.on('message', (data) => this.h.onEcho(this, data));
        return;
      }
      // `data` is a Buffer (text frames included); look at the type bytes only.
      ws.on('message', (data) => {
        const t = data[0];
        if (t === 52 /* 4: message */) {
          const st = data[1];
          if (st === 51 /* 3: ACK */) this.h.onAck(this, ackIdBuf(data));
          else if (st === 50 /* 2: EVENT */) this.h.onEvent(this, data);
          else if (st === 48 /* 0: CONNECT ok */) done();
          else if (st === 52 /* 4: CONNECT_ERROR */) done(new Error('connect_error ' + data));
        } else if (t === 50 /* 2: ping */) {
          ws.send('3');
        } else if (t === 48 /* 0: open */) {
          ws.send('40');
        } else if (t === 49 /* 1: close */) {
          ws.close();
        }
      });
    });
  }

  send(s) { this.ws.send(s); }
  close() { if (this.ws) this.ws.terminate(); }
}

// ---------------------------------------------------------------------------------------------
// Long-polling client: one outstanding GET, at most one POST in flight (Engine.IO closes the
// session on overlapping POSTs), packets queued meanwhile are batched with the \x1e separator.
class PollClient {
  constructor(index, handlers) {
    this.index = index;
    this.h = handlers;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    this.sid = null;
    this.queue = [];
    this.posting = false;
    this.closed = false;
    this.connected = null;
  }

  request(method, query, body) {
    return new Promise((resolve, reject) => {
      const base = cfg.kind === 'raw' ? '/poll' : cfg.path;
      const req = http.request({
        agent: this.agent, host: cfg.host, port: cfg.port, method,
        path: base + '?' + query,
        headers: body === undefined ? {} : {
          'content-type': 'text/plain;charset=UTF-8',
          'content-length': Buffer.byteLength(body),
        },
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode} ${text}`));
          else resolve(text);
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  query() {
    return cfg.kind === 'raw' ? 'sid=' + this.sid : 'EIO=4&transport=polling&sid=' + this.sid;
  }

  async open() {
    if (cfg.kind === 'raw') {
      this.sid = 'c' + this.index + '_' + process.pid;
      this.pollLoop();
      return;
    }
    const hs = await this.request('GET', 'EIO=4&transport=polling');
    if (hs[0] !== '0') throw new Error('bad handshake ' + hs);
    this.sid = JSON.parse(hs.slice(1).split('\x1e')[0]).sid;
    const connected = new Promise((resolve, reject) => { this.connected = { resolve, reject }; });
    this.send('40');
    this.pollLoop();
    await connected;
  }

  send(pkt) {
    this.queue.push(pkt);
    if (!this.posting) this.flush();
  }

  flush() {
    if (this.closed || this.queue.length === 0) return;
    const body = this.queue.join('\x1e');
    this.queue = [];
    this.posting = true;
    this.request('POST', this.query(), body).then(() => {
      this.posting = false;
      this.flush();
    }, (err) => this.fail(err));
  }

  fail(err) {
    if (this.closed) return;
    this.closed = true;
    if (this.connected) this.connected.reject(err);
    if (!stopping) process.stderr.write(`poll client ${this.index}: ${err.message}\n`);
  }

  pollLoop() {
    if (this.closed) return;
    this.request('GET', this.query()).then((body) => {
      const packets = body.split('\x1e');
      for (const p of packets) this.onPacket(p);
      this.pollLoop();
    }, (err) => this.fail(err));
  }

  onPacket(s) {
    if (cfg.kind === 'raw') {
      if (s !== '6') this.h.onEcho(this, s);
      return;
    }
    const t = s.charCodeAt(0);
    if (t === 52) {
      const st = s.charCodeAt(1);
      if (st === 51) this.h.onAck(this, ackId(s));
      else if (st === 50) this.h.onEvent(this, s);
      else if (st === 48) { if (this.connected) { this.connected.resolve(); this.connected = null; } }
      else if (st === 52) { if (this.connected) this.connected.reject(new Error('connect_error ' + s)); }
    } else if (t === 50) {
      this.send('3');
    } else if (t === 49) {
      this.closed = true;
    }
  }

  close() { this.closed = true; this.agent.destroy(); }
}

let stopping = false;

// Open `n` clients with bounded concurrency; returns the ones that connected.
async function openAll(n, make) {
  const clients = [];
  let next = 0;
  let failed = 0;
  let firstError = null;
  const deadline = now() + cfg.connectTimeout * 1000;
  async function worker() {
    while (next < n && now() < deadline) {
      const c = make(next++);
      try {
        await c.open();
        clients.push(c);
      } catch (err) {
        failed++;
        if (!firstError) firstError = err.message;
        c.close();
      }
    }
  }
  const workers = [];
  for (let i = 0; i < Math.min(cfg.openConcurrency, n); i++) workers.push(worker());
  await Promise.all(workers);
  return { clients, failed, firstError };
}

function cpuPercent(startUsage, startTime) {
  const u = process.cpuUsage(startUsage);
  const wall = (now() - startTime) * 1000; // microseconds
  return wall > 0 ? (100 * (u.user + u.system)) / wall : 0;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// ---------------------------------------------------------------------------------------------
// Ack round trips: every client keeps one event-with-ack in flight (raw: one frame awaiting echo).
// `handlers` are the clients' handlers, filled in here (conns mode builds its clients first).
function ackDriver(handlers) {
  let measuring = false;
  let count = 0;
  let latencies = new Float64Array(1 << 16);
  let nlat = 0;
  const record = (c) => {
    const t = now();
    if (measuring) {
      count++;
      if (nlat === latencies.length) {
        const bigger = new Float64Array(latencies.length * 2);
        bigger.set(latencies);
        latencies = bigger;
      }
      latencies[nlat++] = t - c.sentAt;
    }
    if (stopping || c.ackStopped) return;
    c.nextId++;
    c.sentAt = t;
    c.send(eventFrame(c.nextId));
  };
  handlers.onAck = (c, id) => { if (id === c.nextId) record(c); };
  handlers.onEcho = (c) => record(c);
  // Warm-up, then one measurement window; the clients stop sending at its end.
  return async (clients) => {
    for (const c of clients) { c.nextId = 0; c.sentAt = now(); c.send(eventFrame(0)); }
    await sleep(cfg.warmup * 1000);
    const cpu0 = process.cpuUsage();
    const t0 = now();
    measuring = true;
    out({ event: 'window_start' });
    await sleep(cfg.duration * 1000);
    measuring = false;
    const elapsed = (now() - t0) / 1000;
    const cpu = cpuPercent(cpu0, t0);
    out({ event: 'window_end' });
    for (const c of clients) c.ackStopped = true;
    const lat = latencies.slice(0, nlat).sort();
    return {
      value: count / elapsed, unit: 'round-trips/s', count, elapsed, loadgenCpu: cpu,
      latencyMs: { p50: percentile(lat, 50), p99: percentile(lat, 99) },
    };
  };
}

async function runAck(polling) {
  const handlers = { onAck: () => {}, onEcho: () => {}, onEvent: () => {} };
  const drive = ackDriver(handlers);
  const Cls = polling ? PollClient : WsClient;
  const { clients, failed, firstError } = await openAll(cfg.clients, (i) => new Cls(i, handlers));
  if (clients.length === 0) throw new Error('no client connected: ' + firstError);
  const figures = await drive(clients);
  stopping = true;
  for (const c of clients) c.close();
  return Object.assign(figures, { clients: clients.length, failed, firstError });
}

// ---------------------------------------------------------------------------------------------
// Many connections: open `clients` WebSockets (connect rate), report "ready" and wait for "go" on
// stdin (the harness reads the server's memory meanwhile), then run the ack load on `ackClients`
// of them spread over the whole set, with all of them connected.
function waitForLine(word, timeoutS) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutS * 1000);
    let buf = '';
    const onData = (d) => {
      buf += d.toString();
      if (buf.includes(word)) {
        clearTimeout(timer);
        process.stdin.off('data', onData);
        resolve(true);
      }
    };
    process.stdin.on('data', onData);
    process.stdin.on('end', () => { clearTimeout(timer); resolve(false); });
  });
}

async function runConns() {
  const handlers = { onAck: () => {}, onEcho: () => {}, onEvent: () => {} };
  const drive = ackDriver(handlers);
  out({ event: 'connect_start' });
  const t0 = now();
  const { clients, failed, firstError } = await openAll(cfg.clients, (i) => new WsClient(i, handlers));
  const openSeconds = (now() - t0) / 1000;
  out({ event: 'connect_end', opened: clients.length, failed, firstError, openSeconds });
  if (clients.length === 0) throw new Error('no client connected: ' + firstError);
  out({ event: 'ready', opened: clients.length });
  if (!(await waitForLine('go', cfg.holdMax))) throw new Error('no "go" from the harness');
  const k = Math.max(1, Math.min(cfg.ackClients, clients.length));
  const step = clients.length / k;
  const ackers = [];
  for (let i = 0; i < k; i++) ackers.push(clients[Math.floor(i * step)]);
  const figures = await drive(ackers);
  const alive = clients.filter((c) => !c.closed).length;
  stopping = true;
  for (const c of clients) c.close();
  return Object.assign(figures, {
    opened: clients.length, alive, failed, firstError, openSeconds,
    connectRate: clients.length / Math.max(openSeconds, 1e-3), ackClients: k,
  });
}

// Is this frame 42["msg"...? Byte checks: polling hands over strings, WebSocket over Buffers.
function isMsgEvent(b) {
  if (typeof b === 'string') return b.startsWith('42["msg"');
  return b[2] === 91 && b[3] === 34 && b[4] === 109 && b[5] === 115 && b[6] === 103 && b[7] === 34;
}

// ---------------------------------------------------------------------------------------------
// Broadcast: all clients joined the room on connect; client 0 triggers "blast" with N messages and
// every client counts "msg" events. A short probe (which doubles as warm-up) sizes N so that the
// measured blast lasts about `duration` seconds.
async function runBroadcast() {
  let deliveries = 0;
  let lastAt = 0;
  let target = 0;
  let onComplete = null;
  const handlers = {
    onAck: () => {},
    onEcho: () => {},
    onEvent: (c, b) => {
      if (isMsgEvent(b)) {
        deliveries++;
        lastAt = now();
        if (deliveries === target && onComplete) onComplete();
      }
    },
  };
  const { clients, failed, firstError } = await openAll(cfg.clients, (i) => new WsClient(i, handlers));
  if (clients.length === 0) throw new Error('no client connected: ' + firstError);
  await sleep(1000); // let the last room joins land

  // The blast goes to clients[0], or with `urls` to the first client of each node.
  const nodes = URLS ? URLS.length : 1;
  const senders = URLS ? [] : [clients[0]];
  for (let u = 0; URLS && u < nodes; u++) {
    let first = null;
    for (const c of clients) {
      if (urlIndex(c.index) === u && (first === null || c.index < first.index)) first = c;
    }
    if (first === null) throw new Error('no client connected to ' + URLS[u]);
    senders.push(first);
  }

  async function blast(n, timeoutS) {
    deliveries = 0;
    target = nodes * n * clients.length;
    const done = new Promise((resolve) => { onComplete = resolve; });
    const t0 = now();
    lastAt = t0;
    for (const c of senders) c.send('42["blast",' + n + ']');
    await Promise.race([done, sleep(timeoutS * 1000)]);
    onComplete = null;
    return { t0, n, delivered: deliveries, expected: target, elapsed: (lastAt - t0) / 1000 };
  }

  const rateOf = (r) => r.delivered / Math.max(r.elapsed, 1e-3);
  const sizeFor = (rate) =>
    Math.max(5, Math.min(cfg.maxMessages, Math.round((rate * cfg.duration) / (nodes * clients.length))));
  const probe = await blast(3, 30);
  const probeRate = rateOf(probe);
  let n = sizeFor(probeRate);
  let run = null;
  let cpu = 0;
  // A cold server underestimates its rate: rerun (at most twice) while the blast is much shorter
  // than the target duration; earlier attempts double as warm-up.
  for (let attempt = 0; attempt < 3; attempt++) {
    await sleep(500);
    const cpu0 = process.cpuUsage();
    const cpuT0 = now();
    out({ event: 'window_start' });
    run = await blast(n, cfg.duration * 6 + 20);
    cpu = cpuPercent(cpu0, cpuT0);
    out({ event: 'window_end' });
    if (run.elapsed >= 0.6 * cfg.duration || run.delivered < run.expected || n >= cfg.maxMessages) break;
    n = sizeFor(rateOf(run));
  }
  const disconnected = clients.filter((c) => c.closed).length;
  stopping = true;
  for (const c of clients) c.close();
  return {
    value: run.delivered / Math.max(run.elapsed, 1e-3), unit: 'deliveries/s',
    delivered: run.delivered, expected: run.expected, messages: n, elapsed: run.elapsed,
    clients: clients.length, failed, firstError, loadgenCpu: cpu, probeRate,
    disconnected, nodes,
  };
}

// ---------------------------------------------------------------------------------------------
// Idle: open the connections, report, hold them (answering pings) until told to close.
async function runIdle() {
  const handlers = { onAck: () => {}, onEcho: () => {}, onEvent: () => {} };
  const t0 = now();
  const { clients, failed, firstError } = await openAll(cfg.clients, (i) => new WsClient(i, handlers));
  const openSeconds = (now() - t0) / 1000;
  out({ event: 'ready', opened: clients.length, failed, firstError, openSeconds });
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, cfg.holdMax * 1000);
    let buf = '';
    process.stdin.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('close')) { clearTimeout(timer); resolve(); }
    });
    process.stdin.on('end', () => { clearTimeout(timer); resolve(); });
  });
  const alive = clients.filter((c) => !c.closed).length;
  stopping = true;
  for (const c of clients) c.close();
  return { opened: clients.length, alive, failed, firstError, openSeconds };
}

async function main() {
  let result;
  if (cfg.mode === 'ack-ws') result = await runAck(false);
  else if (cfg.mode === 'ack-polling') result = await runAck(true);
  else if (cfg.mode === 'broadcast') result = await runBroadcast();
  else if (cfg.mode === 'idle') result = await runIdle();
  else if (cfg.mode === 'conns') result = await runConns();
  else throw new Error('unknown mode ' + cfg.mode);
  out(Object.assign({ event: 'result', mode: cfg.mode, kind: cfg.kind }, result));
  // Give the closes a moment to go out, then leave without waiting for sockets.
  setTimeout(() => process.exit(0), 200);
}

main().catch((err) => {
  out({ event: 'error', message: String(err && err.stack || err) });
  process.exit(1);
});
