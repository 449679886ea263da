#!/usr/bin/env bash
# A prepared check for one GPU (issue 26), under 8 minutes: the figures a user needs to book a cluster.
#
#   bash scripts/gpu_check.sh [out_dir]          # default out_dir: runs/gpu_check
#
# 1. scripts/bench.py model, preset s (the paper's maze model) in bf16 on the GPU: training tokens/s
#    and MFU (--peak-tflops 989: an H100 SXM's dense bf16; pass PEAK_TFLOPS=... for another card),
#    decoding tokens/s with the KV cache in place vs copied, and the 64-sample evaluation's
#    responses/s before / after batching (10x10 mazes).
# 2. The paper-shape tier on this machine (tests/test_paper_shapes.py: 2 ranks, gloo, CPU side).
# 3. searchformer_maze10_1gpu for a bounded number of steps (STEPS, default 1000 of its 20,000),
#    so its step time on this GPU extrapolates the full run (the record says the steps it ran).
# Each part has its own time limit; figures land in out_dir as JSON and logs.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu_check}
PY=${PYTHON:-python}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"

timeout 240 "$PY" scripts/bench.py model --preset s --tokens 1000 --maze-size 10 --warm-steps 300 \
    --peak-tflops "${PEAK_TFLOPS:-989}" --json "$OUT/bench_model.json" 2>&1 | tee "$OUT/bench_model.log"

timeout 120 "$PY" -m pytest -q tests/test_paper_shapes.py 2>&1 | tail -3 | tee "$OUT/paper_shapes.log" || true

timeout 150 "$PY" -m harness.train experiment=searchformer_maze10_1gpu model=searchformer logger=none \
    progress=false task.n_train=5000 model.train.steps="${STEPS:-1000}" model.eval_every=500 \
    model.train.checkpoint_dir="$OUT/checkpoints" results_dir="$OUT/records" hydra.run.dir="$OUT/run" \
    2>&1 | tail -20 | tee "$OUT/maze10_1gpu.log"
echo "figures in $OUT: bench_model.json, maze10_1gpu.log (train/tokens_per_s, step time), records/"
echo "README budget from these figures: set the measured MFU and step times as scripts/budget.py Assumptions, then python scripts/budget.py table --write-readme"
