#!/usr/bin/env bash
# Creates the Python environment for bench/kernels/torch_kernels.py (benchmarks only; Fovea never
# depends on PyTorch). Usage: bench/kernels/setup_venv.sh   (venv: ${FOVEA_BENCH_VENV:-/work/venvs/torch})
#
# Only PyPI is reachable here. PyPI's Linux x86_64 `torch` wheel is the CUDA build: it pulls the
# CUDA 13 runtime wheels (nvidia-*, cuda-toolkit, triton; about 3 GB of the 5.4 GB venv). PyPI has
# no CPU-only torch wheel (the `+cpu` builds are published on PyTorch's own index only), and
# `pip install --no-deps torch` does not import (`libcudart.so.13` / `libcublasLt` not found), so
# we take the full wheel; with no GPU present it runs on the CPU (oneDNN + MKL).
set -euo pipefail

VENV="${FOVEA_BENCH_VENV:-/work/venvs/torch}"
TORCH_VERSION="${FOVEA_TORCH_VERSION:-2.15.0}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet "torch==${TORCH_VERSION}" numpy
"$VENV/bin/python" -c 'import torch; print("torch", torch.__version__, "threads", torch.get_num_threads(), "mkldnn", torch.backends.mkldnn.is_available())'
echo "run: $VENV/bin/python bench/kernels/torch_kernels.py > torch.jsonl"
