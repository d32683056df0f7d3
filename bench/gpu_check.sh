#!/usr/bin/env bash
# GPU check of the DeepCAC2 U-Net: fp32 (default, published precision) vs fp32 without TF32, bf16, bf16 + torch.compile
# on a synthetic 512x512x150 series: time, peak memory, and Dice, voxel and Agatston differences against fp32.
# Usage: bench/gpu_check.sh [extra args for bench/gpu_check.py]   (CPU smoke test: --tiny --device cpu)
# Keeps to about 8 minutes of GPU time: the whole run is capped at 480 s.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi: running on CPU"
exec timeout 480 "$PY" bench/gpu_check.py --json "${GPU_CHECK_JSON:-bench/gpu_results.json}" "$@"
