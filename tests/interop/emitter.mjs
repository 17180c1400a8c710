// Runs @socket.io/redis-emitter 5.1 commands against a Redis, for the mixed-cluster tests.
//
//   node emitter.mjs <redisUrl> <commandsJSON> [optionsJSON]
//
// optionsJSON: {key?: "socket.io"} (the emitter's channel prefix).
// commandsJSON: a list, run in order; every command takes nsp (default "/"), rooms and except (room lists):
//   {"op": "emit", "event": "...", "args": [...], "volatile"?: bool, "compress"?: bool}
//   {"op": "socketsJoin", "target": ["room", ...]}
//   {"op": "socketsLeave", "target": ["room", ...]}
//   {"op": "disconnectSockets", "close"?: bool}
//   {"op": "serverSideEmit", "event": "...", "args": [...]}   (the emitter supports no ack)
//   {"op": "sleep", "ms": 100}
// Binary arguments are written {"$bin": "<hex>"}. The emitter publishes without waiting for replies; QUIT goes
// down the same connection after them, so once it returns every message has reached Redis. Prints {"ok": true},
// or {"ok": false, "error": ...} and exits 1.

import { createClient } from "redis";
import { Emitter } from "@socket.io/redis-emitter";

function line(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
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

function operator(emitter, cmd) {
  let op = emitter.of(cmd.nsp ?? "/");
  const rooms = asList(cmd.rooms);
  const except = asList(cmd.except);
  // an Emitter and a BroadcastOperator both take to/except; to([]) would add no room anyway
  if (rooms.length) op = op.to(rooms);
  if (except.length) op = op.except(except);
  return op;
}

async function run(redisUrl, commands, options) {
  const client = createClient({ url: redisUrl });
  client.on("error", (err) => process.stderr.write(`redis client error: ${err}\n`));
  await client.connect();
  try {
    const emitter = new Emitter(client, options.key ? { key: options.key } : {});
    for (const cmd of commands) {
      const args = fromJson(asList(cmd.args));
      switch (cmd.op) {
        case "emit": {
          let op = operator(emitter, cmd);
          if (cmd.volatile) op = op.volatile;
          if (cmd.compress !== undefined) op = op.compress(cmd.compress);
          op.emit(cmd.event, ...args);
          break;
        }
        case "socketsJoin":
          operator(emitter, cmd).socketsJoin(asList(cmd.target));
          break;
        case "socketsLeave":
          operator(emitter, cmd).socketsLeave(asList(cmd.target));
          break;
        case "disconnectSockets":
          operator(emitter, cmd).disconnectSockets(!!cmd.close);
          break;
        case "serverSideEmit":
          emitter.of(cmd.nsp ?? "/").serverSideEmit(cmd.event, ...args);
          break;
        case "sleep":
          await new Promise((r) => setTimeout(r, cmd.ms ?? 0));
          break;
        default:
          throw new Error(`unknown emitter command ${JSON.stringify(cmd)}`);
      }
    }
  } finally {
    await client.quit();
  }
}

const [redisUrl, commandsArg, optionsArg] = process.argv.slice(2);
try {
  if (!redisUrl || !commandsArg) throw new Error("usage: node emitter.mjs <redisUrl> <commandsJSON> [optionsJSON]");
  await run(redisUrl, JSON.parse(commandsArg), optionsArg ? JSON.parse(optionsArg) : {});
  line({ ok: true });
} catch (err) {
  line({ ok: false, error: String(err?.stack ?? err) });
  process.exit(1);
}
