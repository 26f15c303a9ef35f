#!/usr/bin/env bash
# Load benchmark of `fovea serve` (issue 31): wrk posting one-instance TF Serving predict bodies
# (LeNet-5 28×28×1, ResNet-20 32×32×3) at 1, 8 and 64 connections, then the same against
# FastAPI + uvicorn + PyTorch (bench/serve/fastapi_server.py) and TorchServe (one worker,
# batches of 8 / 5 ms; serve/torchserve_handler.py) when the venv has them (TorchServe also
# needs Java 17 and pyyaml).
# Not a test: numbers go to bench/results/serve-DATE.txt and a table to stdout.
#   FOVEA_SERVE_TORCH_VENV  venv with torch, fastapi, uvicorn, torchserve, torch-model-archiver,
#                           pyyaml (default /tmp/fovea-ci-torch-venv)
#   DURATION                seconds per wrk run (default 5); REPS runs per setting (default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${FOVEA_SERVE_TORCH_VENV:-/tmp/fovea-ci-torch-venv}"
duration="${DURATION:-5}"
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }
cargo build --release -q -p fovea --features serve
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; "$venv/bin/torchserve" --stop > /dev/null 2>&1 || true; rm -rf "$work"' EXIT
for m in lenet5 resnet20; do
  mkdir -p "$work/models/$m/1"
  ./target/release/fovea create "$m" -o "$work/models/$m/1/model.safetensors" > /dev/null
done
python3 bench/serve/make_body.py 28 28 1 > "$work/lenet5.json"
python3 bench/serve/make_body.py 32 32 3 > "$work/resnet20.json"
out=bench/results/serve-$(date -u +%Y-%m-%d-%H%M).txt
mkdir -p bench/results
echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg); server model conns req/s p50 p99" > "$out"

wait_port() { for _ in $(seq 1 100); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.2; done; return 1; }

# One wrk run; wrk gets two threads from 8 connections up.
measure() {
  local server=$1 port=$2 m=$3 c=$4 path="/v1/models/$3:predict"
  [ "$server" = torchserve ] && path="/predictions/$m"
  local t=$(( c < 8 ? 1 : 2 ))
  BODY="$work/$m.json" wrk -t"$t" -c"$c" -d"${duration}s" --latency -s bench/serve/post.lua \
    "http://127.0.0.1:$port$path" > "$work/wrk.txt"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
  if grep -qE "Non-2xx|Socket errors" "$work/wrk.txt"; then
    echo "# $server $m c=$c: $(grep -E "Non-2xx|Socket errors" "$work/wrk.txt" | tr -s ' ')" | tee -a "$out"
  fi
  echo "$server $m $c $rps $p50 $p99" | tee -a "$out"
}

./target/release/fovea serve --model-base-path "$work/models" --host 127.0.0.1 --port 18501 2> "$work/fovea.log" &
wait_port 18501
servers=(fovea)
if "$venv/bin/python" -c "import torch, fastapi, uvicorn" 2>/dev/null; then
  # One torch thread: with two, the idle intra-op thread spins while the event loop parses
  # JSON, and 8 clients got a tenth of the requests through (see bench/README.md).
  TORCH_THREADS="${TORCH_THREADS:-1}" "$venv/bin/python" bench/serve/fastapi_server.py 18502 &
  wait_port 18502
  servers+=(fastapi)
else
  echo "# FastAPI skipped: $venv lacks torch, fastapi or uvicorn" | tee -a "$out"
fi
if [ -x "$venv/bin/torchserve" ] && command -v java > /dev/null && "$venv/bin/python" -c "import yaml" 2>/dev/null; then
  mkdir -p "$work/mar"
  for m in lenet5 resnet20; do
    "$venv/bin/torch-model-archiver" --model-name "$m" --version 1.0 --handler bench/serve/torchserve_handler.py \
      --extra-files bench/e2e/torch_e2e.py --export-path "$work/mar"
  done
  models='{"lenet5":{"1.0":{"marName":"lenet5.mar","minWorkers":1,"maxWorkers":1,"batchSize":8,"maxBatchDelay":5}},'
  models+='"resnet20":{"1.0":{"marName":"resnet20.mar","minWorkers":1,"maxWorkers":1,"batchSize":8,"maxBatchDelay":5}}}'
  printf '%s\n' "inference_address=http://127.0.0.1:18503" "management_address=http://127.0.0.1:18504" \
    "metrics_address=http://127.0.0.1:18505" "disable_token_authorization=true" "install_py_dep_per_model=false" \
    "models=$models" "load_models=all" > "$work/ts.properties"
  # TorchServe writes its logs to ./logs unless told otherwise: keep them in the scratch folder.
  PATH="$venv/bin:$PATH" TORCH_THREADS="${TORCH_THREADS:-1}" LOG_LOCATION="$work/logs" METRICS_LOCATION="$work/logs" \
    "$venv/bin/torchserve" --start --ncs \
    --model-store "$work/mar" --ts-config "$work/ts.properties" > "$work/ts.log" 2>&1
  for _ in $(seq 1 60); do
    curl -s -m 5 -X POST "http://127.0.0.1:18503/predictions/resnet20" --data-binary @"$work/resnet20.json" \
      | grep -q predictions && break
    sleep 2
  done
  servers+=(torchserve)
else
  echo "# TorchServe skipped: needs torchserve, torch-model-archiver and pyyaml in $venv, and java" | tee -a "$out"
fi
port_of() { case "$1" in fovea) echo 18501 ;; fastapi) echo 18502 ;; *) echo 18503 ;; esac; }
# Servers interleaved per setting, REPS times, so that a change in the machine's load hits
# both alike; to_table.py takes medians.
for m in lenet5 resnet20; do
  for c in 1 8 64; do
    for _ in $(seq 1 "${REPS:-3}"); do
      for s in "${servers[@]}"; do
        measure "$s" "$(port_of "$s")" "$m" "$c"
      done
    done
  done
done
echo "# Fovea's own inference, no server: $(./target/release/fovea bench --only resnet20_infer_b128 --threads 2)" | tee -a "$out"
echo "# end: load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out"
python3 bench/serve/to_table.py "$out"
