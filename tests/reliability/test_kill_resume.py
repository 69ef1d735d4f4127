"""SIGKILL mid-run, then run again: a training job killed between epochs and a landscape
shard killed mid-plane leave nothing that Snakemake would take as finished, and the rerun
(training from its last resume point) gives the tables and checkpoints of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file
from tiny import compare_results, planned_jobs, snakemake, snakemake_command

pytestmark = pytest.mark.workflow

RUN = "wide_sgd-lr0.05_init0"
KILL = {  # 8 epochs of a wide MLP on 2000 images (seconds), and one 11 x 11 random plane shard
    "device": "cpu", "threads": 1,
    "datasets": {"kill": {"source": "embedded", "train_size": 2000, "val_size": 0, "test_size": 200}},
    "models": {"wide": {"arch": "mlp", "hidden": [256]}},
    "optimizers": {"sgd": {"algorithm": "sgd", "lr": 0.05, "momentum": 0.9}},
    "training": {"epochs": 8, "batch_size": 50, "checkpoint_every": 2},
    "optimizer_study": {"dataset": "kill", "models": ["wide"], "optimizers": ["sgd"], "init_seeds": [0]},
    "landscape": {"study": "optimizer_study", "optimizers": ["sgd"], "samples": 400, "kinds": ["random_plane"],
                  "shard_points": 1000, "random_plane": {"x": {"start": -1, "stop": 1, "num": 11},
                                                         "y": {"start": -1, "stop": 1, "num": 11}}},
}


def run_until_killed(workdir: Path, ready, timeout: float = 300) -> str:
    """Start the workflow in its own process group and SIGKILL the whole group (Snakemake and
    its job) once ``ready(output so far)`` holds; return the output."""
    proc = subprocess.Popen(snakemake_command(workdir, cores=1), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(iter(lambda: proc.stdout.read(64), "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not ready("".join(out)):
        assert proc.poll() is None, "the workflow ended before the kill: " + "".join(out)[-3000:]
        assert time.monotonic() < deadline, "no kill point within the timeout: " + "".join(out)[-3000:]
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    reader.join(timeout=10)
    return "".join(out)


def unlock_and_plan(workdir: Path) -> dict[str, int]:
    """After a kill Snakemake's lock stays: --unlock (as the README says), then a dry run."""
    assert snakemake(workdir, "--unlock", cores=1, timeout=120).returncode == 0
    res = snakemake(workdir, "--dry-run", cores=1)
    assert res.returncode == 0, res.stdout + res.stderr
    return planned_jobs(res.stdout)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("uninterrupted")
    res = snakemake(workdir, config=KILL, cores=1)
    assert res.returncode == 0, res.stdout + res.stderr
    return workdir


def test_killed_training_and_landscape_jobs_resume_to_the_uninterrupted_result(tmp_path, uninterrupted):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(KILL))
    run_dir = tmp_path / "results" / "runs" / RUN

    # 1. SIGKILL while the run trains: after its epoch-2 checkpoint, before its last epoch
    run_until_killed(tmp_path, lambda _: (run_dir / ".partial" / "epoch0002.safetensors").exists())
    assert not (run_dir / "metrics.parquet").exists() and not (run_dir / "final.safetensors").exists()
    assert not (run_dir / "checkpoints").exists()
    assert unlock_and_plan(tmp_path)["train_run"] == 1

    # 2. run again (it resumes), SIGKILL while the plane's shard evaluates (its progress bar started)
    shard = tmp_path / "results" / "landscape" / "shards" / "random_plane" / RUN / "shard0-of1.parquet"
    out = run_until_killed(tmp_path, lambda text: "split/s" in text or "?split" in text)
    assert "resuming after epoch" in (tmp_path / "results" / "logs" / "train_run" / f"{RUN}.log").read_text() \
        or "resuming after epoch" in out
    assert (run_dir / "metrics.parquet").exists() and not shard.exists()
    assert not list(shard.parent.glob("*.parquet"))
    planned = unlock_and_plan(tmp_path)
    assert planned.get("landscape_shard") == 1 and "train_run" not in planned, planned

    # 3. run to the end: the same tables (value for value) and checkpoints as without kills
    res = snakemake(tmp_path, cores=1)
    assert res.returncode == 0, res.stdout + res.stderr
    cmp = compare_results(uninterrupted / "results", tmp_path / "results")
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr
    weights = sorted(p.relative_to(uninterrupted) for p in (uninterrupted / "results").rglob("*.safetensors"))
    assert len(weights) >= 6  # data, init, final, 4 checkpoints
    for rel in weights:
        a, b = load_file(uninterrupted / rel), load_file(tmp_path / rel)
        assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a), rel
