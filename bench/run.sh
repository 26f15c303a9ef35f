#!/usr/bin/env bash
# End-to-end benchmark: Fovea (`fovea bench`), PyTorch and TensorFlow side by side, each
# workload in a fresh process per framework, 2 threads each, medians of 5 windows after a
# warm-up; then one table with images/s, peak RSS and Fovea's ratio to the best of the two.
# Usage: bench/run.sh [WORKLOAD...]
#   FOVEA_BENCH_VENV (PyTorch venv, default /work/venvs/torch; see bench/kernels/setup_venv.sh)
#   FOVEA_TF_VENV    (TensorFlow venv, default /work/venvs/tf)
set -euo pipefail
cd "$(dirname "$0")/.."
torch_py="${FOVEA_BENCH_VENV:-/work/venvs/torch}/bin/python"
tf_py="${FOVEA_TF_VENV:-/work/venvs/tf}/bin/python"
cargo build --release -q -p fovea
workloads=("$@")
if [ ${#workloads[@]} -eq 0 ]; then
  workloads=(lenet5_train_b32 lenet5_train_b128 fashion_cnn_train_b128 resnet20_train_b128 lenet5_infer_b1
    lenet5_infer_b256 resnet20_infer_b1 resnet20_infer_b128 resnet50_infer_b1 resnet50_infer_b8)
fi
out=bench/results/e2e-$(date -u +%Y-%m-%d-%H%M).jsonl
mkdir -p bench/results
echo "{\"kind\": \"meta\", \"date\": \"$(date -u +%FT%TZ)\", \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" > "$out"
for w in "${workloads[@]}"; do
  ./target/release/fovea bench --only "$w" --threads 2 >> "$out" || echo "{\"kind\": \"error\", \"bench\": \"fovea\", \"name\": \"$w\"}" >> "$out"
  "$torch_py" bench/e2e/torch_e2e.py --only "$w" >> "$out" 2>/dev/null || echo "{\"kind\": \"error\", \"bench\": \"torch\", \"name\": \"$w\"}" >> "$out"
  "$tf_py" bench/e2e/tf_e2e.py --only "$w" >> "$out" 2>/dev/null || echo "{\"kind\": \"error\", \"bench\": \"tensorflow\", \"name\": \"$w\"}" >> "$out"
done
echo "{\"kind\": \"end\", \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >> "$out"
python3 bench/e2e/to_table.py "$out"
