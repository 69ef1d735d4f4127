"""The Snakemake workflow on a tiny config in a temporary folder, through the CLI."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from tiny import TINY, dry_run, edited, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

RUNS = {"mlp_sgd-lr0.1_init0", "mlp_adam-lr0.01_init0", "mlp_adam-lr0.02_init0", "mlp_rmsprop-lr0.001_init0",
        "mlp_sgdm-lr0.05_init0",
        "mlp_heun-lr0.2_init0", "mlp-n1_sgd-lr0.1_init0", "mlp_S1-A1_init0", "mlp-bn_sgd-lr0.1_init0",
        "mlp_sgd-lr0.05-bs20_init0", "mlp_sgd-lr0.1-bs100_init0",   # batch_size
        "res_sgd-lr0.1_init0", "res-noshort_sgd-lr0.1_init0", "res-narrow_sgd-lr0.1_init0",   # architecture
        "mlp_sgd-lr0.1_init1", "mlp_adam-lr0.01_init1", "mlp-bn_adam-lr0.01_init0", "mlp-bn_sgd-lr0.1_init1",
        "mlp-bn_adam-lr0.01_init1", "lstm_sgd-lr0.1_init0", "lstm_adam-lr0.01_init0", "lstm_sgd-lr0.1_init1",
        "lstm_adam-lr0.01_init1"}   # bn_study
FIGURES = ["fig4_optimizer_accuracy", "fig7_switching", "fig9_rk2_training", "fig11_exotic_inits",
           "optimizer_study_learning_curves", "rk2_study_learning_curves", "init_study_learning_curves",
           "switch_study_learning_curves", "hessian_density", "hessian_sharpness", "hessian_negative_fraction",
           "dinh_alpha_scale", "dinh_reparametrizations", "curve_profiles", "curve_plane", "sgd_walk",
           "zhang_fig1_entropy_by_dynamics", "zhang_fig2_entropy_test_error", "zhang_fig3_deep_linear_balanced",
           "zhang_fig4_deep_linear_unbalanced", "zhang_fig5_trace_entropy",
           "keskar_interpolation", "keskar_sharpness", "li_skip_surfaces", "li_skip_surfaces_3d", "li_convexity",
           "li_width", "table2_bn_lines", "fig8_bn_minima"]
LANDSCAPE_FIGURES = ["fig2_init_final", "fig3_bilinear", "fig5_interpolation", "fig6_distance", "fig10_beyond_final",
                     "table1_optimizer_grid", "fig7_switching_interpolation", "random_plane", "pca_plane"]
LINE_COLUMNS = {"start", "end", "alpha", "split", "loss", "accuracy"}
SURFACE_COLUMNS = {"kind", "x", "y", "split", "loss", "accuracy"}


def planned_runs(output: str) -> set[str]:
    return set(re.findall(r"wildcards: run=([\w.-]+)", output))


@pytest.fixture(scope="module")
def finished(tiny_workflow):
    return tiny_workflow


def test_workflow_writes_every_output(finished):
    results = finished / "results"
    for run in RUNS:
        base = results / "runs" / run
        assert (base / "metrics.parquet").exists() and (base / "final.safetensors").exists(), run
        assert sorted(p.name for p in (base / "checkpoints").glob("*.safetensors")) == [
            "epoch0001.safetensors", "epoch0002.safetensors"]
        assert not (base / ".partial").exists()
    table = pd.read_parquet(results / "tables" / "optimizer_study_metrics.parquet")
    assert set(table["run"]) == {"mlp_sgd-lr0.1_init0", "mlp_adam-lr0.01_init0", "mlp_adam-lr0.02_init0",
                                 "mlp_rmsprop-lr0.001_init0", "mlp_sgdm-lr0.05_init0"}
    assert table.groupby("run")["epoch"].apply(list).tolist() == [[0, 1, 2]] * 5
    assert (table[table["epoch"] == 0].groupby("run")["train_loss"].first().nunique()) == 1  # same init
    for name in FIGURES:
        assert (results / "figures" / f"{name}.png").stat().st_size > 10_000, name
        assert (results / "figures" / f"{name}.pdf").stat().st_size > 1_000, name
    assert (results / "init" / "tiny" / "mlp_init0.safetensors").exists()


def test_every_rule_writes_a_benchmark_credited_to_a_family(finished):
    """The benchmark files behind benchmarks/family_times.py: one per job of every rule, each
    credited to a family (none unknown), every run's training to the family that asks for it."""
    from lossland.pipeline import config as C
    from lossland.pipeline import families as F
    from lossland.pipeline import timing

    folder = finished / "results" / "benchmarks"
    rules = {p.name for p in folder.iterdir() if p.is_dir()}
    assert {*timing.rule_families(), "prepare_dataset", "init_weights", "train_run", "plot", "findings"} <= rules
    assert {p.stem for p in (folder / "train_run").glob("*.tsv")} == RUNS
    frame = timing.family_times(finished / "results", C.check_config(TINY)).set_index("family")
    assert set(frame.index) == {"data", *(f.NAME for f in F.FAMILIES), "report"}
    assert (frame["seconds"] > 0).all() and frame.loc["im2016", "jobs"] >= len(RUNS) - 1

def test_findings_table_has_every_claim_with_a_verdict(finished):
    from lossland.pipeline import findings as FD

    frame = pd.read_parquet(finished / "results" / "tables" / "findings.parquet")
    assert list(frame["finding"]) == [f.name for _, f in FD.registered()]
    assert set(frame["verdict"]) <= set(FD.VERDICTS)
    measured = frame[frame["verdict"] != FD.NOT_RUN]
    assert len(measured) >= 5 and measured["measured"].notna().all()
    overview = (finished / "results" / "report" / "overview.rst").read_text()
    assert "zhang2018" in overview and "not implemented yet" in overview and "``landscape``" in overview


def test_report_holds_every_figure_with_its_numbers_and_the_findings(finished):
    """`snakemake --report` after the run: one self-contained HTML file with every registered
    figure, its caption as rendered with the numbers, the findings page and the overview."""
    from lossland.pipeline import families as F

    report = finished / "report.html"
    res = snakemake(finished, "--report", str(report))
    assert res.returncode == 0, res.stdout + res.stderr
    text = report.read_text()
    for name in F.figures():
        assert f"{name}.png" in text, name
        caption = (finished / "results" / "captions" / f"{name}.rst").read_text()
        assert "Scale:" in caption and "{{" not in caption, name
    assert text.count("Scale:") >= len(F.figures())     # every caption, rendered, is in the report
    assert "findings.html" in text and "What this run covered" in text
    report.unlink()

def test_learning_rate_is_selected_on_the_validation_split(finished):
    results = finished / "results"
    sel = pd.read_parquet(results / "tables" / "lr_selection.parquet")
    assert sorted(sel["lr"]) == [0.01, 0.02] and sel["selected"].sum() == 1
    assert set(sel["optimizer"]) == {"adam"} and set(sel["study"]) == {"optimizer_study"}
    metrics = pd.read_parquet(results / "tables" / "optimizer_study_metrics.parquet")
    last = metrics[(metrics["epoch"] == 2) & (metrics["optimizer"] == "adam")].set_index("lr")["val_acc"]
    best = sel.loc[sel["selected"], "lr"].item()
    assert last[best] == last.max()
    chosen = pd.read_parquet(results / "tables" / "optimizer_study_chosen_metrics.parquet")
    assert set(chosen["run"]) == {"mlp_sgd-lr0.1_init0", f"mlp_adam-lr{best:g}_init0", "mlp_rmsprop-lr0.001_init0",
                                  "mlp_sgdm-lr0.05_init0"}


def test_switch_run_continues_from_the_prefix_checkpoint(finished):
    runs = finished / "results" / "runs"
    prefix = pd.read_parquet(runs / "mlp_sgd-lr0.1_init0" / "metrics.parquet")
    switch = pd.read_parquet(runs / "mlp_S1-A1_init0" / "metrics.parquet")
    assert switch["phase"].tolist() == ["sgd", "sgd", "adam"]
    pd.testing.assert_series_equal(prefix["train_loss"].iloc[:2], switch["train_loss"].iloc[:2])
    assert switch["train_loss"].iloc[2] != prefix["train_loss"].iloc[2]
    log = (finished / "results" / "logs" / "train_run" / "mlp_S1-A1_init0.log").read_text()
    assert "switching from sgd to adam after epoch 1" in log


def test_hessian_tables_cover_init_and_end_of_the_chosen_runs(finished):
    tables = finished / "results" / "tables"
    summary = pd.read_parquet(tables / "hessian_summary.parquet")
    sel = pd.read_parquet(tables / "lr_selection.parquet")
    adam = f"mlp_adam-lr{sel.loc[sel['selected'], 'lr'].item():g}_init0"
    assert set(summary["run"]) == {"mlp_sgd-lr0.1_init0", adam}
    assert sorted(summary.groupby("run")["epoch"].apply(list).tolist()) == [[0, 2], [0, 2]]
    init = summary[summary["epoch"] == 0]
    assert init["top_eigenvalue"].nunique() == 1  # one shared initial point, computed once
    assert (summary["top_eigenvalue"] >= summary["bottom_eigenvalue"]).all()
    assert {"run", "trace", "method"} <= set(summary.columns)
    eig = pd.read_parquet(tables / "hessian_eigenvalues.parquet")
    assert {"run", "index", "eigenvalue"} <= set(eig.columns)
    assert len(list((finished / "results" / "hessian" / "init").rglob("summary.parquet"))) == 1


def test_changing_hessian_settings_reruns_only_the_hessian_jobs(finished):
    out = dry_run(finished, edited(lambda c: c["hessian"]["settings"].update(trace_probes=6)))
    assert planned_jobs(out) == {"hessian_init": 1, "hessian_checkpoint": 2, "gather_hessian": 1,
                                 "plot_hessian_density": 1, "plot_hessian_sharpness": 1,
                                 "plot_hessian_negative_fraction": 1, "findings": 1, "all": 1}


def test_nothing_changed_nothing_runs(finished):
    res = snakemake(finished, "--dry-run", config=TINY)
    assert res.returncode == 0, res.stderr
    assert "Nothing to be done" in res.stdout + res.stderr
    assert planned_jobs(res.stdout + res.stderr) == {}


def test_changing_cluster_resources_reruns_nothing(finished):
    out = dry_run(finished, edited(lambda c: c.update(resources={"train": {"runtime": 999, "mem_mb": 1234}})))
    assert planned_jobs(out) == {}


def job_resources(output: str) -> dict[str, list[dict[str, str]]]:
    """{rule: [the `resources:` of each of its jobs]} from a dry run's job listing (where the
    jobs of a group, which only a cluster executor submits together, are listed indented)."""
    jobs: dict[str, list[dict[str, str]]] = {}
    for block in re.split(r"\n(?=\s*(?:local)?(?:rule|checkpoint) \w+:)", output):
        rule = re.match(r"\s*(?:local)?(?:rule|checkpoint) (\w+):", block)
        line = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        if rule and line:
            pairs = dict(kv.split("=", 1) for kv in line.group(1).split(", "))
            jobs.setdefault(rule.group(1), []).append(pairs)
    return jobs


def test_jobs_ask_for_their_kind_of_resources_and_a_gpu_only_for_compute(tmp_path):
    cfg = edited(lambda c: c.update(device="cuda", resources={"train": {"runtime": 500, "mem_mb": 12000}}))
    res = snakemake(tmp_path, "--dry-run", config=cfg)
    assert res.returncode == 0, res.stderr
    jobs = job_resources(res.stdout)
    assert {"prepare_dataset", "init_weights", "train_run", "reparam_sweep", "reparam_input"} <= set(jobs)
    assert all((j["gpu"], j["runtime"], j["mem_mb"]) == ("1", "500", "12000") for j in jobs["train_run"])
    # the schema's defaults for the kinds the config leaves out
    assert all((j["gpu"], j["runtime"], j["mem_mb"]) == ("1", "60", "8000") for j in jobs["reparam_sweep"])
    assert all((j["gpu"], j["runtime"], j["mem_mb"]) == ("0", "30", "4000")
               for rule in ("prepare_dataset", "init_weights") for j in jobs[rule])
    plots = [j for rule, js in jobs.items() if rule.startswith("plot_") for j in js]
    assert plots and all(j["gpu"] == "0" and j["runtime"] == "10" for j in plots)
    cpu = job_resources(snakemake(tmp_path, "--dry-run", config=TINY).stdout)
    assert {j["gpu"] for js in cpu.values() for j in js if "gpu" in j} == {"0"}
    # what snakemake-executor-plugin-slurm makes of them: the sbatch options of a training job
    assert sbatch_options(jobs["train_run"][0], threads=1) >= {"-t 500", "--mem 12000", "--cpus-per-task=1",
                                                                "--gpus=1"}
    assert not any(o.startswith("--gpus") for o in sbatch_options(jobs["prepare_dataset"][0], threads=1))


def sbatch_options(resources: dict[str, str], threads: int) -> set[str]:
    """The resource options of the sbatch call the SLURM plugin builds for a job with these resources."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    class Resources(dict):
        __getattr__ = dict.__getitem__

    values = Resources({k: int(resources[k]) for k in ("gpu", "runtime", "mem_mb")})
    job = type("Job", (), {"resources": values, "threads": threads, "is_group": lambda self: False})()
    params = {"run_uuid": "u", "slurm_logfile": "log", "comment_str": "c", "account": "", "partition": "",
              "workdir": "."}
    call = get_submit_command(job, params) + set_gres_string(job)
    return set(re.findall(r"(-t \d+|--mem \d+|--cpus-per-task=\d+|--gpus=\S+)", call))


def test_changing_one_learning_rate_reruns_only_its_run_and_downstream(finished):
    out = dry_run(finished, edited(lambda c: c["optimizers"]["rmsprop"].update(lr=0.002)))
    assert planned_runs(out) == {"mlp_rmsprop-lr0.002_init0"}
    # rmsprop is a corner of the bilinear plane only (landscape.optimizers is [sgd, adam])
    assert planned_jobs(out) == {"train_run": 1, "gather_study_metrics": 1, "plot_optimizer_study_learning_curves": 1,
                                 "gather_chosen_metrics": 1, "plot_fig4_optimizer_accuracy": 1,
                                 "landscape_shard": 2, "gather_landscape_surface": 1, "gather_landscape_table": 1,
                                 "plot_fig3_bilinear": 1, "findings": 1, "all": 1}


def test_changing_the_second_optimizer_never_retrains_the_prefix(finished):
    # the optimizer study's Adam runs use the grid's rates, so Adam's `lr` defines the second phase
    # of S1-A1 and the bn_study's Adam runs (which train at each optimizer's own rate), nothing else
    out = dry_run(finished, edited(lambda c: c["optimizers"]["adam"].update(lr=0.005)))
    print(out)  # the listing quoted in the closing note
    bn_study = {f"{m}_adam-lr0.005_init{s}" for m in ("mlp", "mlp-bn", "lstm") for s in (0, 1)}
    assert planned_runs(out) == {"mlp_S1-A1_init0"} | bn_study
    assert "mlp_sgd-lr0.1_init0" not in out.split("Job stats:")[0]
    assert planned_jobs(out) == {"train_run": 7, "gather_study_metrics": 1, "plot_switch_study_learning_curves": 1,
                                 "plot_fig7_switching": 1, "landscape_line": 1, "gather_landscape_table": 1,
                                 "plot_fig7_switching_interpolation": 1, "bn_study_lines": 6, "gather_bn_study": 1,
                                 "plot_table2_bn_lines": 1, "plot_fig8_bn_minima": 1, "findings": 1, "all": 1}


def test_changing_a_grid_trains_only_the_new_rate_and_reselects(finished):
    out = dry_run(finished, edited(lambda c: c["optimizer_study"]["lr_grids"].update(adam=[0.01, 0.02, 0.005])))
    assert planned_runs(out) == {"mlp_adam-lr0.005_init0"}
    jobs = planned_jobs(out)
    assert jobs["train_run"] == 1 and jobs["select_lr"] == 1 and jobs["gather_lr_selection"] == 1


def test_adding_an_init_seed_trains_only_the_new_runs(finished):
    out = dry_run(finished, edited(lambda c: c["optimizer_study"].update(init_seeds=[0, 1])))
    # SGD at 0.1 and Adam at 0.01 from init 1 are bn_study runs already: shared, not retrained
    assert planned_runs(out) == {"mlp_adam-lr0.02_init1", "mlp_rmsprop-lr0.001_init1", "mlp_sgdm-lr0.05_init1"}
    assert "init_weights" not in planned_jobs(out)   # the bn_study's init 1 of the mlp is the same init


def test_landscape_tables_and_figures(finished):
    results = finished / "results"
    kinds = ["init_final", "final_final", "distance", "switching", "bilinear", "barycentric", "random_plane", "pca"]
    tables = {k: pd.read_parquet(results / "tables" / f"landscape_{k}.parquet") for k in kinds}
    for kind in kinds[:4]:
        assert LINE_COLUMNS <= set(tables[kind].columns), kind
        assert set(tables[kind]["split"]) == {"train", "test"}, kind
    for kind in kinds[4:]:
        assert SURFACE_COLUMNS <= set(tables[kind].columns), kind
        # two shard jobs per plane, gathered to the whole 3 x 3 grid on each split
        assert (tables[kind].groupby(["name", "split"]).size() == 9).all(), kind
        assert not tables[kind].duplicated(["name", "split", "x", "y"]).any(), kind
        for name in set(tables[kind]["name"]):
            shards = sorted(p.name for p in (results / "landscape" / "shards" / kind / name).glob("*.parquet"))
            assert shards == ["shard0-of2.parquet", "shard1-of2.parquet"], (kind, name)
            assert (results / "landscape" / kind / f"{name}.parquet").exists()
    assert set(tables["init_final"]["optimizer"]) == {"sgd", "adam"}
    assert len(set(tables["final_final"]["run_b"])) == 1 and len(set(tables["barycentric"]["name"])) == 1
    assert tables["bilinear"]["corners"].unique().tolist() == ["sgd,adam,rmsprop,sgdm"]
    ff = tables["final_final"]
    assert ff.loc[ff["alpha"] == 0, "functional_distance"].abs().max() < 1e-6
    assert ff["disagreement"].between(0, 1).all()
    sw = tables["switching"]
    assert set(zip(sw["start_label"], sw["end_label"])) == {("sgd only", "S1-A1")}
    traj = pd.read_parquet(results / "tables" / "landscape_pca_trajectory.parquet")
    assert traj.groupby("run")["epoch"].apply(list).tolist() == [[0, 1, 2]] * 2
    assert "config_hash" in str(pq.read_schema(results / "tables" / "landscape_pca.parquet").metadata)
    for name in LANDSCAPE_FIGURES:
        assert (results / "figures" / f"{name}.png").stat().st_size > 10_000, name


def test_init_final_endpoints_are_the_runs_metrics(finished):
    results = finished / "results"
    lines = pd.read_parquet(results / "tables" / "landscape_init_final.parquet")
    for run, part in lines[lines["split"] == "train"].groupby("run"):
        metrics = pd.read_parquet(results / "runs" / run / "metrics.parquet").set_index("epoch")
        at = part.set_index("alpha")
        assert at.loc[0.0, "loss"] == pytest.approx(metrics.loc[0, "train_loss"], rel=1e-4), run
        assert at.loc[1.0, "loss"] == pytest.approx(metrics.loc[2, "train_loss"], rel=1e-4), run
        assert at.loc[1.0, "accuracy"] == pytest.approx(metrics.loc[2, "train_acc"], abs=1e-6), run
    dist = pd.read_parquet(results / "tables" / "landscape_distance.parquet")
    first = dist[(dist["split"] == "train") & (dist["distance"] == 0)].set_index("run")["loss"]
    ends = lines[(lines["split"] == "train") & (lines["alpha"] == 1.0)].set_index("run")["loss"]
    pd.testing.assert_series_equal(first.sort_index(), ends.sort_index(), check_names=False, rtol=1e-5)


def test_changing_a_landscape_grid_reruns_only_that_kind(finished):
    out = dry_run(finished, edited(lambda c: c["landscape"]["random_plane"]["x"].update(num=4)))
    assert planned_runs(out) == set()
    assert planned_jobs(out) == {"landscape_shard": 4, "gather_landscape_surface": 2, "gather_landscape_table": 1,
                                 "plot_random_plane": 1, "findings": 1, "all": 1}
    out = dry_run(finished, edited(lambda c: c["landscape"].update(bn="recompute")))
    jobs = planned_jobs(out)
    assert "train_run" not in jobs and "landscape_pca_directions" not in jobs
    assert jobs["landscape_line"] == 6 and jobs["landscape_shard"] == 12


def test_reparam_tables_keep_the_function_and_move_the_sharpness(finished):
    tables = finished / "results" / "tables"
    sweep = pd.read_parquet(tables / "reparam_sweep.parquet")
    assert {"alpha", "max_output_diff", "test_loss", "test_accuracy", "top_eigenvalue", "trace",
            "epsilon_sharpness", "transform", "layers", "scaled"} <= set(sweep.columns)
    assert set(zip(sweep["model"], sweep["transform"])) == {("mlp", "alpha_scale"), ("mlp", "weight_norm"),
                                                            ("mlp-bn", "bn_scale")}
    assert sweep["alpha"].tolist()[:3] == pytest.approx([0.01, 1.0, 100.0])
    assert sweep["rel_output_diff"].max() < 1e-5
    assert (sweep.groupby(["run", "transform"])["test_loss"].agg(lambda v: v.max() - v.min()) < 1e-5).all()
    spread = pd.read_parquet(tables / "reparam_spread.parquet").set_index(["transform", "measure"])
    assert spread.loc[("alpha_scale", "top_eigenvalue"), "spread"] > 100
    inputs = pd.read_parquet(tables / "reparam_input.parquet")
    assert set(inputs["transform"]) == {"identity", "scale", "standardize", "whiten"}
    assert len(pd.read_parquet(tables / "reparam_input_examples.parquet")) == 2 * 3 * 60


def test_changing_reparam_settings_reruns_only_the_sweeps(finished):
    out = dry_run(finished, edited(lambda c: c["reparam"]["settings"].update(trace_probes=6)))
    assert planned_jobs(out) == {"reparam_sweep": 3, "gather_reparam": 1, "plot_dinh_alpha_scale": 1,
                                 "plot_dinh_reparametrizations": 1, "findings": 1, "all": 1}
    out = dry_run(finished, edited(lambda c: c["reparam"].update(input=["whiten"])))
    assert planned_jobs(out) == {"reparam_input": 2, "gather_reparam": 1, "plot_dinh_alpha_scale": 1,
                                 "plot_dinh_reparametrizations": 1, "findings": 1, "all": 1}


def test_curve_joins_the_chosen_runs_and_the_walk_starts_from_one(finished):
    """The curve's ends are the chosen runs' final weights (adam through the learning-rate
    selection): on whole splits, the line's and the curve's ends are the runs' final metrics."""
    tables = finished / "results" / "tables"
    sel = pd.read_parquet(tables / "lr_selection.parquet")
    adam = f"mlp_adam-lr{sel.loc[sel['selected'], 'lr'].item():g}_init0"
    profiles = pd.read_parquet(tables / "curve_profiles.parquet")
    assert set(zip(profiles["start_run"], profiles["end_run"])) == {("mlp_sgd-lr0.1_init0", adam)}
    metrics = pd.read_parquet(tables / "optimizer_study_metrics.parquet")
    final = metrics[metrics["epoch"] == 2].set_index("run")
    for path in ("line", "curve"):
        for split in ("train", "test"):
            rows = profiles[(profiles["path"] == path) & (profiles["split"] == split)].set_index("t")["loss"]
            assert rows.loc[0.0] == pytest.approx(final.loc["mlp_sgd-lr0.1_init0", f"{split}_loss"], rel=1e-5)
            assert rows.loc[1.0] == pytest.approx(final.loc[adam, f"{split}_loss"], rel=1e-5)
    assert len(pd.read_parquet(tables / "curve_plane.parquet")) == 9
    steps = pd.read_parquet(tables / "walk_steps.parquet")
    assert set(steps["walk"]) == {"mlp_sgd-init0_b20", "mlp_sgd-init0_gd"} and set(steps["step"]) == set(range(4))
    assert set(steps["run"]) == {"mlp_sgd-lr0.1_init0"} and set(steps["lr"]) == {0.1}
    segments = pd.read_parquet(tables / "walk_segments.parquet")
    assert len(segments) == 2 * 4 * 3 * 2


def test_changing_curve_settings_reruns_only_the_curves(finished):
    out = dry_run(finished, edited(lambda c: c["curves"].update(epochs=3)))
    assert planned_jobs(out) == {"curve_pair": 1, "gather_curves": 1, "plot_curve_profiles": 1,
                                 "plot_curve_plane": 1, "findings": 1, "all": 1}
    out = dry_run(finished, edited(lambda c: c["walk"].update(steps=5)))
    assert planned_jobs(out) == {"sgd_walk": 2, "gather_walk": 1, "plot_sgd_walk": 1, "findings": 1, "all": 1}


def test_entropy_tables_follow_the_data_contract(finished):
    tables = finished / "results" / "tables"
    solutions = pd.read_parquet(tables / "entropy_solutions.parquet")
    assert list(solutions.columns[:6]) == ["run", "method", "member", "entropy", "neg_log_trace", "test_error"]
    assert sorted(solutions["run"]) == sorted(f"{m}-{k}" for m in ("sgd", "langevin", "gd") for k in range(4))
    assert solutions.groupby("member")["init_seed"].nunique().eq(1).all()   # one init per member in every dynamics
    spectra = pd.read_parquet(tables / "entropy_spectra.parquet")
    assert spectra.groupby("run").size().eq(1320).all()
    students = pd.read_parquet(tables / "deep_linear_solutions.parquet")
    assert {"run", "method", "entropy", "neg_log_trace", "test_error", "gen_error", "init"} <= set(students.columns)
    assert set(students["init"]) == {"balanced", "unbalanced"} and (students["kept"] == 6).all()
    drift = pd.read_parquet(tables / "deep_linear_drift.parquet")
    assert set(drift["method"]) == {"gd", "sgd"} and set(drift["lr"]) == {0.005, 0.01}


def test_changing_an_entropy_setting_reruns_only_its_job(finished):
    out = dry_run(finished, edited(lambda c: c["entropy"].update(langevin_steps=12)))
    assert planned_jobs(out) == {"entropy_dynamics": 1, "gather_entropy": 1, "plot_zhang_fig1_entropy_by_dynamics": 1,
                                 "plot_zhang_fig2_entropy_test_error": 1, "findings": 1, "all": 1}
    out = dry_run(finished, edited(lambda c: c["deep_linear"]["drift"].update(records=4)))
    assert planned_jobs(out) == {"deep_linear_drift": 1, "gather_deep_linear": 1,
                                 "plot_zhang_fig3_deep_linear_balanced": 1, "plot_zhang_fig4_deep_linear_unbalanced": 1,
                                 "plot_zhang_fig5_trace_entropy": 1, "findings": 1, "all": 1}


def test_sharpness_tables_follow_the_data_contract(finished):
    tables = finished / "results" / "tables"
    solutions = pd.read_parquet(tables / "batch_size_solutions.parquet")
    assert list(solutions["batch_size"]) == [20, 100] and solutions["top_eigenvalue"].gt(0).all()
    line = pd.read_parquet(tables / "batch_size_interpolation.parquet")
    assert LINE_COLUMNS <= set(line.columns) and set(line["split"]) == {"train", "test"}
    # whole splits with the stored statistics: the ends of the line are the two runs' final metrics
    for alpha, run in ((0.0, "mlp_sgd-lr0.05-bs20_init0"), (1.0, "mlp_sgd-lr0.1-bs100_init0")):
        metrics = pd.read_parquet(finished / "results" / "runs" / run / "metrics.parquet").iloc[-1]
        for split in ("train", "test"):
            end = line[(line["alpha"] == alpha) & (line["split"] == split)].iloc[0]
            assert end["loss"] == pytest.approx(metrics[f"{split}_loss"], rel=1e-5), (run, split)
            assert end["accuracy"] == pytest.approx(metrics[f"{split}_acc"]), (run, split)
    arch = pd.read_parquet(tables / "architecture_solutions.parquet")
    assert list(arch["model"]) == ["res", "res-noshort", "res-narrow"] and list(arch["skip"]) == [True, False, True]
    assert arch.loc[0, "n_params"] == arch.loc[1, "n_params"]  # the skips carry no parameters
    surfaces = pd.read_parquet(tables / "architecture_surfaces.parquet")
    assert SURFACE_COLUMNS <= set(surfaces.columns) and surfaces.groupby("run").size().eq(9).all()
    convexity = pd.read_parquet(tables / "architecture_convexity.parquet")
    assert convexity.groupby("run").size().eq(4).all() and convexity["top_eigenvalue"].gt(0).all()


def test_changing_a_sharpness_setting_reruns_only_its_jobs(finished):
    out = dry_run(finished, edited(lambda c: c["architecture"]["convexity"].update(max_iter=6)))
    assert planned_jobs(out) == {"architecture_convexity": 3, "gather_architecture": 1, "plot_li_convexity": 1,
                                 "plot_li_skip_surfaces": 1, "plot_li_skip_surfaces_3d": 1, "plot_li_width": 1,
                                 "findings": 1, "all": 1}
    out = dry_run(finished, edited(lambda c: c["batch_size"]["line"].update(num=7)))
    assert planned_jobs(out) == {"batch_size_line": 1, "gather_batch_size": 1, "plot_keskar_interpolation": 1,
                                 "plot_keskar_sharpness": 1, "findings": 1, "all": 1}


def test_bn_study_tables_follow_the_data_contract(finished):
    tables = finished / "results" / "tables"
    lines = pd.read_parquet(tables / "bn_study_lines.parquet")
    assert LINE_COLUMNS | {"kind", "architecture", "batch_norm", "seed"} <= set(lines.columns)
    # per model and init: 2 init->final lines of 3 points and 1 final->final of 5, on the train split
    assert lines.groupby(["model", "seed"]).size().to_dict() == {(m, s): 2 * 3 + 5 for m in ("lstm", "mlp", "mlp-bn")
                                                                for s in (0, 1)}
    assert lines.groupby("model")["batch_norm"].first().to_dict() == {"lstm": False, "mlp": False, "mlp-bn": True}
    # whole splits with stored statistics: the ends of every line are its runs' final training metrics
    for (start, end), line in lines.groupby(["start", "end"]):
        for alpha, run in ((0.0, start), (1.0, end)):
            if run == "init":
                continue
            metrics = pd.read_parquet(finished / "results" / "runs" / run / "metrics.parquet").iloc[-1]
            point = line[line["alpha"] == alpha].iloc[0]
            assert point["loss"] == pytest.approx(metrics["train_loss"], rel=1e-5), (start, end, alpha)
            assert point["accuracy"] == pytest.approx(metrics["train_acc"]), (start, end, alpha)
    metrics = pd.read_parquet(tables / "bn_study_metrics.parquet")
    lstm = metrics[metrics["model"] == "lstm"]
    assert lstm["test_perplexity"].to_numpy() == pytest.approx(np.exp(lstm["test_loss"].to_numpy()))
    # every optimizer of one init saw the same initial weights: one epoch-0 loss per model and seed
    assert metrics[metrics["epoch"] == 0].groupby(["model", "seed"])["train_loss"].nunique().eq(1).all()
    summary = pd.read_parquet(tables / "bn_study_summary.parquet")
    assert set(summary["model"]) == {"lstm", "mlp", "mlp-bn"} and summary["pair_lines"].eq(2).all()
    assert summary["local_maxima_mean"].ge(0).all() and summary["final_loss_spread"].ge(0).all()
    assert summary.set_index("model")["final_test_perplexity_mean"].notna().to_dict() == {
        "lstm": True, "mlp": False, "mlp-bn": False}


def test_changing_a_bn_study_line_reruns_only_the_lines(finished):
    out = dry_run(finished, edited(lambda c: c["bn_study"]["final_final"].update(num=7)))
    assert planned_jobs(out) == {"bn_study_lines": 6, "gather_bn_study": 1, "plot_table2_bn_lines": 1,
                                 "plot_fig8_bn_minima": 1, "findings": 1, "all": 1}


def test_bad_config_stops_before_any_job(tmp_path):
    bad = edited(lambda c: (c["optimizers"]["sgd"].update(algorithm="sgd2"),
                            c["optimizer_study"].update(models=["mlp", "resnet"])))
    res = snakemake(tmp_path, config=bad)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "optimizers.sgd.algorithm: 'sgd2' is not allowed; allowed values: 'sgd', 'adagrad'" in out
    assert not (tmp_path / "results").exists()
