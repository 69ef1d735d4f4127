"""The workflow on a real SLURM cluster through profiles/slurm (CI's SLURM stage).

`make test-slurm` starts a single-node cluster on 127.0.0.1 (.ci/slurm-cluster.sh),
runs these with LOSSLAND_SLURM=1 and stops it; elsewhere they are skipped
(tests/conftest.py). Where LOSSLAND_SLURM=1 and no cluster answers, they fail.

The tiny config (its bn_study cut to one column) runs twice: locally and through `sbatch`,
with one training job cancelled by `scancel` while it runs. The checks: every non-local job went through
sbatch, the tables equal the local run's by value, the cancelled job was retried,
and, in a third run, a job that fails (a corrupt data archive) is reported failed
by SLURM while its downstream never runs and the rest of the DAG finishes.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
from tiny import ROOT, TINY, compare_results, snakemake

pytestmark = pytest.mark.slurm

# The CI cluster has no slurmdbd (no sacct): poll with squeue (MinJobAge=3600 keeps finished
# jobs listed) and start polling after 2 s instead of 40. Its one node has 2 CPUs and ~21 GB:
# --cores and the mem_mb pool cap what a job or a batch asks for.
SLURM_ARGS = ("--profile", str(ROOT / "profiles" / "slurm"), "--slurm-status-command", "squeue",
              "--slurm-init-seconds-before-status-checks", "2", "--resources", "mem_mb=16000")
LOCAL_RULES = {"select_lr", "gather_lr_selection", "gather_study_metrics", "gather_chosen_metrics",
               "gather_landscape_surface", "gather_landscape_table", "gather_hessian", "gather_reparam",
               "gather_curves", "gather_walk", "gather_entropy", "gather_deep_linear", "gather_batch_size", "gather_architecture",
               "gather_bn_study", "findings", "all"}
PROFILE = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
BATCH_SIZES = {group: int(n) for group, n in (entry.split("=") for entry in PROFILE["group-components"])}
CANCELLED_RUN = "mlp_adam-lr0.02_init0"  # a training run that nothing waits on first
# the tiny config with the bn_study cut to its MLP column at one init: every rule still runs
# (bn_study_lines once with and once without BatchNorm); the LSTM's jobs are covered by the local
# workflow tests, and each sbatch job costs this 2-CPU cluster a Python start
SLURM_TINY = {**TINY, "bn_study": {**TINY["bn_study"], "init_seeds": [0],
                                   "architectures": {"mlp": TINY["bn_study"]["architectures"]["mlp"]}}}
REPORT = os.environ.get("LOSSLAND_SLURM_REPORT")


def report(title: str, text: str) -> None:
    """Append to the stage's report (printed by .ci/run), so the CI log shows the job listing."""
    if REPORT:
        with open(REPORT, "a") as fh:
            fh.write(f"== {title}\n{text.rstrip()}\n\n")


def squeue_jobs(first_id: int = 0) -> list[dict]:
    """Every job SLURM still lists (finished ones too, until MinJobAge), with id > first_id."""
    out = subprocess.run(["squeue", "--states=all", "-h", "-o", "%i|%T|%k|%C|%m|%l|%r"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    keys = ("id", "state", "comment", "cpus", "memory", "time_limit", "reason")
    jobs = [dict(zip(keys, line.split("|"))) for line in out.splitlines() if line.strip()]
    for job in jobs:
        job["id"] = int(job["id"])
    return sorted((j for j in jobs if j["id"] > first_id), key=lambda j: j["id"])


def listing(jobs: list[dict]) -> str:
    return "\n".join(f"{j['id']:>5} {j['state']:<10} cpus={j['cpus']:<2} mem={j['memory']:<7} "
                     f"time={j['time_limit']:<8} {j['comment']}" for j in jobs)


def last_job_id() -> int:
    return max((j["id"] for j in squeue_jobs()), default=0)


def submitted_ids(output: str) -> list[int]:
    return [int(i) for i in re.findall(r"submitted with SLURM jobid '?(\d+)'?", output)]


@pytest.fixture(scope="module")
def cluster():
    try:
        sinfo = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %c %m %t"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.fail("LOSSLAND_SLURM=1 but there is no `sinfo`: start a cluster with .ci/slurm-cluster.sh start DIR")
    assert sinfo.returncode == 0 and sinfo.stdout.strip(), f"the SLURM cluster does not answer: {sinfo.stderr}"
    return sinfo.stdout.strip()


class CancelOnce(threading.Thread):
    """`scancel` the job whose comment is `comment` once it runs and its script has begun
    (`started` exists: the script's log): SLURM kills it mid-job, as on preemption."""

    def __init__(self, comment: str, first_id: int, started: Path):
        super().__init__(daemon=True)
        self.comment, self.first_id, self.started = comment, first_id, started
        self.cancelled: dict | None = None
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set() and self.cancelled is None:
            if self.started.exists():
                for job in squeue_jobs(self.first_id):
                    if job["comment"] == self.comment and job["state"] == "RUNNING":
                        subprocess.run(["scancel", str(job["id"])], check=True, timeout=30)
                        self.cancelled = job
            time.sleep(0.2)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, cluster):
    workdir = tmp_path_factory.mktemp("local")
    res = snakemake(workdir, config=SLURM_TINY)
    assert res.returncode == 0, res.stdout + res.stderr
    return workdir


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory, cluster):
    workdir = tmp_path_factory.mktemp("slurm")
    first = last_job_id()
    canceller = CancelOnce(f"rule_train_run_wildcards_{CANCELLED_RUN}", first,
                           workdir / "results" / "logs" / "train_run" / f"{CANCELLED_RUN}.log")
    canceller.start()
    started = time.monotonic()
    res = snakemake(workdir, *SLURM_ARGS, config=SLURM_TINY, cores=2, timeout=1500)
    seconds = time.monotonic() - started
    canceller.stop.set()
    canceller.join(timeout=10)
    output = res.stdout + res.stderr
    jobs = squeue_jobs(first)
    report(f"tiny config through profiles/slurm: exit {res.returncode} in {seconds:.0f} s, "
           f"{len(submitted_ids(output))} sbatch submissions (squeue --states=all)", listing(jobs))
    assert res.returncode == 0, output[-20000:]
    return {"dir": workdir, "output": output, "jobs": jobs, "cancelled": canceller.cancelled}


def test_every_cluster_job_went_through_sbatch(slurm_run):
    jobs, output, cancelled = slurm_run["jobs"], slurm_run["output"], slurm_run["cancelled"]
    assert sorted(submitted_ids(output)) == [j["id"] for j in jobs]
    assert all(j["state"] == "COMPLETED" for j in jobs if j["id"] != cancelled["id"]), listing(jobs)
    # one sbatch per job of a rule that is not a local table gather; none for local rules
    batch_prefixes = tuple(f"rule_{group}_" for group in BATCH_SIZES)   # a group's batch: rule_<group>_<rules>
    single = [re.sub(r"_wildcards_.*$", "", j["comment"]).removeprefix("rule_") for j in jobs
              if not j["comment"].startswith(batch_prefixes)]   # with wildcards or without (deep_linear_drift)
    executed = re.findall(r"^(local)?(?:rule|checkpoint) (\w+):", output, flags=re.M)
    assert {rule for local, rule in executed if local} <= LOCAL_RULES
    assert sorted(rule for local, rule in executed if not local) == sorted(single)
    assert {"prepare_dataset", "init_weights", "train_run", "landscape_line", "landscape_pca_directions",
            "hessian_init", "hessian_checkpoint", "reparam_sweep", "reparam_input", "curve_pair",
            "sgd_walk", "entropy_dynamics", "deep_linear_students", "deep_linear_drift", "sharpness_hessian",
            "batch_size_line", "architecture_convexity", "bn_study_lines"} <= set(single)
    # shards and figures went in batches of the profile's group-components, not one sbatch each
    results = slurm_run["dir"] / "results"
    shards = len(list((results / "landscape").rglob("shard*-of*.parquet")))
    architecture_shards = len(list((results / "sharpness").rglob("shard*-of*.parquet")))
    figures = len(list((results / "figures").glob("*.png")))
    batched = {"landscape_shards": shards, "architecture_shards": architecture_shards, "figures": figures}
    assert set(batched) == set(BATCH_SIZES)
    batches = {group: len([j for j in jobs if j["comment"].startswith(f"rule_{group}_")]) for group in batched}
    for group, n in batched.items():   # at most ceil(n / size) sbatch jobs (Snakemake may pack the ready ones into fewer)
        assert 1 <= batches[group] <= -(-n // BATCH_SIZES[group]), listing(jobs)
    assert len(jobs) == len(single) + sum(batches.values())
    report("sbatch submissions", f"{len(jobs)} with batches ({len(single) - 1} single jobs, 1 retry, "
           f"{batches['landscape_shards']} batches of {shards} shards and {batches['figures']} of {figures} figures); "
           f"{len(single) - 1 + shards + architecture_shards + figures} without batches")


def test_jobs_ask_for_the_rules_resources(slurm_run):
    train = [j for j in slurm_run["jobs"] if j["comment"].startswith("rule_train_run_")]
    # config resources.train (defaults: 120 min, 8000 MB); threads: 1 -> one CPU
    assert train and all((j["time_limit"], j["memory"], j["cpus"]) == ("2:00:00", "8000M", "1") for j in train)
    plots = [j for j in slurm_run["jobs"] if "figures" in j["comment"]]
    assert plots and all(int(j["cpus"]) <= 2 for j in plots)  # a batch stays within --cores


def test_tables_equal_the_local_run(slurm_run, local_run):
    res = compare_results(local_run / "results", slurm_run["dir"] / "results")
    report("compare_results.py local/results slurm/results", res.stdout + res.stderr)
    assert res.returncode == 0, res.stdout + res.stderr


def test_a_cancelled_job_is_retried(slurm_run):
    cancelled = slurm_run["cancelled"]
    assert cancelled is not None, "the training job to cancel never ran"
    same = [j for j in slurm_run["jobs"] if j["comment"] == cancelled["comment"]]
    assert [j["state"] for j in same] == ["CANCELLED", "COMPLETED"], listing(same)
    assert re.search(rf"SLURM-job '{cancelled['id']}' failed.*CANCELLED", slurm_run["output"])
    report("the cancelled job and its retry", listing(same))


BROKEN = {
    **{k: TINY[k] for k in ("device", "threads", "training")},
    "models": {"mlp": TINY["models"]["mlp"], "mlp-n1": TINY["models"]["mlp-n1"]},
    "optimizers": {"sgd": TINY["optimizers"]["sgd"], "adam": TINY["optimizers"]["adam"]},
    "optimizer_study": {"dataset": "tiny", "models": ["mlp"], "optimizers": ["sgd", "adam"]},
    "init_study": {"dataset": "broken", "models": ["mlp-n1"], "optimizers": ["sgd"]},
}


def test_a_failing_job_stops_only_its_downstream(tmp_path, cluster):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(os.urandom(4096))  # not a tar archive: prepare_dataset fails on the cluster
    config = {**BROKEN, "datasets": {"tiny": TINY["datasets"]["tiny"],
                                     "broken": {"source": "python-archive", "path": str(archive)}}}
    (tmp_path / "wf").mkdir()
    first = last_job_id()
    res = snakemake(tmp_path / "wf", *SLURM_ARGS, config=config, cores=2, timeout=900)
    output = res.stdout + res.stderr
    jobs = squeue_jobs(first)
    report(f"a failing job (corrupt archive): exit {res.returncode}", listing(jobs))
    assert res.returncode != 0
    failed = [j for j in jobs if j["state"] == "FAILED"]
    assert [j["comment"] for j in failed] == ["rule_prepare_dataset_wildcards_broken"] * (1 + PROFILE["retries"]), \
        listing(jobs)
    assert all(re.search(rf"SLURM-job '{j['id']}' failed", output) for j in failed), output[-5000:]
    # each attempt's SLURM log names the file that broke it
    logs = tmp_path / "wf" / ".snakemake" / "slurm_logs" / "rule_prepare_dataset" / "broken"
    assert all(f"{archive}: not a folder or a tar archive" in (logs / f"{j['id']}.log").read_text() for j in failed)
    # its downstream never reached the cluster; the other data set's branch finished (keep-going)
    assert [j for j in jobs if "broken" in j["comment"] or "mlp-n1" in j["comment"]] == failed, listing(jobs)
    assert all(j["state"] == "COMPLETED" for j in jobs if j not in failed), listing(jobs)
    results = tmp_path / "wf" / "results"
    assert {p.parent.name for p in (results / "runs").glob("*/final.safetensors")} == {
        "mlp_sgd-lr0.1_init0", "mlp_adam-lr0.01_init0"}
    assert not (results / "runs" / "mlp-n1_sgd-lr0.1_init0").exists()
    assert not list((results / "data").glob("broken*"))
    assert (results / "tables" / "optimizer_study_metrics.parquet").exists()
    assert not (results / "tables" / "init_study_metrics.parquet").exists()
    # a batch runs when all its jobs can: the figures share one with the broken study's
    # figures, so they wait for the rerun that follows a fix
    assert not (results / "figures" / "init_study_learning_curves.png").exists()
