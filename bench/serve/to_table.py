#!/usr/bin/env python3
"""Markdown table from bench/serve/run.sh's result lines (server model conns rps p50 p99): the
median run of each setting (by requests/s) with its latencies."""
import sys

rows = [line.split() for line in open(sys.argv[1]) if line.strip() and not line.startswith("#")]
runs = {}
for server, model, conns, rps, p50, p99 in rows:
    runs.setdefault((model, int(conns), server), []).append((float(rps), p50, p99))
# The median run (by throughput), so that its latencies are a real run's.
by = {k: sorted(v)[len(v) // 2] for k, v in runs.items()}
servers = [s for s in ("fovea", "fastapi", "torchserve") if any(k[2] == s for k in by)]
others = servers[1:]
print("| model | clients | " + " | ".join(f"{s} req/s (p50 / p99)" for s in servers) + "".join(f" | fovea / {s}" for s in others) + " |")
print("|---|---:|" + "---:|" * (len(servers) + len(others)))
for model, conns in sorted({(k[0], k[1]) for k in by}):
    cells = []
    for s in servers:
        r = by.get((model, conns, s))
        cells.append(f"{r[0]:,.0f} ({r[1]} / {r[2]})" if r else "—")
    for s in others:
        f, o = by.get((model, conns, "fovea")), by.get((model, conns, s))
        cells.append(f"{f[0] / o[0]:.1f}×" if f and o and o[0] > 0 else "—")
    print(f"| {model} | {conns} | " + " | ".join(cells) + " |")
