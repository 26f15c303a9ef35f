#!/usr/bin/env python3
"""PyTorch CPU baseline for Fovea's hot kernels: sgemm and conv2d forward / forward+backward.

Prints one JSON object per line (and nothing else on stdout), so `bench/kernels/run.sh`,
`to_table.py` or a notebook can join them with Fovea's numbers by `name`:

  {"kind": "meta", ...}        torch version, threads, date, machine, load average
  {"kind": "result", "name": ..., "gflops": ..., "gflops_best": ..., "median_ms": ..., ...}
  {"kind": "best", ...}        per conv and mode, the faster memory format (by best window)
  {"kind": "end", ...}         load average at the end

Timing: each case is warmed up, then timed in windows of at least `--window-s` seconds (a
window's time per call is its wall time over its calls). The whole list of cases is run
`--passes` times, interleaved, with `--windows` (≥5) windows per case per pass, so a burst of load
from other processes on a shared machine hits every case alike rather than ruining one.
`gflops` uses the median window over all passes; `gflops_best` the fastest window (what the kernel
does when it has the cores to itself; on a busy machine the steadier of the two).

FLOPs count every multiply-add as 2, including products with SAME padding's zeros:
  sgemm                    2·M·N·K
  conv2d forward           2·N·Ho·Wo·Co·kh·kw·Ci
  conv2d forward+backward  3× forward (output, input gradient, filter gradient)

Each conv runs in both memory formats, `contiguous` (NCHW) and `channels_last` (NHWC strides,
Fovea's layout).
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F


def emit(obj):
    print(json.dumps(obj), flush=True)


def warm_up(fn, seconds):
    end = time.perf_counter() + seconds
    fn()
    while time.perf_counter() < end:
        fn()


def windows(fn, count, window_s):
    """Seconds per call in each of `count` windows of at least `window_s` seconds."""
    per_call = []
    for _ in range(count):
        n = 0
        t0 = time.perf_counter()
        while True:
            fn()
            n += 1
            t = time.perf_counter() - t0
            if t >= window_s:
                break
        per_call.append(t / n)
    return per_call


class Job:
    """One timed kernel: a closure, its FLOPs and the fields that describe it."""

    def __init__(self, name, op, flops, fn, **fields):
        self.name, self.op, self.flops, self.fn, self.fields = name, op, flops, fn, fields
        self.times = []


def sgemm_jobs(n):
    g = torch.Generator().manual_seed(0)
    a = torch.rand(n, n, generator=g)
    b = torch.rand(n, n, generator=g)
    c = torch.empty(n, n)
    return [Job(f"sgemm_{n}", "sgemm", 2 * n**3, lambda: torch.mm(a, b, out=c), m=n, n=n, k=n)]


# (name, N, H, W, Ci, Co, k, padding)
CONVS = [
    ("lenet_c1_28x28x1_6_k5_same", 128, 28, 28, 1, 6, 5, "same"),
    ("lenet_c3_14x14x6_16_k5_valid", 128, 14, 14, 6, 16, 5, "valid"),
    ("resnet_32x32x16_16_k3_same", 128, 32, 32, 16, 16, 3, "same"),
    ("resnet_16x16x32_32_k3_same", 128, 16, 16, 32, 32, 3, "same"),
    ("resnet_8x8x64_64_k3_same", 128, 8, 8, 64, 64, 3, "same"),
]


def conv_jobs(case):
    name, n, h, w, ci, co, k, padding = case
    ho, wo = (h, w) if padding == "same" else (h - k + 1, w - k + 1)
    fwd_flops = 2 * n * ho * wo * co * k * k * ci
    shape = {"n": n, "h": h, "w": w, "ci": ci, "co": co, "k": k, "padding": padding}
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(n, ci, h, w, generator=g) * 2 - 1
    w0 = torch.randn(co, ci, k, k, generator=g) / (k * k * ci) ** 0.5
    dy0 = torch.rand(n, co, ho, wo, generator=g) * 2 - 1
    jobs = []
    for fmt, mf in [("contiguous", torch.contiguous_format), ("channels_last", torch.channels_last)]:
        x = x0.contiguous(memory_format=mf)
        wt = w0.contiguous(memory_format=mf)
        dy = dy0.contiguous(memory_format=mf)
        xg = x.clone().requires_grad_(True)
        wg = wt.clone().requires_grad_(True)

        def fwd(x=x, wt=wt):
            with torch.no_grad():
                return F.conv2d(x, wt, padding=padding)

        def fwd_bwd(xg=xg, wg=wg, dy=dy):
            xg.grad = None
            wg.grad = None
            F.conv2d(xg, wg, padding=padding).backward(dy)

        jobs.append(Job(f"conv2d_fwd_{name}", "conv2d_fwd", fwd_flops, fwd, format=fmt, **shape))
        jobs.append(Job(f"conv2d_fwd_bwd_{name}", "conv2d_fwd_bwd", 3 * fwd_flops, fwd_bwd, format=fmt, **shape))
    return jobs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--passes", type=int, default=3, help="interleaved passes over all cases")
    ap.add_argument("--windows", type=int, default=5, help="timed windows per case per pass (>= 5)")
    ap.add_argument("--window-s", type=float, default=0.25, help="minimum seconds per timed window")
    ap.add_argument("--warmup-s", type=float, default=0.3)
    ap.add_argument("--only", default="", help="run only cases whose name contains this")
    args = ap.parse_args()
    if args.windows < 5:
        ap.error("--windows must be at least 5")
    torch.set_num_threads(args.threads)
    emit(
        {
            "kind": "meta",
            "bench": "torch",
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "mkldnn": torch.backends.mkldnn.is_available(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()} {os.cpu_count()} cpus",
            "loadavg_1m": round(os.getloadavg()[0], 2),
            "passes": args.passes,
            "windows_per_pass": args.windows,
            "window_s": args.window_s,
        }
    )
    jobs = sgemm_jobs(1024) + sgemm_jobs(2048)
    for case in CONVS:
        jobs += conv_jobs(case)
    jobs = [j for j in jobs if args.only in j.name]
    for _ in range(args.passes):
        for j in jobs:
            warm_up(j.fn, args.warmup_s)
            j.times += windows(j.fn, args.windows, args.window_s)
    best = {}
    for j in jobs:
        med, lo, hi = statistics.median(j.times), min(j.times), max(j.times)
        gflops = j.flops / med / 1e9
        emit(
            {
                "kind": "result",
                "name": j.name,
                "op": j.op,
                "gflops": round(gflops, 2),
                "gflops_best": round(j.flops / lo / 1e9, 2),
                "median_ms": round(med * 1e3, 4),
                "min_ms": round(lo * 1e3, 4),
                "max_ms": round(hi * 1e3, 4),
                "windows": len(j.times),
                "flops": j.flops,
                **j.fields,
            }
        )
        # The faster format is judged by the best window: on a shared machine the median
        # mostly measures the neighbours.
        gflops_best = j.flops / lo / 1e9
        if "format" in j.fields and gflops_best > best.get(j.name, (0.0, 0.0, ""))[0]:
            best[j.name] = (gflops_best, gflops, j.fields["format"])
    for name, (gb, gf, fmt) in best.items():
        emit({"kind": "best", "name": name, "format": fmt, "gflops_best": round(gb, 2), "gflops": round(gf, 2)})
    # The machine may be shared: the load average says how far the numbers can be trusted.
    emit({"kind": "end", "loadavg_1m": round(os.getloadavg()[0], 2)})


if __name__ == "__main__":
    main()
