"""The tiny workflow config and the helpers that run it through Snakemake's CLI, shared by
the local workflow tests (tests/workflow), the reliability suite (tests/reliability) and the
SLURM stage (tests/workflow/test_slurm.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "device": "cpu",
    "threads": 1,
    "datasets": {"tiny": {"source": "embedded", "train_size": 200, "val_size": 100, "test_size": 100,
                          "image_size": 8},
                 "planes": {"source": "embedded", "classes": ["airplane", "automobile"], "image_size": 6,
                            "train_size": 100, "test_size": 100},
                 "text": {"source": "ptb-embedded", "train_tokens": 2000, "test_tokens": 1000, "vocab_size": 100,
                          "seq_len": 10}},
    "models": {"mlp": {"arch": "mlp", "hidden": [16]},
               "mlp-n1": {"arch": "mlp", "hidden": [16], "init": {"scheme": "normal", "mean": -1.0, "std": 1.0}},
               "mlp-bn": {"arch": "mlp", "hidden": [16], "batch_norm": True},
               "res": {"arch": "resnet", "depth": 8, "width": 0.25},
               "lstm": {"arch": "lstm", "embedding": 8, "hidden": 8},
               "res-noshort": {"arch": "resnet", "depth": 8, "width": 0.25, "skip": False},
               "res-narrow": {"arch": "resnet", "depth": 8, "width": 0.125},
               "zhang": {"arch": "mlp", "hidden": [10, 10, 10], "output_bias": False, "binary": True,
                         "init": {"scheme": "normal", "mean": 0.0, "std": 0.3}}},
    "optimizers": {"sgd": {"algorithm": "sgd", "lr": 0.1}, "adam": {"algorithm": "adam", "lr": 0.01},
                   "rmsprop": {"algorithm": "rmsprop", "lr": 0.001},
                   "sgdm": {"algorithm": "sgd", "lr": 0.05, "momentum": 0.9},
                   "heun": {"algorithm": "rk2", "method": "heun", "base": "sgd", "lr": 0.2}},
    "training": {"epochs": 2, "batch_size": 50, "checkpoint_every": 1},
    "optimizer_study": {"dataset": "tiny", "models": ["mlp"], "optimizers": ["sgd", "adam", "rmsprop", "sgdm"],
                        "lr_grids": {"adam": [0.01, 0.02]}, "init_seeds": [0]},
    "rk2_study": {"dataset": "tiny", "models": ["mlp"], "optimizers": ["sgd", "heun"]},
    "init_study": {"dataset": "tiny", "models": ["mlp-n1"], "optimizers": ["sgd"]},
    "switch_study": {"dataset": "tiny", "models": ["mlp"], "switches": [["sgd", "adam"]], "at": [0.5]},
    "hessian": {"study": "optimizer_study", "optimizers": ["sgd", "adam"], "epochs": [0, 2], "samples": 50,
                "settings": {"max_iter": 10, "trace_probes": 4, "density_probes": 1, "density_steps": 8,
                             "sharpness_steps": 2}},
    "landscape": {  # every kind, on whole splits (endpoints = the runs' metrics), 2 shards per plane
        "study": "optimizer_study", "optimizers": ["sgd", "adam"], "samples": None, "shard_points": 6,
        "init_final": {"start": 0.0, "stop": 2.0, "num": 5}, "final_final": {"start": -0.5, "stop": 1.5, "num": 5},
        "distance": {"start": 0.0, "stop": 1.5, "num": 4},
        "bilinear": {"x": {"start": 0, "stop": 1, "num": 3}, "y": {"start": 0, "stop": 1, "num": 3}},
        "bilinear_optimizers": ["sgd", "adam", "rmsprop", "sgdm"],
        "barycentric": {"x": {"start": 0, "stop": 1, "num": 3}, "y": {"start": 0, "stop": 1, "num": 3}},
        "random_plane": {"x": {"start": -1, "stop": 1, "num": 3}, "y": {"start": -1, "stop": 1, "num": 3}},
        "pca": {"x": {"start": -1, "stop": 1, "num": 3}, "y": {"start": -1, "stop": 1, "num": 3}},
        "switching": {"enabled": True, "num": 3},
    },
    "reparam": {  # mlp/sgd is the optimizer study's run; mlp-bn is trained for BatchNorm's own scale
        "dataset": "tiny", "models": ["mlp", "mlp-bn"], "optimizers": ["sgd"],
        "log10_alpha": {"start": -2, "stop": 2, "num": 3}, "alpha_scale": [[0, 1]], "bn_scale": [0],
        "samples": 50, "input_samples": 60,
        "settings": {"max_iter": 8, "trace_probes": 4, "sharpness_steps": 2},
    },
    # adam has a learning-rate grid: the pair's end is resolved through select_lr's checkpoint
    "curves": {"study": "optimizer_study", "pairs": [{"start": "sgd", "end": "adam", "init_seeds": [0, 0]}],
               "epochs": 2, "points": 5, "samples": None, "plane": {"num": 3, "margin": 0.2}},
    "walk": {"study": "optimizer_study", "optimizer": "sgd", "batch_sizes": [20], "steps": 4, "samples": 60,
             "segment_points": 3},
    # zhang2018: 4 nets per dynamics on 100 images; 4 deep linear students per init
    "entropy": {"dataset": "planes", "model": "zhang", "members": 4, "sgd_epochs": 3, "langevin_steps": 10,
                "gd_steps": 10, "descent_max_steps": 10, "log_every": 5},
    # Keskar: the optimizer study's MLP at two batch sizes; Li et al.: ResNet-8 with and without skips, two widths
    "batch_size": {"dataset": "tiny", "model": "mlp", "optimizer": "sgd",
                   "batches": [{"batch_size": 20, "lr": 0.05}, {"batch_size": 100, "lr": 0.1}],
                   "line": {"start": -0.5, "stop": 1.5, "num": 5}, "samples": None, "bn": "stored",
                   "hessian": {"samples": 40, "settings": {"max_iter": 8, "trace_probes": 4, "density_probes": 1,
                                                           "density_steps": 6, "sharpness_steps": 2}}},
    "architecture": {"dataset": "tiny", "models": ["res", "res-noshort", "res-narrow"], "optimizer": "sgd",
                     "plane": {"x": {"start": -1, "stop": 1, "num": 3}, "y": {"start": -1, "stop": 1, "num": 3}},
                     "samples": 50, "shard_points": 9, "convexity": {"num": 2, "samples": 20, "max_iter": 5},
                     "hessian": {"samples": 40, "settings": {"max_iter": 8, "trace_probes": 4, "density_probes": 1,
                                                             "density_steps": 6, "sharpness_steps": 2}}},
    # im2016 Table 2: the MLP with and without BatchNorm (the BN-free one is the optimizer study's) and an LSTM
    "bn_study": {"architectures": {"mlp": {"dataset": "tiny", "models": ["mlp-bn", "mlp"]},
                                   "lstm": {"dataset": "text", "models": ["lstm"], "optimizers": ["sgd", "adam"],
                                            "training": {"batch_size": 20}}},
                 "optimizers": ["sgd", "adam"], "init_seeds": [0, 1], "samples": None,
                 "init_final": {"start": 0.0, "stop": 1.0, "num": 3}, "final_final": {"start": 0.0, "stop": 1.0, "num": 5}},
    "deep_linear": {"inputs": 12, "examples": 6, "hidden": 3, "members": 4, "epochs": 20, "batch_size": 3,
                    "descent_max_steps": 50,
                    "drift": {"lrs": [0.005, 0.01], "time": 1.0, "records": 3}},
}


SNAKEFILE = ROOT / "Snakefile"


def snakemake_command(workdir: Path, *args: str, cores: int | None = 2, snakefile: Path = SNAKEFILE) -> list[str]:
    """The Snakemake command line of the workflow in ``workdir`` with its ``config.yaml``.

    ``--force-use-threads`` as in profiles/local: ``run:`` jobs in threads, not one
    Snakemake process each."""
    return [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(workdir),
            "--configfile", str(workdir / "config.yaml"), "--force-use-threads",
            *(["--cores", str(cores)] if cores else []), *args]


def snakemake(workdir: Path, *args: str, config: dict | None = None, timeout: float = 900,
              cores: int | None = 2, snakefile: Path = SNAKEFILE) -> subprocess.CompletedProcess:
    """Run Snakemake in ``workdir`` (with ``config`` written to its config.yaml first, when given)."""
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return subprocess.run(snakemake_command(workdir, *args, cores=cores, snakefile=snakefile),
                          capture_output=True, text=True, timeout=timeout)


def edited(edit) -> dict:
    """A copy of TINY changed by ``edit(config)``."""
    cfg = yaml.safe_load(yaml.safe_dump(TINY))
    edit(cfg)
    return cfg


def config_problems(edit, schema) -> list[str]:
    """The problems, one a line, that the config check finds in TINY changed by ``edit(config)``
    (asserted to fail)."""
    import pytest

    from lossland.pipeline import config as C

    with pytest.raises(C.ConfigError) as info:
        C.check_config(edited(edit), schema)
    return [line.strip() for line in str(info.value).splitlines()[1:]]


def dry_run(workdir: Path, cfg: dict | None = None, *args: str, snakefile: Path = SNAKEFILE) -> str:
    """The output of `snakemake --dry-run` with ``cfg`` (default TINY) in ``workdir``, asserted to
    succeed; the folder's config is TINY again afterwards, as the tests sharing it expect."""
    res = snakemake(workdir, "--dry-run", *args, config=cfg if cfg is not None else TINY, snakefile=snakefile)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    (workdir / "config.yaml").write_text(yaml.safe_dump(TINY))
    return out


def compare_results(old: Path, new: Path) -> subprocess.CompletedProcess:
    """tools/compare_results.py on two results folders (every table, by value, exactly)."""
    return subprocess.run([sys.executable, str(ROOT / "tools" / "compare_results.py"), str(old), str(new)],
                          capture_output=True, text=True, timeout=300)


def planned_jobs(output: str) -> dict[str, int]:
    """The 'Job stats' table of a (dry) run: {rule: count}."""
    stats = {}
    block = output.split("Job stats:", 1)[1] if "Job stats:" in output else ""
    for line in block.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        if m.group(1) != "total":
            stats[m.group(1)] = int(m.group(2))
    return stats
