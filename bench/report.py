"""The table of ``python -m bench``: one row per (scenario, figure), one column per server, and
the ratios ours / python-socketio, ours / raw echo and ours / node socket.io."""

from __future__ import annotations

import subprocess
from typing import Any

from bench.scenarios import Metric, Scenario
from bench.servers import QUIET_PERCENT, ROOT, ServerSpec

CPU_WARN_PERCENT = 85.0
# CPU used by other processes during a window (% of one core) above which its figure is flagged.
OTHER_WARN_PERCENT = 15.0
RATIOS = (("ours/pysio", "ours", "pysio"), ("ours/raw", "ours", "raw"), ("ours/node", "ours", "node"),
          ("coal/node", "ours_coalescing", "node"))


def fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def _metric(r: dict[str, Any] | None, m: Metric) -> float | None:
    if r is None or "error" in r:
        return None
    v = r.get(m.key)
    return None if v is None else float(v)


def _warnings(key: str, spec: ServerSpec, r: dict[str, Any]) -> tuple[str, list[str]]:
    """Flags for the headline cell ("!" client-bound, "~" noisy) and the warning lines."""
    flags = ""
    out: list[str] = []
    who = f"{key} / {spec.label}"
    cpu = r.get("loadgenCpu")
    if cpu is not None and cpu > CPU_WARN_PERCENT:
        flags += " !"
        out.append(f"{who}: load generator at {cpu:.0f}% of its core, the figure may be client-bound")
    other = r.get("otherCpu")
    if other is not None and other > OTHER_WARN_PERCENT:
        flags += " ~"
        out.append(f"{who}: other processes used {other:.0f}% of a core during the window, the "
                   f"throughput is noisy (CPU µs/msg less so)")
    busy = r.get("machineBusyBefore")
    if busy is not None and busy > QUIET_PERCENT:
        out.append(f"{who}: the machine was busy ({busy:.0f}% of a core) before the run")
    if r.get("expected") and r.get("delivered", 0) < r["expected"]:
        out.append(f"{who}: only {r['delivered']} of {r['expected']} deliveries arrived")
    if r.get("count") == 0:
        out.append(f"{who}: no round trip completed in the measurement window")
    if r.get("disconnected"):
        out.append(f"{who}: {r['disconnected']} clients were disconnected during the run")
    if r.get("failed"):
        out.append(f"{who}: {r['failed']} connections failed ({r.get('firstError')})")
    return flags, out


def print_table(results: dict[str, dict[str, Any]], specs: list[ServerSpec],
                scenarios: list[Scenario], labels: dict[str, str]) -> None:
    has = {s.key for s in specs}
    ratio_cols = [c for c in RATIOS if c[1] in has and c[2] in has]
    headers = ["scenario / figure", *[s.col for s in specs], *[c[0] for c in ratio_cols]]
    rows: list[list[str]] = []
    warnings: list[str] = []
    for sc in scenarios:
        by_server = results.get(sc.key, {})
        for spec in specs:
            r = by_server.get(spec.key)
            if r is not None and "error" in r:
                lines = [ln for ln in r["error"].splitlines() if ln.strip()]
                detail = lines[0] if len(lines) < 2 else f"{lines[0]} {lines[1].strip()}"
                warnings.append(f"{sc.key} / {spec.label}: {detail}")
        for i, m in enumerate(sc.metrics):
            row = [f"{labels[sc.key]}: {m.label}" if i == 0 else f"  {m.label}"]
            values: dict[str, float | None] = {}
            for spec in specs:
                r = by_server.get(spec.key)
                values[spec.key] = _metric(r, m)
                if r is None:
                    row.append("n/a")
                elif "error" in r:
                    row.append("error")
                else:
                    cell = fmt(values[spec.key], m.digits)
                    if i == 0:
                        flags, more = _warnings(sc.key, spec, r)
                        cell += flags
                        warnings += more
                    row.append(cell)
            row += [_ratio(values.get(a), values.get(b)) for _, a, b in ratio_cols]
            rows.append(row)
    if not rows:
        return
    widths = [max(len(headers[i]), *(len(r[i]) for r in rows)) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                         for i, c in enumerate(cells))

    print()
    print(line(headers))
    print("-" * len(line(headers)))
    for r in rows:
        print(line(r))
    print()
    print("servers: " + "; ".join(f"{s.col} = {s.label}" for s in specs))
    print("ratios: figure of ours / figure of the other (throughput: > 1 is faster; CPU µs, "
          "latency, KB: < 1 is cheaper); n/a: not measured (the raw echo has no rooms)")
    # The load generator's CPU (share of its one core) and the server's, per measurement.
    print("CPU during the measurement window (load generator / server, % of one core):")
    for sc in scenarios:
        parts = []
        for spec in specs:
            r = results.get(sc.key, {}).get(spec.key)
            if r and "error" not in r and r.get("loadgenCpu") is not None:
                sc_cpu = r.get("serverCpu")
                parts.append(f"{spec.col} {r['loadgenCpu']:.0f}% / "
                             f"{'?' if sc_cpu is None else f'{sc_cpu:.0f}%'}")
        if parts:
            print(f"  {sc.key}: " + ", ".join(parts))
    if warnings:
        print()
        print("WARNINGS:")
        for w in warnings:
            print("  ! " + w)
    print()


def versions(node: str) -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for dist in ("fastapi-realtime", "python-socketio", "python-engineio", "uvicorn", "websockets",
                 "wsproto", "fastapi", "starlette", "redis", "hiredis", "msgpack"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = None
    try:
        found["node"] = subprocess.run([node, "--version"], capture_output=True, text=True,
                                       timeout=10).stdout.strip()
        found["socket.io (node)"] = subprocess.run(
            [node, "-p", "require('socket.io/package.json').version"], capture_output=True,
            text=True, timeout=10, cwd=ROOT / "tests" / "interop").stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        found["node"] = None
    return found
