#!/usr/bin/env bash
# GPU checks for a machine with CUDA: the CUDA tests, the training-throughput
# benchmark on the GPU, and a smoke run of the default study with device=cuda.
#   bash benchmarks/gpu_checks.sh [OUTDIR]
set -uo pipefail
out=${1:-benchmarks/out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu.txt"
python3 -m pytest -q tests/test_cuda.py tests/test_training.py tests/test_runner.py 2>&1 | tail -4 | tee "$out/tests.txt"
python3 benchmarks/train_throughput.py --device cuda --threads 4 --images 8192 --workers 0,4,8 \
    --models "${GPU_BENCH_MODELS:-nin:1.0,nin:0.25,vgg:0.5}" 2>&1 | tee "$out/train_throughput_cuda.txt"
rm -rf .gpu-smoke && mkdir -p .gpu-smoke
start=$(date +%s)
python3 -m snakemake --snakefile "$PWD/Snakefile" --directory .gpu-smoke --configfile config.yaml \
    --config device=cuda threads=2 --cores 16 --resources gpu=4 2>&1 | tail -5 | tee "$out/smoke.txt"
echo "smoke run: $(( $(date +%s) - start )) s" | tee -a "$out/smoke.txt"
python3 - "$out" <<'PY' | tee -a "$out/smoke.txt"
import sys, pandas as pd
df = pd.read_parquet(".gpu-smoke/results/tables/optimizer_study_metrics.parquet")
last = df[df.epoch == df.epoch.max()][["run", "train_acc", "test_acc", "wall_time", "diverged"]]
print(last.to_string(index=False))
import json
print("device of nin_sgd_init0:", json.load(open(".gpu-smoke/results/runs/nin_sgd_init0/final.json"))["provenance"]["device"])
PY
cp .gpu-smoke/results/figures/learning_curves.png "$out/learning_curves_cuda.png" 2>/dev/null
cp .gpu-smoke/results/tables/optimizer_study_metrics.parquet "$out/" 2>/dev/null
