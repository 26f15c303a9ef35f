#!/usr/bin/env bash
# Fovea's and PyTorch's kernel benchmarks back to back on this machine, then one table.
# Usage: bench/kernels/run.sh   (set FOVEA_BENCH_VENV to reuse a PyTorch venv elsewhere)
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${FOVEA_BENCH_VENV:-/work/venvs/torch}"
[ -x "$venv/bin/python" ] || bench/kernels/setup_venv.sh
out=bench/kernels/results
stamp=$(date -u +%Y-%m-%d-%H%M)
cargo bench -p fovea-core --bench kernels > "$out/fovea-$stamp.jsonl"
"$venv/bin/python" bench/kernels/torch_kernels.py > "$out/torch-$stamp.jsonl"
python3 bench/kernels/to_table.py "$out/fovea-$stamp.jsonl" "$out/torch-$stamp.jsonl"
