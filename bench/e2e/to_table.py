#!/usr/bin/env python3
"""Turns a bench/run.sh JSON-lines file into a markdown table: images/s (peak RSS MiB) per
framework and Fovea's ratio to the faster of PyTorch and TensorFlow. Usage: to_table.py FILE"""
import json
import sys

rows, order = {}, []
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("kind") not in ("result", "error"):
        continue
    name = r["name"]
    if name not in rows:
        rows[name] = {}
        order.append(name)
    rows[name][r["bench"]] = r

cell = lambda r: "failed" if r is None or r.get("kind") == "error" else f"{r['images_per_s']:,.0f} ({r['peak_rss_mib']:.0f} MiB)"
print("| workload | Fovea | PyTorch | TensorFlow | Fovea / best |")
print("|---|---:|---:|---:|---:|")
for name in order:
    f, t, k = (rows[name].get(b) for b in ("fovea", "torch", "tensorflow"))
    best = max([r["images_per_s"] for r in (t, k) if r and r.get("kind") == "result"], default=None)
    ratio = f"{f['images_per_s'] / best:.2f}" if best and f and f.get("kind") == "result" else "—"
    print(f"| {name} | {cell(f)} | {cell(t)} | {cell(k)} | {ratio} |")
