#!/usr/bin/env bash
# Data-parallel ResNet-20 training, side by side in one run: Fovea on MPI (1 and 2 replicas)
# and PyTorch DDP on gloo (1 and 2 replicas), one thread per process, 64 images per replica per
# step, each configuration in fresh processes, REPEATS rounds interleaved; prints every JSON
# line, then the median images/s of each configuration and the ratios.
# Needs: OpenMPI, a release build of the example (built here), a Python with torch (TORCH_PY).
set -euo pipefail
cd "$(dirname "$0")/../.."
TORCH_PY="${TORCH_PY:-/tmp/fovea-ci-torch-venv/bin/python}"
REPEATS="${REPEATS:-3}"
cargo build -q --release -p fovea-distributed --features mpi --example resnet20_throughput
exe=target/release/examples/resnet20_throughput
out="$(mktemp)"
for _ in $(seq "$REPEATS"); do
  for np in 1 2; do
    RAYON_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$np" "$exe" | tee -a "$out"
    "$TORCH_PY" bench/distributed/ddp_resnet20.py --world "$np" 2>/dev/null | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
med = {}
for r in rows:
    med.setdefault((r["bench"], r["replicas"]), []).append(r["images_per_s"])
med = {k: statistics.median(v) for k, v in med.items()}
print("\n| framework | replicas | images/s (median) |\n|---|---|---|")
for (b, n), v in sorted(med.items()):
    print(f"| {b} | {n} | {v:.1f} |")
f1, f2, t2 = med[("fovea", 1)], med[("fovea", 2)], med[("torch_ddp_gloo", 2)]
print(f"\nFovea 2 replicas / 1 replica: {f2 / f1:.2f}x; Fovea 2 replicas / PyTorch DDP 2 replicas: {f2 / t2:.2f}x")
PY
rm -f "$out"
