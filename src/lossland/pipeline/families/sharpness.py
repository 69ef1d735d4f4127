"""Sharpness against training choices and architecture: the review's batch-size (Keskar et al.)
and skip-connection (Li et al.) experiments, on the surfaces and Hessians we already compute.

Two sections, each training runs of its own (in the shared run table, so a run asked for
twice is trained once):

* ``batch_size``: one model from one init trained with each batch of ``batches`` (a batch
  size and its learning rate; the first is the small batch). Every run sees the same images
  in the same order each epoch (:class:`lossland.data.DeviceBatches` draws the order from
  the data seed and the epoch only). At each solution the Hessian report
  (:func:`lossland.curvature.hessian_report`: top eigenvalue, trace, ε-sharpness); the
  1-D line from the first solution to each other (:func:`lossland.interpolate`) on every
  split of ``splits``.
* ``architecture``: each model of ``models`` (ResNets with and without skip connections,
  at several depths and widths) trained by one optimizer; a filter-normalised random plane
  around each solution (:func:`lossland.surface`, sharded by whole grid rows),
  Li et al.'s convexity map ``|λ_min/λ_max|`` on a coarse grid of that plane
  (:func:`lossland.convexity_map`) and the Hessian report at the centre.

Rules: ``workflow/rules/sharpness.smk``; tables ``batch_size_solutions``,
``batch_size_interpolation``, ``architecture_solutions``, ``architecture_surfaces``,
``architecture_convexity``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import paths
from .. import runs as R
from ..family import Config, Figure
from ..tables import with_ids
from . import hessian as H
from . import landscape as L

NAME = "sharpness"
SECTIONS = ("batch_size", "architecture")
RUN_SECTIONS = SECTIONS
CATEGORY = "Sharpness, batch size and architecture (Keskar et al.; Li et al.)"
WILDCARDS: dict[str, str] = {}
#: the tables of one Hessian job (those of the hessian family's points)
HESSIAN_TABLES = H.POINT_TABLES
BATCH_TABLES = ("batch_size_solutions", "batch_size_interpolation")
ARCH_TABLES = ("architecture_solutions", "architecture_surfaces", "architecture_convexity")
#: columns the solutions tables take from each run's last metrics row and from its Hessian summary
METRIC_COLUMNS = ("train_loss", "train_acc", "test_loss", "test_acc", "dist_from_init", "diverged")
HESSIAN_COLUMNS = ("top_eigenvalue", "bottom_eigenvalue", "trace", "epsilon_sharpness", "negative_fraction",
                   "n_params")

FIGURES = {
    "keskar_interpolation": Figure("sharpness.batch_interpolation", ("batch_size_interpolation",),
                                   section="batch_size"),
    "keskar_sharpness": Figure("sharpness.batch_sharpness", ("batch_size_solutions",), section="batch_size"),
    "li_skip_surfaces": Figure("sharpness.skip_surfaces", ("architecture_surfaces", "architecture_solutions"),
                               section="architecture"),
    "li_skip_surfaces_3d": Figure("sharpness.skip_surfaces_3d", ("architecture_surfaces", "architecture_solutions"),
                                  section="architecture"),
    "li_convexity": Figure("sharpness.convexity_maps", ("architecture_convexity", "architecture_solutions"),
                           section="architecture"),
    "li_width": Figure("sharpness.width_surfaces", ("architecture_surfaces", "architecture_solutions"),
                       section="architecture"),
}


# --------------------------------------------------------------------------- config


def _training(config: Config, section: str) -> dict[str, Any]:
    training = R.training_settings(config, config[section])
    training["checkpoint_epochs"] = R.checkpoint_epochs(training)
    return training


def batch_run_name(model: str, optimizer: str, lr: float, batch_size: int, seed: int) -> str:
    """``<model>_<optimizer>-lr<lr>-bs<batch>_init<seed>``: the batch size is part of the name."""
    return f"{model}_{optimizer}-lr{R.lr_tag(lr)}-bs{int(batch_size)}_init{int(seed)}"


def _batch_specs(config: Config) -> list[dict[str, Any]]:
    cfg = config["batch_size"]
    out = []
    for batch in cfg["batches"]:
        training = dict(_training(config, "batch_size"), batch_size=int(batch["batch_size"]))
        spec = R.train_spec(config, cfg["dataset"], cfg["model"], cfg["optimizer"], float(batch["lr"]),
                            cfg["init_seed"], cfg["data_seed"], training)
        spec["run"] = batch_run_name(cfg["model"], cfg["optimizer"], batch["lr"], batch["batch_size"],
                                     cfg["init_seed"])
        out.append(spec)
    return out


def _architecture_specs(config: Config) -> list[dict[str, Any]]:
    cfg = config["architecture"]
    training = _training(config, "architecture")
    lr = R.learning_rate(config["optimizers"][cfg["optimizer"]])
    return [R.train_spec(config, cfg["dataset"], m, cfg["optimizer"], lr, cfg["init_seed"], cfg["data_seed"], training)
            for m in cfg["models"]]


def section_specs(config: Config, section: str) -> list[dict[str, Any]]:
    """The run specs of ``section`` (``batch_size`` in the order of its batches)."""
    if not config.get(section):
        return []
    return _batch_specs(config) if section == "batch_size" else _architecture_specs(config)


def runs(config: Config) -> list[tuple[str, list[dict[str, Any]]]]:
    return [(s, section_specs(config, s)) for s in SECTIONS if config.get(s)]


def section_of(config: Config, run: str) -> str:
    for section in SECTIONS:
        if any(s["run"] == run for s in section_specs(config, section)):
            return section
    raise KeyError(f"run {run!r} belongs to neither batch_size nor architecture")


def _check_common(config: Config, section: str, models: list[str]) -> list[str]:
    cfg = config[section]
    problems = R.undefined_refs(f"{section}.dataset", [cfg["dataset"]], config["datasets"], "dataset")
    problems += R.undefined_refs(f"{section}.{'model' if section == 'batch_size' else 'models'}", models,
                                 config["models"], "model")
    problems += R.undefined_refs(f"{section}.optimizer", [cfg["optimizer"]], config["optimizers"], "optimizer")
    if problems:
        return problems
    problems += R.check_training(config, section, cfg)
    problems += R.check_models_fit_data(config, section, {"dataset": cfg["dataset"], "models": models})
    ds = config["datasets"][cfg["dataset"]]
    for key, splits in ((f"{section}.splits", cfg.get("splits") or []),
                        (f"{section}.hessian.split", [(cfg.get("hessian") or {}).get("split", "train")])):
        if "val" in splits and not ds.get("val_size"):
            problems.append(f"{key}: 'val' needs datasets.{cfg['dataset']}.val_size; allowed: train, test")
    settings = (cfg.get("hessian") or {}).get("settings") or {}
    method = settings.get("trace_method", "deflated")
    least = {"deflated": 2, "hutch++": 3}.get(method, 1)
    if settings.get("trace_probes", least) < least:
        problems.append(f"{section}.hessian.settings.trace_probes: {settings['trace_probes']} is too few for "
                        f"{method}; allowed: {least} or more")
    return problems


def check(config: Config) -> list[str]:
    problems: list[str] = []
    cfg = config.get("batch_size")
    if cfg:
        problems += _check_common(config, "batch_size", [cfg["model"]])
        sizes = [int(b["batch_size"]) for b in cfg["batches"]]
        if len(set(sizes)) != len(sizes):
            problems.append(f"batch_size.batches: batch sizes {sizes} repeat; allowed: distinct batch sizes")
        train = (config["datasets"].get(cfg["dataset"]) or {}).get("train_size")
        for i, b in enumerate(cfg["batches"]):
            if train and int(b["batch_size"]) > int(train):
                problems.append(f"batch_size.batches[{i}].batch_size: {b['batch_size']} is more than the "
                                f"{train} training images of {cfg['dataset']}; allowed: 1..{train}")
        if R.training_settings(config, cfg).get("drop_last"):
            problems.append("batch_size.training.drop_last: true drops a different tail of every epoch at each "
                            "batch size, so the runs would not see the same images; allowed: false")
    cfg = config.get("architecture")
    if cfg:
        problems += _check_common(config, "architecture", list(cfg["models"]))
    return problems


def tables(config: Config) -> list[str]:
    return (list(BATCH_TABLES) if config.get("batch_size") else []) + \
        (list(ARCH_TABLES) if config.get("architecture") else [])


def scale(config: Config, section: str) -> str:
    """The caption's scale line of a section (:func:`lossland.pipeline.captions.scale`)."""
    from ..captions import SOURCES, _images, describe_model

    cfg = config[section]
    ds = config["datasets"][cfg["dataset"]]
    training = R.training_settings(config, cfg)
    data = f"{cfg['dataset']} ({SOURCES.get(ds['source'], ds['source'])}: {_images(ds)})"
    opt = config["optimizers"][cfg["optimizer"]]
    if section == "batch_size":
        batches = ", ".join(f"batch {b['batch_size']} at lr {b['lr']:g}" for b in cfg["batches"])
        return (f"{data}; {cfg['model']}: {describe_model(config['models'][cfg['model']])}; {cfg['optimizer']} "
                f"({opt['algorithm']}) {training['epochs']} epochs, {batches}; Hessian on {cfg['hessian']['samples']} "
                f"{cfg['hessian']['split']} images; the line on "
                + (f"{cfg['samples']} images" if cfg["samples"] else "the whole split") + " of "
                + "/".join(cfg["splits"]))
    plane = cfg["plane"]
    conv = cfg["convexity"]
    return (f"{data}; " + "; ".join(f"{m}: {describe_model(config['models'][m])}" for m in cfg["models"])
            + f"; {cfg['optimizer']} ({opt['algorithm']}, lr {R.learning_rate(opt):g}) {training['epochs']} epochs, "
            f"batch {training['batch_size']}; {plane['x']['num']}×{plane['y']['num']} {plane['normalization']}-"
            f"normalised random planes on " + (f"{cfg['samples']}" if cfg["samples"] else "all")
            + f" {cfg['splits'][0]} images; convexity maps {conv['num']}×{conv['num']} on {conv['samples']} images")


# --------------------------------------------------------------------------- ids


def model_ids(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What a model is, as columns: ``arch, depth, width, skip, batch_norm`` (the builders' defaults)."""
    arch = spec["arch"]
    depth = spec.get("depth", {"resnet": 20, "nin": 3, "vgg": 16}.get(arch, len(spec.get("hidden") or ()) + 1))
    return {"arch": arch, "depth": int(depth), "width": float(spec.get("width", 1.0)),
            "skip": bool(spec.get("skip", True)) if arch == "resnet" else False,
            "batch_norm": bool(spec.get("batch_norm", arch != "mlp"))}


def run_columns(spec: Mapping[str, Any], section: str) -> dict[str, Any]:
    """The identifying columns of a run's rows in this family's tables."""
    ids = R.run_ids(spec)
    if section == "batch_size":
        return ids | {"batch_size": int(spec["training"]["batch_size"]), "epochs": int(spec["training"]["epochs"])}
    return ids | model_ids(spec["model_spec"])


def _last(spec: Mapping[str, Any]) -> int:
    return int(spec["training"]["epochs"])


# --------------------------------------------------------------------------- jobs and their files


def job_dir(run: str) -> str:
    return f"{paths.RESULTS}/sharpness/{run}"


def hessian_path(run: str, table: str) -> str:
    """One run's Hessian report table (``eigenvalues``, ``density`` or ``summary``) at its last epoch."""
    return f"{job_dir(run)}/hessian_{table}.parquet"


def line_path(run: str) -> str:
    """The line from the small-batch solution to run ``run``'s."""
    return f"{job_dir(run)}/line_from_small_batch.parquet"


def convexity_path(run: str) -> str:
    return f"{job_dir(run)}/convexity.parquet"


def shard_path(run: str, shard: int | str, shards: int | str) -> str:
    return f"{job_dir(run)}/surface/shard{shard}-of{shards}.parquet"


def plane_settings(config: Config) -> dict[str, Any]:
    """The ``architecture`` plane in the shape of the landscape family's ``random_plane`` settings."""
    cfg = config["architecture"]
    plane = cfg["plane"]
    return {"random_plane": {"x": plane["x"], "y": plane["y"], "normalization": plane["normalization"],
                             "seeds": list(plane["seeds"])},
            "splits": list(cfg["splits"]), "samples": cfg["samples"], "bn": cfg["bn"],
            "shard_points": cfg["shard_points"]}


def shards(config: Config) -> int:
    return L.shard_count("random_plane", plane_settings(config), plane_settings(config)["shard_points"])


def small_batch_run(config: Config) -> str:
    return section_specs(config, "batch_size")[0]["run"]


def hessian_files(config: Config, section: str) -> list[str]:
    return [hessian_path(s["run"], "summary") for s in section_specs(config, section)]


def metrics_files(config: Config, section: str) -> list[str]:
    return [paths.run_metrics(s["run"]) for s in section_specs(config, section)]


def gather_inputs(config: Config, section: str) -> dict[str, list[str]]:
    """Inputs of ``gather_<section>``: every run's metrics and Hessian summary, and the section's lines
    (batch_size) or surface shards and convexity maps (architecture)."""
    out = {"metrics": metrics_files(config, section), "hessian": hessian_files(config, section)}
    specs = section_specs(config, section)
    if section == "batch_size":
        out["lines"] = [line_path(s["run"]) for s in specs[1:]]
    else:
        n = shards(config)
        out["surfaces"] = [shard_path(s["run"], i, n) for s in specs for i in range(n)]
        out["convexity"] = [convexity_path(s["run"]) for s in specs]
    return out


def hessian_params(config: Config, run: str) -> dict[str, Any]:
    """``analysis`` (split, samples, settings) of run ``run``'s Hessian job, as rule hessian_point's script reads it."""
    cfg = config[section_of(config, run)]["hessian"]
    return {"split": cfg["split"], "samples": cfg["samples"], "settings": dict(cfg["settings"])}


def line_params(config: Config, run: str, run_table: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    cfg = config["batch_size"]
    small = run_table[small_batch_run(config)]
    large = run_table[run]
    return {"line": dict(cfg["line"]), "splits": list(cfg["splits"]), "samples": cfg["samples"], "bn": cfg["bn"],
            "ids": {"dataset": small["dataset"], "model": small["model"], "seed": int(small["init_seed"]),
                    "start": small["run"], "end": large["run"],
                    "batch_size_start": int(small["training"]["batch_size"]),
                    "batch_size_end": int(large["training"]["batch_size"])},
            "epochs": [_last(small), _last(large)]}


def surface_job_params(config: Config, run: str, run_table: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``p`` of one surface shard, in the shape the landscape family's job script reads: a
    ``random_plane`` job around the run's last weights with the section's plane settings."""
    spec = run_table[run]
    return {"kind": "random_plane", "settings": plane_settings(config),
            "job": {"name": run, "ids": run_columns(spec, "architecture"),
                    "weights": {"origin": {"run": run, "epoch": _last(spec)}}}}


def convexity_params(config: Config, run: str, run_table: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    cfg = config["architecture"]
    spec = run_table[run]
    return {"plane": dict(cfg["plane"]), "convexity": dict(cfg["convexity"]), "split": cfg["splits"][0],
            "epoch": _last(spec), "ids": run_columns(spec, "architecture")}


def convexity_axes(plane: Mapping[str, Any], num: int) -> tuple[list[float], list[float]]:
    """The convexity grid: ``num`` points per axis over the plane's extent (the centre for ``num`` 1)."""
    import numpy as np

    def one(ax):
        if int(num) == 1:
            return [0.0]
        return [float(v) for v in np.linspace(float(ax["start"]), float(ax["stop"]), int(num))]

    return one(plane["x"]), one(plane["y"])


# --------------------------------------------------------------------------- one job (the scripts call these)


def evaluate_line(model, small: Mapping, large: Mapping, data: Mapping[str, tuple], params: Mapping[str, Any]):
    """The line ``small + α(large − small)`` on every split: ``start, end, alpha, split, loss, accuracy``."""
    import pandas as pd

    from ... import landscape as LS

    frames = []
    for split in params["splits"]:
        df = LS.interpolate(model, small, large, L.axis(params["line"]), data[split], bn=params.get("bn", "stored"))
        df.insert(df.columns.get_loc("loss"), "split", split)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out = out[[c for c in out.columns if c not in params["ids"]]]
    return with_ids(out, params["ids"])


def evaluate_convexity(model, origin: Mapping, data: tuple, params: Mapping[str, Any], progress=None):
    """Li et al.'s convexity map of one solution on the coarse grid of its random plane."""
    from ... import landscape as LS
    from ...curvature import convexity_map

    plane, conv = params["plane"], params["convexity"]
    dirs = [LS.random_direction(model, plane["normalization"], seed=s, weights=origin) for s in plane["seeds"]]
    xs, ys = convexity_axes(plane, conv["num"])
    table = convexity_map(model, origin, dirs[0], dirs[1], xs, ys, data, tol=conv["tol"], max_iter=conv["max_iter"],
                          progress=progress)
    table.insert(0, "split", params["split"])
    return with_ids(table, params["ids"])


# --------------------------------------------------------------------------- gathering


def solutions_table(metrics_files: Sequence[str], hessian_files: Sequence[str], ids: Sequence[Mapping[str, Any]]):
    """One row per run: its ids, its last metrics row (:data:`METRIC_COLUMNS`), its Hessian summary
    (:data:`HESSIAN_COLUMNS`) and the centre's ``convexity_ratio`` ``|λ_min/λ_max|``."""
    import pandas as pd

    from ... import io
    from ...curvature import convexity_ratio

    rows = []
    for m, h, run_ids in zip(metrics_files, hessian_files, ids):
        metrics = io.read_parquet(m).sort_values("epoch")
        last = metrics.iloc[-1]
        summary = io.read_parquet(h).iloc[0]
        row = dict(run_ids)
        row["epoch"] = int(last["epoch"])
        row.update({c: (bool(last[c]) if c == "diverged" else float(last[c])) for c in METRIC_COLUMNS if c in last})
        row.update({c: summary[c] for c in HESSIAN_COLUMNS})
        row["convexity_ratio"] = convexity_ratio(float(summary["bottom_eigenvalue"]), float(summary["top_eigenvalue"]))
        rows.append(row)
    return pd.DataFrame(rows)


def _check_surfaces(frame, settings: Mapping[str, Any]):
    """Every run's shards together cover its grid exactly once per split."""
    import pandas as pd

    parts = [L.gather_shards(part, settings, "random_plane") for _, part in frame.groupby("run", sort=False)]
    return pd.concat(parts, ignore_index=True) if parts else frame


def gather_tables(section: str, inputs: Mapping[str, Sequence[str]], outputs: Mapping[str, str],
                  ids: Sequence[Mapping[str, Any]], settings: Mapping[str, Any] | None = None,
                  log: str | None = None) -> None:
    """Rule ``gather_<section>``: the solutions table and the section's line (batch_size) or surface and
    convexity (architecture) tables."""
    from functools import partial

    from ... import io
    from ..tables import gather

    lines = []
    solutions = solutions_table(inputs["metrics"], inputs["hessian"], ids)
    out = outputs[f"{section}_solutions"]
    io.write_parquet(solutions, out, io.provenance({"metrics": list(inputs["metrics"]),
                                                    "hessian": list(inputs["hessian"])}))
    lines.append(f"{out}: {len(solutions)} runs\n")
    if section == "batch_size":
        table = gather(inputs["lines"], outputs["batch_size_interpolation"])
        lines.append(f"{outputs['batch_size_interpolation']}: {len(table)} rows from {len(inputs['lines'])} lines\n")
    else:
        table = gather(inputs["surfaces"], outputs["architecture_surfaces"],
                       partial(_check_surfaces, settings=settings))
        lines.append(f"{outputs['architecture_surfaces']}: {len(table)} rows from {len(inputs['surfaces'])} shards\n")
        table = gather(inputs["convexity"], outputs["architecture_convexity"])
        lines.append(f"{outputs['architecture_convexity']}: {len(table)} rows\n")
    if log:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        Path(log).write_text("".join(lines))


# --------------------------------------------------------------------------- measures (findings, captions)


def batch_ends(solutions):
    """The smallest- and the largest-batch rows of ``batch_size_solutions``."""
    ordered = solutions.sort_values("batch_size")
    return ordered.iloc[0], ordered.iloc[-1]


def skip_pairs(solutions):
    """``{depth: {True: row with skips, False: row without}}`` for the ResNet depths run with both
    variants (at the smallest width that has both)."""
    out: dict[int, dict[bool, Any]] = {}
    res = solutions[solutions["arch"] == "resnet"]
    for depth, part in res.groupby("depth"):
        for _, rows in sorted(part.groupby("width"), key=lambda item: item[0]):
            both = {bool(s): r.iloc[0] for s, r in rows.groupby("skip")}
            if len(both) == 2:
                out[int(depth)] = both
                break
    return dict(sorted(out.items()))


def width_groups(solutions):
    """Groups of runs whose models differ only in width (2 or more widths), sorted by width:
    ``{(arch, depth, skip, batch_norm): rows}``."""
    out = {}
    for key, part in solutions.groupby(["arch", "depth", "skip", "batch_norm"]):
        if part["width"].nunique() >= 2:
            out[tuple(key)] = part.sort_values("width")
    return out


def surface_nonconvexity(surface, split: str = "train") -> float:
    """The share of the plane's interior points whose 2-D finite-difference Hessian of the loss
    is not positive definite (a measure of how far from a bowl the surface is; exactly flat
    directions count as not convex). NaN if the rows are not one complete grid, if it has no
    interior point, or if a point diverged."""
    import numpy as np

    part = surface[surface["split"] == split].sort_values(["x", "y"])
    xs, ys = np.unique(part["x"].to_numpy(float)), np.unique(part["y"].to_numpy(float))
    if len(xs) < 3 or len(ys) < 3 or len(part) != len(xs) * len(ys):   # not one complete grid
        return math.nan
    z = part["loss"].to_numpy(float).reshape(len(xs), len(ys))
    if not np.isfinite(z).all():
        return math.nan
    hx, hy = xs[1] - xs[0], ys[1] - ys[0]
    fxx = (z[2:, 1:-1] - 2 * z[1:-1, 1:-1] + z[:-2, 1:-1]) / hx ** 2
    fyy = (z[1:-1, 2:] - 2 * z[1:-1, 1:-1] + z[1:-1, :-2]) / hy ** 2
    fxy = (z[2:, 2:] - z[2:, :-2] - z[:-2, 2:] + z[:-2, :-2]) / (4 * hx * hy)
    convex = (fxx > 0) & (fxx * fyy - fxy ** 2 > 0)
    return float(1.0 - convex.mean())


def surface_of(surfaces, run: str):
    return surfaces[surfaces["run"] == run]


def mean_map_ratio(convexity, run: str) -> float:
    import numpy as np

    v = convexity.loc[convexity["run"] == run, "convexity_ratio"].to_numpy(float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


# --------------------------------------------------------------------------- findings


def _large_batch_sharper(tables: Mapping[str, Any], config: Config):
    from .. import findings as FD

    s = tables["batch_size_solutions"]
    if len(s) < 2:
        return FD.not_run("needs two batch sizes")
    small, large = batch_ends(s)
    if not all(math.isfinite(float(r[c])) for r in (small, large) for c in ("top_eigenvalue", "epsilon_sharpness")):
        return FD.not_run("a run diverged (no finite top eigenvalue or ε-sharpness)")
    top = float(large["top_eigenvalue"] / small["top_eigenvalue"])
    eps = float(large["epsilon_sharpness"] / small["epsilon_sharpness"])
    return FD.Measured(top, FD.verdict(top > 1 and eps > 1),
                       f"batch {int(small['batch_size'])} vs {int(large['batch_size'])}: top eigenvalue "
                       f"{small['top_eigenvalue']:.3g} vs {large['top_eigenvalue']:.3g}, ε-sharpness "
                       f"{small['epsilon_sharpness']:.3g} vs {large['epsilon_sharpness']:.3g} (ratio {eps:.3g})")


def _large_batch_worse(tables: Mapping[str, Any], config: Config):
    from .. import findings as FD

    s = tables["batch_size_solutions"]
    if len(s) < 2:
        return FD.not_run("needs two batch sizes")
    small, large = batch_ends(s)
    if bool(small.get("diverged", False)) or bool(large.get("diverged", False)):
        return FD.not_run("a run diverged")
    gap = float(small["test_acc"] - large["test_acc"])
    return FD.Measured(gap, FD.verdict(gap > 0),
                       f"test accuracy {small['test_acc']:.3f} (batch {int(small['batch_size'])}) vs "
                       f"{large['test_acc']:.3f} (batch {int(large['batch_size'])}); train "
                       f"{small['train_acc']:.3f} vs {large['train_acc']:.3f}")


def _skips_convex(tables: Mapping[str, Any], config: Config):
    """The centre's |λ_min/λ_max| (the solution's Hessian report) without skips minus with, at the
    deepest depth run with both; every depth's centre and map-mean ratios in the detail."""
    from .. import findings as FD

    s, conv = tables["architecture_solutions"], tables["architecture_convexity"]
    pairs = skip_pairs(s)
    if not pairs:
        return FD.not_run("needs a ResNet with and without skip connections at one depth")
    gaps = {d: float(p[False]["convexity_ratio"] - p[True]["convexity_ratio"]) for d, p in pairs.items()}
    deepest = max(gaps)
    if not math.isfinite(gaps[deepest]):
        return FD.not_run(f"a run of depth {deepest} diverged")
    detail = "; ".join(f"depth {d}: centre {p[True]['convexity_ratio']:.3g} with skips, "
                       f"{p[False]['convexity_ratio']:.3g} without (map mean {mean_map_ratio(conv, p[True]['run']):.3g}"
                       f" vs {mean_map_ratio(conv, p[False]['run']):.3g})" for d, p in pairs.items())
    return FD.Measured(gaps[deepest], FD.verdict(gaps[deepest] > 0), detail)


def _no_skip_surfaces_rougher(tables: Mapping[str, Any], config: Config):
    from .. import findings as FD

    s, surfaces = tables["architecture_solutions"], tables["architecture_surfaces"]
    pairs = skip_pairs(s)
    if not pairs:
        return FD.not_run("needs a ResNet with and without skip connections at one depth")
    share = {d: {k: surface_nonconvexity(surface_of(surfaces, row["run"])) for k, row in p.items()}
             for d, p in pairs.items()}
    deepest = max(share)
    gap = share[deepest][False] - share[deepest][True]
    if math.isnan(gap):
        return FD.not_run("the plane needs 3 or more points per axis and finite losses")
    detail = "; ".join(f"depth {d}: {v[True]:.2f} with skips, {v[False]:.2f} without" for d, v in share.items())
    return FD.Measured(gap, FD.verdict(gap > 0), "share of non-convex points of the plane (train): " + detail)


def _wider_flatter(tables: Mapping[str, Any], config: Config):
    import numpy as np

    from .. import findings as FD

    groups = width_groups(tables["architecture_solutions"])
    if not groups:
        return FD.not_run("needs one architecture at two or more widths")
    falls, details, ratios = True, [], []
    for (arch, depth, skip, _), rows in groups.items():
        top = rows["top_eigenvalue"].to_numpy(float)
        falls &= bool(np.all(np.diff(top) < 0))
        ratios.append(float(top[-1] / top[0]))
        details.append(f"{arch}-{depth}{'' if skip or arch != 'resnet' else ' no-skip'}: " + ", ".join(
            f"×{w:g} {t:.3g}" for w, t in zip(rows["width"], top)))
    return FD.Measured(min(ratios), FD.verdict(falls), "top eigenvalue by width: " + "; ".join(details))


def _findings():
    from ..findings import Finding

    return (
        Finding("large_batch_sharper", "Large-batch training finds sharper minima", "the review (Keskar et al.)",
                "top Hessian eigenvalue of the largest batch's solution over the smallest's",
                "reproduced if above 1, with the ε-sharpness ratio above 1 as well", ("batch_size_solutions",),
                _large_batch_sharper, "batch_size"),
        Finding("large_batch_generalises_worse", "Large-batch solutions generalise worse",
                "the review (Keskar et al.)",
                "test accuracy of the smallest batch's solution minus the largest's",
                "reproduced if above 0", ("batch_size_solutions",), _large_batch_worse, "batch_size"),
        Finding("skips_keep_convexity", "Without skip connections deep nets lose local convexity",
                "the review (Li et al., Fig. 5 and the convexity map)",
                "|λ_min/λ_max| of the solution's Hessian without skips minus with skips, at the deepest depth run "
                "(the convexity maps' means in the detail)",
                "reproduced if above 0", ("architecture_solutions", "architecture_convexity"), _skips_convex,
                "architecture"),
        Finding("no_skip_surfaces_chaotic", "Without skip connections the surface of a deep net is chaotic",
                "the review (Li et al., Fig. 5)",
                "share of the random plane's points whose 2-D loss Hessian is not positive definite, without "
                "skips minus with, at the deepest depth run",
                "reproduced if above 0", ("architecture_solutions", "architecture_surfaces"),
                _no_skip_surfaces_rougher, "architecture"),
        Finding("wider_flatter", "Wider models have flatter minima", "the review (Li et al., Fig. 6)",
                "top Hessian eigenvalue of the widest model over the narrowest's (smallest over architectures)",
                "reproduced if the top eigenvalue falls with every step in width", ("architecture_solutions",),
                _wider_flatter, "architecture"),
    )


FINDINGS = _findings()
