#!/usr/bin/env python3
"""Turn benchmark JSON lines into one markdown table, one column per file.

Usage: python bench/kernels/to_table.py torch.jsonl[=LABEL] [fovea.jsonl[=LABEL] ...]

Rows are keyed by `name`; each cell is the median-window GFLOP/s with the best window in
brackets. A conv run in several memory formats shows its faster one (by best window), marked `NCHW`
when that was the contiguous layout. Needs only the standard library.
"""

import json
import sys


def score(d):
    """Formats compete on the best window (steadier than the median on a shared machine)."""
    return d.get("gflops_best", d["gflops"])


def load(path):
    meta, rows = {}, {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            d = json.loads(line)
            if d.get("kind") == "meta":
                meta = d
            elif d.get("kind") == "result":
                best = rows.get(d["name"])
                if best is None or score(d) > score(best):
                    rows[d["name"]] = d
    return meta, rows


def main(args):
    paths = [a.split("=", 1)[0] for a in args]
    labels = [a.split("=", 1)[1] if "=" in a else None for a in args]
    runs = [load(p) for p in paths]
    names = []
    for _, rows in runs:
        names += [n for n in rows if n not in names]
    heads = [label or f"{m.get('bench', p)} {m.get('torch', '')}".strip() + " GFLOP/s" for (m, _), p, label in zip(runs, paths, labels)]
    print("| kernel | " + " | ".join(heads) + " |")
    print("|---|" + "---:|" * len(runs))
    for n in names:
        cells = []
        for _, rows in runs:
            d = rows.get(n)
            if d is None:
                cells.append("–")
            else:
                mark = " NCHW" if d.get("format") == "contiguous" else ""
                best = f" [{d['gflops_best']:.1f}]" if "gflops_best" in d else ""
                cells.append(f"{d['gflops']:.1f}{best}{mark}")
        print(f"| {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
