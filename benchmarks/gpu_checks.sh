#!/usr/bin/env bash
# GPU checks for a machine with CUDA: the CUDA tests, the benchmarks on the GPU and the
# GPU smoke preset (config/gpu-smoke.yaml: every family, full-width NIN and VGG).
#   bash benchmarks/gpu_checks.sh [OUTDIR]        STAGES="tests preset" by default
# stages: tests, preset, train (epoch times of full-width NIN and VGG, ratio to the
# forward+backward limit), surface, hessian, ensemble (bench = all three), smoke (default config's
# optimizer study + Hessian stage), landscape. Each stage has its own timeout; run the
# long ones in separate calls where a call's time is limited (preset: up to 10 min).
set -uo pipefail
out=${1:-benchmarks/out}
stages=${STAGES:-tests preset}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu.txt"
if [[ $stages == *surface* || $stages == *bench* ]]; then
  # the zoo (nin-bn, vgg, cnn, mlp, resnet) and lossland's ResNet-20, with the loop/vmap/graph engines on a 4x4 sub-grid
  timeout 240 python3 benchmarks/surface_throughput.py --device cuda --grid 5 --images 1000 --repeats 2 --engines \
      --models nin-bn,vgg,cnn,mlp,resnet,resnet20 2>&1 | tee "$out/surface_cuda.txt"
  # Li et al.'s 51x51 ResNet-56 / -noshort surfaces on 50 000 images, extrapolated from 5000 (goal: under 10 min)
  timeout 180 python3 benchmarks/surface_throughput.py --device cuda --grid 5 --images 5000 --repeats 2 \
      --models resnet56,resnet56-noshort --li-surface --skip-loss-landscapes 2>&1 | tee "$out/surface_li_cuda.txt"
fi
if [[ $stages == *tests* ]]; then
  timeout 240 python3 -m pytest -q -rs tests/test_cuda.py 2>&1 | tail -30 | tee "$out/tests.txt"
fi
if [[ $stages == *ensemble* || $stages == *bench* ]]; then
  # zhang2018's ensembles on the GPU against the sequential loop, vmap and the matmul limit
  timeout 240 python3 benchmarks/ensemble.py --device cuda --members 64,256 2>&1 | tee "$out/ensemble_cuda.txt"
fi
if [[ $stages == *hessian* || $stages == *bench* ]]; then
  timeout 300 python3 benchmarks/hessian.py --device cuda --n 1000 --repeats 1 2>&1 | tee "$out/hessian_cuda.txt"
fi
if [[ $stages == *landscape* ]]; then
  # the landscape stage of the default study on the GPU (training runs it needs included)
  rm -rf .gpu-landscape && mkdir -p .gpu-landscape
  start=$(date +%s)
  timeout 300 python3 -m snakemake results/figures/random_plane.png results/figures/fig2_init_final.png \
      results/figures/pca_plane.png results/figures/table1_optimizer_grid.png --snakefile "$PWD/Snakefile" \
      --directory .gpu-landscape --configfile config.yaml --cores 16 --resources gpu=4 \
      --config device=cuda threads=2 2>&1 | tail -6 | tee "$out/landscape_smoke.txt"
  echo "landscape smoke run: $(( $(date +%s) - start )) s" | tee -a "$out/landscape_smoke.txt"
  grep -rh "rows in" .gpu-landscape/results/logs/landscape | sed 's/^.*INFO[^a-z]*//' | tee -a "$out/landscape_smoke.txt"
  python3 - <<'PY' | tee -a "$out/landscape_smoke.txt"
import collections, glob
import pandas as pd
from lossland.io import read_provenance
files = sorted(glob.glob(".gpu-landscape/results/landscape/**/*.parquet", recursive=True))
print(len(files), "landscape tables; devices:",
      dict(collections.Counter(read_provenance(f).get("device") for f in files)))
t = pd.read_parquet(".gpu-landscape/results/tables/landscape_random_plane.parquet")
print(t.groupby(["split"])["loss"].describe().to_string())
PY
  cp .gpu-landscape/results/figures/*.png "$out/" 2>/dev/null
fi
if [[ $stages == *train* ]]; then
  python3 benchmarks/train_throughput.py --device cuda --threads 4 --images 8192 --workers 0,4,8 \
      --models "${GPU_BENCH_MODELS:-nin:1.0,vgg:1.0}" --repeats 2 2>&1 | tee "$out/train_throughput_cuda.txt"
fi
if [[ $stages == *preset* ]]; then
  # the GPU smoke preset, four jobs sharing the GPU; then each family's job-seconds
  rm -rf .gpu-preset && mkdir -p .gpu-preset
  start=$(date +%s)
  timeout 600 python3 -m snakemake --snakefile "$PWD/Snakefile" --directory .gpu-preset \
      --configfile config/gpu-smoke.yaml --cores 16 --resources gpu=4 2>&1 | tail -5 | tee "$out/preset.txt"
  wall=$(( $(date +%s) - start ))
  echo "gpu-smoke preset: $wall s" | tee -a "$out/preset.txt"
  python3 benchmarks/family_times.py --configfile config/gpu-smoke.yaml --directory .gpu-preset --wall "$wall" \
      2>&1 | tee -a "$out/preset.txt"
  python3 - <<'PY' | tee -a "$out/preset.txt"
import glob, json, pandas as pd
from lossland.io import read_provenance
m = pd.read_parquet(".gpu-preset/results/tables/optimizer_study_metrics.parquet")
last = m.sort_values("epoch").groupby("run").tail(1).assign(s_per_epoch=lambda t: t.wall_time / t.epoch)
print(last[["run", "epoch", "train_acc", "test_acc", "wall_time", "s_per_epoch"]].to_string(index=False))
files = glob.glob(".gpu-preset/results/**/*.parquet", recursive=True)
print(len(files), "tables; devices:", sorted({str(read_provenance(f).get("device")) for f in files}))
PY
  cp .gpu-preset/results/figures/*.png "$out/" 2>/dev/null
fi
if [[ $stages == *smoke* ]]; then
  rm -rf .gpu-smoke && mkdir -p .gpu-smoke
  start=$(date +%s)
  python3 -m snakemake results/figures/fig4_optimizer_accuracy.png results/figures/hessian_density.png \
      results/figures/hessian_negative_fraction.png --snakefile "$PWD/Snakefile" --directory .gpu-smoke \
      --configfile config.yaml --cores 16 --resources gpu=4 --config device=cuda threads=2 \
      2>&1 | tail -4 | tee "$out/smoke.txt"
  echo "smoke run: $(( $(date +%s) - start )) s" | tee -a "$out/smoke.txt"
  python3 - <<'PY' | tee -a "$out/smoke.txt"
import json, pandas as pd
s = pd.read_parquet(".gpu-smoke/results/tables/hessian_summary.parquet")
print(s[["run", "epoch", "top_eigenvalue", "trace", "negative_fraction", "seconds"]].to_string(index=False))
print("device:", json.load(open(".gpu-smoke/results/runs/nin_sgd-lr0.1_init0/final.json"))["provenance"]["device"])
PY
  cp .gpu-smoke/results/figures/*.png "$out/" 2>/dev/null
  grep -h "train_run\|hessian" .gpu-smoke/results/benchmarks/*/*.tsv 2>/dev/null | head -0
fi
