"""The Snakemake workflow on a tiny config in a temporary folder, through the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.workflow

TINY = {
    "device": "cpu",
    "threads": 1,
    "datasets": {"tiny": {"source": "embedded", "train_size": 200, "test_size": 100, "image_size": 8}},
    "models": {"mlp": {"arch": "mlp", "hidden": [16]}},
    "optimizers": {"sgd": {"algorithm": "sgd", "lr": 0.1}, "adam": {"algorithm": "adam", "lr": 0.01}},
    "training": {"epochs": 2, "batch_size": 50, "checkpoint_every": 1},
    "optimizer_study": {"dataset": "tiny", "models": ["mlp"], "optimizers": ["sgd", "adam"], "init_seeds": [0]},
}


def snakemake(workdir: Path, *args: str, config: dict | None = None) -> subprocess.CompletedProcess:
    cfg = workdir / "config.yaml"
    if config is not None:
        cfg.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(cfg), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


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


def planned_runs(output: str) -> set[str]:
    return set(re.findall(r"wildcards: run=([\w.-]+)", output))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wf")
    res = snakemake(workdir, config=TINY)
    assert res.returncode == 0, res.stdout + res.stderr
    return workdir


def test_workflow_writes_every_output(finished):
    runs = ["mlp_sgd_init0", "mlp_adam_init0"]
    for run in runs:
        base = finished / "results" / "runs" / run
        assert (base / "metrics.parquet").exists() and (base / "final.safetensors").exists()
        assert sorted(p.name for p in (base / "checkpoints").glob("*.safetensors")) == [
            "epoch0001.safetensors", "epoch0002.safetensors"]
        assert not (base / ".partial").exists()
    table = pd.read_parquet(finished / "results" / "tables" / "optimizer_study_metrics.parquet")
    assert set(table["run"]) == set(runs)
    assert table.groupby("run")["epoch"].apply(list).tolist() == [[0, 1, 2]] * 2
    assert (table[table["epoch"] == 0].groupby("run")["train_loss"].first().nunique()) == 1  # same init
    assert (finished / "results" / "figures" / "learning_curves.png").stat().st_size > 10_000
    assert (finished / "results" / "init" / "tiny" / "mlp_init0.safetensors").exists()


def test_nothing_changed_nothing_runs(finished):
    res = snakemake(finished, "--dry-run", config=TINY)
    assert res.returncode == 0, res.stderr
    assert "Nothing to be done" in res.stdout + res.stderr
    assert planned_jobs(res.stdout + res.stderr) == {}


def test_changing_one_learning_rate_reruns_only_its_run_and_downstream(finished):
    changed = yaml.safe_load(yaml.safe_dump(TINY))
    changed["optimizers"]["adam"]["lr"] = 0.02
    res = snakemake(finished, "--dry-run", config=changed)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert planned_runs(out) == {"mlp_adam_init0"}
    assert planned_jobs(out) == {"train_run": 1, "gather_metrics": 1, "plot_learning_curves": 1, "all": 1}
    snakemake(finished, "--dry-run", config=TINY)  # leave the folder's config as the other tests expect


def test_adding_an_init_seed_trains_only_the_new_runs(finished):
    more = yaml.safe_load(yaml.safe_dump(TINY))
    more["optimizer_study"]["init_seeds"] = [0, 1]
    res = snakemake(finished, "--dry-run", config=more)
    out = res.stdout + res.stderr
    assert planned_runs(out) == {"mlp_sgd_init1", "mlp_adam_init1"}
    assert planned_jobs(out)["init_weights"] == 1
    snakemake(finished, "--dry-run", config=TINY)


def test_bad_config_stops_before_any_job(tmp_path):
    bad = yaml.safe_load(yaml.safe_dump(TINY))
    bad["optimizers"]["sgd"]["algorithm"] = "sgd2"
    bad["optimizer_study"]["models"] = ["mlp", "resnet"]
    res = snakemake(tmp_path, config=bad)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "optimizers.sgd.algorithm: 'sgd2' is not allowed; allowed values: 'sgd', 'adagrad'" in out
    assert not (tmp_path / "results").exists()
