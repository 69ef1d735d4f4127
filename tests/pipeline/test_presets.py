"""The GPU presets (config/gpu.yaml, config/gpu-smoke.yaml): valid, every family of the
registry in them, and planned by Snakemake on a machine without a GPU."""

import subprocess
import sys

import pytest
import yaml
from conftest import ROOT
from tiny import planned_jobs, snakemake

from lossland.pipeline import config as C
from lossland.pipeline import families as F

GPU_PRESETS = ["config/gpu.yaml", "config/gpu-smoke.yaml"]


def _preset(path):
    return C.check_config(yaml.safe_load((ROOT / path).read_text()))


@pytest.mark.parametrize("path", GPU_PRESETS)
def test_gpu_presets_name_every_family(path):
    """A family that lands without an entry in a GPU preset fails here: each of its sections is
    configured, and the preset draws every registered figure."""
    cfg = _preset(path)
    assert cfg["device"] == "cuda"
    missing = [f"{family.NAME}: {section}" for family in F.FAMILIES for section in family.SECTIONS
               if not cfg.get(section)]
    assert not missing, f"{path} lacks the sections {missing}"
    assert set(F.drawn_figures(cfg)) == set(F.figures()), f"{path} does not draw every figure"


def test_gpu_preset_is_full_cifar10_at_full_width():
    cfg = _preset("config/gpu.yaml")
    # CIFAR-10 in full; the LSTM's Penn Treebank as shipped (its training split is not in the package)
    assert {d["source"] for d in cfg["datasets"].values()} == {"torchvision", "ptb-embedded"}
    for name in cfg["optimizer_study"]["models"]:
        assert cfg["models"][name]["width"] == 1.0
    assert {"nin", "vgg"} <= set(cfg["optimizer_study"]["models"])
    runs = F.run_table(cfg)
    from lossland.pipeline.families import sharpness

    batch_study = {s["run"] for s in sharpness.section_specs(cfg, "batch_size")}   # Keskar's batch sizes
    lstm = {n for n, r in runs.items() if r["model_spec"]["arch"] == "lstm"}     # the LSTM: batch 20 (Zaremba)
    assert lstm and {runs[n]["training"]["batch_size"] for n in lstm} == {20}
    assert {r["training"]["batch_size"] for n, r in runs.items() if n not in batch_study | lstm} == {128}
    assert sorted(runs[n]["training"]["batch_size"] for n in batch_study) == [128, 4500]
    assert {r["training"]["epochs"] for r in runs.values()} == {15}


def test_smoke_preset_needs_no_download():
    cfg = _preset("config/gpu-smoke.yaml")
    assert {d["source"] for d in cfg["datasets"].values()} == {"embedded", "ptb-embedded"}  # both shipped


@pytest.mark.parametrize("path", GPU_PRESETS)
def test_gpu_presets_dry_run_on_a_cpu(path, tmp_path):
    """`snakemake -n` plans every training run and the data preparation (the later stages
    wait for the learning-rate checkpoints, resolved only once runs are trained)."""
    cfg = yaml.safe_load((ROOT / path).read_text())
    res = snakemake(tmp_path, "--dry-run", config=cfg)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    jobs = planned_jobs(out)
    assert jobs["prepare_dataset"] == len(cfg["datasets"])
    assert jobs["train_run"] == len(F.run_table(_preset(path)))


def test_estimate_counts_every_family():
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "estimate_preset.py"), "config/gpu-smoke.yaml",
                          "--tflops", "20"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = {line.split()[0]: line.split()[1:] for line in res.stdout.splitlines()[1:]}
    assert set(rows) == {f.NAME for f in F.FAMILIES} | {"total"}
    assert all(float(rows[f.NAME][1]) > 0 for f in F.FAMILIES)
