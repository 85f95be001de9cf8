#!/usr/bin/env bash
# The prepared check of the GPU path, for a lent GPU machine (torch + CuPy; no pycolmap, open3d, OpenImageIO or
# Prefect needed). One command, under 8 minutes; everything it measures goes to $OUT:
#   nvidia-smi.txt, versions.txt       the device and the software
#   pytest_cuda.txt                    CUDA against the torch reference (parity, gradients, stream ordering)
#   rasterizer.txt, rasterizer_cuda.json   forward and forward+backward at 1e5..1e7 points, 1080p and 4K
#   dense_sweep.txt, dense_sweep_cuda.json   plane-sweep seconds per depth map at 1.9, 6 and 12 MP
#   training.txt                       gpu-quality steps/s on SCENE_DIR (when given: a prepared scene folder)
# Usage: OUT=results bash scripts/gpu_check.sh [SCENE_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-check}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
step() { echo "== $1 ($(date +%T))" | tee -a "$OUT/log.txt"; }

step "device"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
"$PY" -c "import torch, cupy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cupy', cupy.__version__, \
torch.cuda.get_device_name())" > "$OUT/versions.txt" 2>&1

step "CUDA parity tests"
timeout 240 "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/raster tests/dense > "$OUT/pytest_cuda.txt" 2>&1
echo "exit $?" >> "$OUT/pytest_cuda.txt"

step "rasterizer benchmark"
timeout 240 "$PY" benchmarks/rasterizer.py --backends cuda torch --points 100000 1000000 10000000 \
    --sizes 1920x1080 3840x2160 --min-time 0.3 --json "$OUT/rasterizer_cuda.json" > "$OUT/rasterizer.txt" 2>&1
echo "exit $?" >> "$OUT/rasterizer.txt"

step "dense plane sweep"
timeout 120 "$PY" benchmarks/dense.py sweep-time --device cuda --sizes 1600x1200 3008x2000 4000x3000 \
    --json "$OUT/dense_sweep_cuda.json" > "$OUT/dense_sweep.txt" 2>&1
echo "exit $?" >> "$OUT/dense_sweep.txt"

if [ $# -ge 1 ]; then
  step "training throughput"
  timeout 120 "$PY" benchmarks/training.py step-time "$1" --preset gpu-quality --steps 20 > "$OUT/training.txt" 2>&1
  echo "exit $?" >> "$OUT/training.txt"
fi
step "done"
