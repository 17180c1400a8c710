"""Run the benchmark: ``python -m bench [options]`` from the repository root.

Each (server, scenario) pair gets a fresh server subprocess on 127.0.0.1 pinned to core 0:
fastapi-realtime, python-socketio and a raw ASGI echo under uvicorn, and socket.io 4.8 under
node (bench/app_node.js); the node load generator (bench/loadgen.js) is pinned to core 1. For
every figure with a message count the table also gives the server's CPU time per message (µs,
from /proc over the measurement window), which stays steady on a busy machine where throughput
does not. Results are printed as a table and written to bench/results/latest.json.

Scenarios: ack round trips (1 and 50 WebSocket clients, 50 long-polling clients) with latency
p50/p99; fan-out to rooms of 10, 100, 1,000 and 5,000 clients; memory per idle connection;
10,000 WebSocket connections to one process (connect rate, CPU per connect, RSS per connection,
then the 50-client ack load with all of them connected). ``--quick`` runs a small version.

The cluster scenario (bench/cluster.py) runs last, over its own redis-server: cross-node
broadcast with one and two fastapi-realtime nodes on RedisAdapter, and two python-socketio nodes
on AsyncRedisManager (nodes pinned to cores 0 and 1, load generator and Redis not pinned).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench import cluster, servers
from bench.report import fmt, print_table, versions
from bench.scenarios import DEFAULT_SCENARIOS, RUNNERS, SCENARIO_KEYS, SCENARIOS, Options
from bench.servers import (
    BENCH_DIR,
    LOADGEN,
    LOADGEN_CORE,
    ROOT,
    SERVER_CORE,
    LoadGen,
    Server,
    busy_seconds,
    free_port,
    nofile_limit,
    server_specs,
    wait_for_quiet,
)

# Settings of the full run and of --quick (QUICK=1: under two minutes); a flag given on the
# command line wins over both.
FULL: dict[str, Any] = {
    "servers": "ours,pysio,raw,node", "scenarios": ",".join(DEFAULT_SCENARIOS), "warmup": 2.0,
    "duration": 5.0, "clients": 50, "broadcast_clients": 1000, "idle_clients": 5000,
    "conn_clients": 10000, "cluster_clients": 500, "cluster_rounds": 3, "quiet_wait": 30.0,
    "fanout_max_messages": 200_000,
}
QUICK: dict[str, Any] = {
    **FULL, "scenarios": "ack_ws_50,fanout_100,fanout_1000,conns", "warmup": 0.5,
    "duration": 1.5, "conn_clients": 1000, "cluster_rounds": 1, "quiet_wait": 0.0,
    "fanout_max_messages": 20_000,
}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="a small run (under two minutes): scenarios "
                        f"{QUICK['scenarios']}, {QUICK['conn_clients']} connections, "
                        f"{QUICK['duration']}s windows, no cluster")
    p.add_argument("--ws", default=os.environ.get("UVICORN_WS", "websockets-sansio"),
                   help="uvicorn --ws implementation (default: websockets-sansio)")
    p.add_argument("--http", default="h11",
                   help="uvicorn --http implementation of the Python servers (default: h11; the "
                        "ack_polling_50_httptools scenario always runs on httptools)")
    p.add_argument("--scenarios",
                   help=f"comma-separated subset of {','.join(SCENARIO_KEYS)} (default: all but "
                        f"broadcast, which is the fan-out to --broadcast-clients)")
    p.add_argument("--servers",
                   help="comma-separated subset of ours,pysio,raw,node (ours_recovery with "
                        "--recovery); default: all")
    p.add_argument("--recovery", action="store_true",
                   help="also run fastapi-realtime with connection state recovery enabled")
    p.add_argument("--metrics", action="store_true",
                   help="also run fastapi-realtime with its Prometheus metrics on")
    p.add_argument("--coalescing", action="store_true",
                   help="also run fastapi-realtime on its write-coalescing WebSocket protocol "
                        "(fastapi_realtime.uvicorn_ws)")
    p.add_argument("--warmup", type=float, help=f"seconds of warm-up (default {FULL['warmup']})")
    p.add_argument("--duration", type=float,
                   help=f"seconds of measurement per throughput scenario (default {FULL['duration']})")
    p.add_argument("--clients", type=int,
                   help="clients of the multi-client ack scenarios (and ackers of conns)")
    p.add_argument("--broadcast-clients", type=int, help="room size of the broadcast scenario")
    p.add_argument("--idle-clients", type=int, help="connections of the memory scenario")
    p.add_argument("--conn-clients", type=int,
                   help=f"connections of the conns scenario (default {FULL['conn_clients']})")
    p.add_argument("--fanout-max-messages", type=int,
                   help="cap on the messages of one fan-out blast (bounds small rooms' runs)")
    p.add_argument("--cluster-clients", type=int,
                   help="clients of the cluster scenario, split evenly over the nodes (default 500)")
    p.add_argument("--cluster-rounds", type=int,
                   help="rounds of the cluster scenario's runs, interleaved; medians reported "
                        "(default 3: one round swings with other work on the machine)")
    p.add_argument("--no-cluster", action="store_true",
                   help="skip the cluster scenario (it needs redis-server; `--scenarios cluster` "
                        "runs it alone)")
    p.add_argument("--deflate", action="store_true",
                   help="let the clients offer permessage-deflate (off by default)")
    p.add_argument("--quiet-wait", type=float,
                   help="before each run, wait up to this many seconds for the machine to be idle "
                        "(0: do not wait)")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin the server and the load generator to separate cores")
    p.add_argument("--node", default=shutil.which("node") or "node")
    p.add_argument("--output", default=str(BENCH_DIR / "results" / "latest.json"))
    args = p.parse_args(argv)
    profile = QUICK if args.quick else FULL
    for key, value in profile.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    servers.PIN_CORES = not args.no_pin
    specs_all = server_specs(args.recovery, args.coalescing, args.metrics)
    wanted_servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if args.recovery and "ours_recovery" not in wanted_servers:
        wanted_servers.append("ours_recovery")
    if args.coalescing and "ours_coalescing" not in wanted_servers:
        wanted_servers.append("ours_coalescing")
    if args.metrics and "ours_metrics" not in wanted_servers:
        wanted_servers.append("ours_metrics")
    specs = [s for s in specs_all if s.key in wanted_servers]
    unknown = set(wanted_servers) - {s.key for s in specs_all}
    wanted_scen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown |= set(wanted_scen) - set(SCENARIO_KEYS)
    if unknown:
        print(f"unknown server/scenario: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if args.no_cluster:
        wanted_scen = [s for s in wanted_scen if s != "cluster"]
    scenarios = [s for s in SCENARIOS if s.key in wanted_scen]
    with_cluster = any(s.key == "cluster" for s in scenarios)
    scenarios = [s for s in scenarios if s.key != "cluster"]
    opts = Options(ws=args.ws, warmup=args.warmup, duration=args.duration, clients=args.clients,
                   broadcast_clients=args.broadcast_clients, idle_clients=args.idle_clients,
                   conn_clients=args.conn_clients, cluster_clients=args.cluster_clients,
                   node=args.node, deflate=args.deflate,
                   fanout_max_messages=args.fanout_max_messages)
    labels = {s.key: s.label.format(clients=opts.clients, broadcast_clients=opts.broadcast_clients,
                                     idle_clients=opts.idle_clients, conn_clients=opts.conn_clients,
                                     cluster_clients=opts.cluster_clients) for s in SCENARIOS}
    if not LOADGEN.exists() or not (ROOT / "tests" / "interop" / "node_modules" / "ws").exists():
        print("node modules missing: run `make node` first", file=sys.stderr)
        return 2
    if any(s.key == "conns" for s in scenarios) and opts.conn_clients + 200 > nofile_limit():
        print(f"--conn-clients {opts.conn_clients} needs more file descriptors than the hard "
              f"limit ({nofile_limit()})", file=sys.stderr)
        return 2

    print(f"uvicorn --ws {opts.ws} --http {args.http}; servers on core {SERVER_CORE}, load generator on core "
          f"{LOADGEN_CORE}; warm-up {opts.warmup}s, window {opts.duration}s"
          f"{' (quick)' if args.quick else ''}")
    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    for sc in scenarios:
        results[sc.key] = {}
        for spec in specs:
            if spec.kind == "raw" and not sc.raw_supported:
                continue
            if sc.http is not None and spec.runtime == "node":
                continue  # node's HTTP stack is the same whatever uvicorn's --http
            extra_env = {"BENCH_JOIN_ROOM": "room" if sc.room else ""}
            t = time.monotonic()
            print(f"  {sc.key:<15} {spec.label:<28} ", end="", flush=True)
            server: Server | None = None
            try:
                busy = wait_for_quiet(args.quiet_wait) if args.quiet_wait > 0 else None
                server = Server(spec, opts.ws, extra_env, node=opts.node, http=sc.http or args.http)
                server.wait_ready()
                r = RUNNERS[sc.key](server, opts)
                if server.proc.poll() is not None:
                    raise RuntimeError(f"server exited during the run:\n{server.log_tail()}")
                r["machineBusyBefore"] = busy
                # The headline figure and the CPU per message, as the table names them.
                extra = [f"{fmt(r.get(m.key), m.digits)} {m.label}" for m in sc.metrics[1:]
                         if m.key in ("cpuUs", "kbPerConn") and r.get(m.key) is not None]
                print(f"{fmt(r['value'], 1 if sc.unit == 'KB' else 0):>10} {sc.unit}"
                      f"{''.join(', ' + e for e in extra)}  ({time.monotonic() - t:.0f}s)")
            except Exception as exc:  # one failing pair must not sink the whole run
                msg = str(exc)
                if server is not None and server.log_tail() and server.log_tail() not in msg:
                    msg += "\nserver log:\n" + server.log_tail()
                r = {"error": msg}
                print(f"ERROR: {msg.splitlines()[0]}")
            finally:
                if server is not None:
                    server.stop()
            results[sc.key][spec.key] = r

    cluster_summary: dict[str, Any] | None = None
    if with_cluster:
        specs_by_key = {s.key: s for s in specs_all}

        def start_node(server: str, env: dict[str, str], core: str | None) -> Server:
            return Server(specs_by_key[server], opts.ws, env, core, node=opts.node, http=args.http)

        harness = cluster.Harness(
            start_node=start_node,
            start_loadgen=lambda config, core: LoadGen(config, opts.node, core),
            busy_seconds=busy_seconds, wait_for_quiet=wait_for_quiet, free_port=free_port,
            pin=servers.PIN_CORES, quiet_wait=args.quiet_wait,
        )
        results["cluster"] = cluster.run(harness, wanted_servers, opts.cluster_clients,
                                         opts.duration, max(1, args.cluster_rounds))
        cluster_summary = {
            "clients": opts.cluster_clients, "rounds": max(1, args.cluster_rounds),
            "redisVersion": results["cluster"].pop("redisVersion", None),
            "pinning": "nodes on cores " + ", ".join(cluster.NODE_CORES) + "; load generator "
                       "and redis-server unpinned" if servers.PIN_CORES else "none",
            "ratios": cluster.ratios(results["cluster"]),
            "targets": {"ours2_over_ours1": cluster.TARGET_SCALING,
                        "ours2_over_pysio2": cluster.TARGET_VS_PYSIO},
        }

    if scenarios:
        print_table(results, specs, scenarios, labels)
    if with_cluster:
        cluster_warnings = cluster.print_table(results["cluster"], labels["cluster"])
        if cluster_warnings:
            print("WARNINGS (cluster):")
            for w in cluster_warnings:
                print("  ! " + w)
            print()
    doc = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {"ws": opts.ws, "http": args.http, "quick": args.quick, "warmup": opts.warmup,
                     "duration": opts.duration, "clients": opts.clients,
                     "broadcastClients": opts.broadcast_clients, "idleClients": opts.idle_clients,
                     "connClients": opts.conn_clients, "clusterClients": opts.cluster_clients,
                     "fanoutMaxMessages": opts.fanout_max_messages, "deflate": opts.deflate,
                     "pinned": servers.PIN_CORES, "serverCore": SERVER_CORE,
                     "loadgenCore": LOADGEN_CORE, "nofileLimit": nofile_limit(),
                     "versions": versions(opts.node)},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "servers": {s.key: {"label": s.label, "app": s.app, "runtime": s.runtime, "env": s.env}
                    for s in specs},
        "scenarios": {s.key: {"label": labels[s.key], "unit": s.unit,
                              "figures": {m.key: m.label for m in s.metrics}}
                      for s in SCENARIOS if s in scenarios or (s.key == "cluster" and with_cluster)},
        "results": results,
        "cluster": cluster_summary,
        "elapsedSeconds": time.monotonic() - started,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results written to {out} ({doc['elapsedSeconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
