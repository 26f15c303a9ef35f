#!/usr/bin/env bash
# The image-pipeline benchmark: Fovea's Dataset and tf.data, same JPEGs, same ops, 2 threads each,
# back to back. Usage: bench/pipeline/run.sh  (FOVEA_TF_VENV: a venv with tensorflow-cpu)
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${FOVEA_TF_VENV:-/work/venvs/tf}"
dir="${TMPDIR:-/tmp}/fovea-pipeline-jpegs"
[ -f "$dir/img63.jpg" ] || "$venv/bin/python" bench/pipeline/make_jpegs.py "$dir"
cargo run --release -q -p fovea-vision --example jpeg_pipeline -- "$dir"
"$venv/bin/python" bench/pipeline/tf_pipeline.py "$dir" 2>/dev/null
