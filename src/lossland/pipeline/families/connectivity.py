"""Mode connectivity and a walk with SGD (the review: Garipov et al. and Draxler et al.; Xing et al.).

Two sections analyse the chosen runs of one training study:

* ``curves``: for each pair of solutions (two inits of one optimizer, or two optimizers
  from one init) a curve with one bend is trained between the final weights
  (:func:`lossland.train_curve`: Bezier or polygonal chain, endpoints fixed), then
  evaluated against the straight line on every split (:func:`lossland.curve_table`:
  loss, accuracy, functional distance; BatchNorm statistics re-estimated at every
  point by default) and on the plane through both endpoints and the bend
  (:func:`lossland.plane_basis`, :func:`lossland.surface`), with the curve's
  coordinates on it (:func:`lossland.plane_coordinates`). One job per pair.
* ``walk``: from one chosen run's final weights, ``steps`` steps of SGD at each of
  ``batch_sizes`` and of full-batch gradient descent on the same images
  (:func:`lossland.walk`): the loss along every step's segment on the minibatch and
  on the walk's training images, the angle between consecutive gradients. One job
  per batch size, and one for gradient descent.

Rules: ``workflow/rules/connectivity.smk``; tables ``curve_profiles``, ``curve_plane``,
``curve_points``, ``curve_training``, ``walk_segments``, ``walk_steps``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .. import analysis, paths
from ..family import Config, Figure
from ..runs import run_ids

NAME = "connectivity"
SECTIONS = ("curves", "walk")
RUN_SECTIONS = ()
CATEGORY = "Mode connectivity and a walk with SGD"
WILDCARDS = {"pair": r"[A-Za-z0-9][A-Za-z0-9._-]*", "walk": r"[A-Za-z0-9][A-Za-z0-9._-]*"}
#: the tables of one curve job, and (prefixed ``curve_``) of the section
CURVE_TABLES = ("profiles", "plane", "points", "training")
#: the tables of one walk job, and (prefixed ``walk_``) of the section
WALK_TABLES = ("segments", "steps")
#: the share of a walk's last steps whose gradient angles and segments the captions and findings read
LATE_FRACTION = 0.5

FIGURES = {
    "curve_profiles": Figure("connectivity.curve_profiles", ("curve_profiles",)),
    "curve_plane": Figure("connectivity.curve_plane", ("curve_plane", "curve_points")),
    "sgd_walk": Figure("connectivity.sgd_walk", ("walk_segments", "walk_steps"), section="walk"),
}


# --------------------------------------------------------------------------- config


def _model(cfg: Mapping[str, Any], study: Mapping[str, Any]) -> str:
    return cfg.get("model") or study["models"][0]


def check(config: Config) -> list[str]:
    problems: list[str] = []
    for section in SECTIONS:
        found, study = analysis.check_section(config, section)
        problems += found
        if study is None:
            continue
        cfg = config[section]
        name = cfg["study"]
        if cfg.get("model") and cfg["model"] not in study["models"]:
            problems.append(f"{section}.model: {cfg['model']!r} is not one of {name}'s models; allowed: "
                            f"{', '.join(study['models'])}")
        optimizers = analysis.study_optimizers(study)
        seeds = study.get("init_seeds") or [0]
        ends = ([(f"curves.pairs[{i}].{end}", pair[end], pair["init_seeds"][j])
                 for i, pair in enumerate(cfg["pairs"]) for j, end in enumerate(("start", "end"))]
                if section == "curves" else [("walk.optimizer", cfg["optimizer"], cfg["init_seed"])])
        for key, optimizer, seed in ends:
            if optimizer not in optimizers:
                problems.append(f"{key}: {optimizer!r} is not one of {name}'s optimizers; allowed: "
                                f"{', '.join(optimizers)}")
            if seed not in seeds:
                problems.append(f"{key}: init seed {seed} is not one of {name}'s init_seeds; allowed: "
                                f"{', '.join(map(str, seeds))}")
        if section == "curves":
            for i, pair in enumerate(cfg["pairs"]):
                if pair["start"] == pair["end"] and pair["init_seeds"][0] == pair["init_seeds"][1]:
                    problems.append(f"curves.pairs[{i}]: both ends are {pair['start']} from init "
                                    f"{pair['init_seeds'][0]}; allowed: two optimizers or two init seeds")
            problems += analysis.check_split(config, "curves.splits", study, cfg["splits"])
        else:
            train_size = (config["datasets"].get(study["dataset"]) or {}).get("train_size")
            given = [v for v in (cfg.get("samples"), train_size) if v]
            samples = min(given) if given else None   # the walk takes at most the whole split
            for b in cfg["batch_sizes"]:
                if samples and b > samples:
                    problems.append(f"walk.batch_sizes: {b} is larger than the walk's {samples} training images; "
                                    f"allowed: 1 to {samples}")
    return problems


def runs(config: Config) -> list:
    return []


def tables(config: Config) -> list[str]:
    return ([f"curve_{t}" for t in CURVE_TABLES] if config.get("curves") else []) + \
        ([f"walk_{t}" for t in WALK_TABLES] if config.get("walk") else [])


# --------------------------------------------------------------------------- jobs


def _end_name(optimizer: str, seed: int) -> str:
    return f"{optimizer}-init{int(seed)}"


def pair_name(model: str, pair: Mapping[str, Any]) -> str:
    """``<model>_<start>-init<s>_<end>-init<s>``: the ``{pair}`` wildcard of a curve job."""
    s0, s1 = pair["init_seeds"]
    return f"{model}_{_end_name(pair['start'], s0)}_{_end_name(pair['end'], s1)}"


def _chosen_run(run_table: Mapping[str, Mapping[str, Any]], chosen: Sequence[str], model: str, optimizer: str,
                seed: int) -> str:
    for run in chosen:
        spec = run_table[run]
        if (spec["model"], spec["optimizer"], int(spec["init_seed"])) == (model, optimizer, int(seed)) \
                and spec.get("kind") != "switch":
            return run
    raise KeyError(f"no chosen run of {model} with {optimizer} from init {seed}")


def curve_jobs(config: Config, run_table: Mapping[str, Mapping[str, Any]], chosen: Sequence[str]
               ) -> dict[str, dict[str, Any]]:
    """``{pair name: {"start": run, "end": run}}``: the chosen runs at both ends of every pair."""
    cfg = config["curves"]
    model = _model(cfg, config[cfg["study"]])
    return {pair_name(model, p): {"start": _chosen_run(run_table, chosen, model, p["start"], p["init_seeds"][0]),
                                  "end": _chosen_run(run_table, chosen, model, p["end"], p["init_seeds"][1])}
            for p in cfg["pairs"]}


def curve_pair_names(config: Config) -> list[str]:
    """Every pair's name, without the run table (what a job's wildcard may be)."""
    cfg = config["curves"]
    model = _model(cfg, config[cfg["study"]])
    return [pair_name(model, p) for p in cfg["pairs"]]


def walk_names(config: Config) -> list[str]:
    """``<model>_<optimizer>-init<s>_b<batch>`` per batch size, and ``..._gd`` for gradient descent."""
    cfg = config["walk"]
    base = f"{_model(cfg, config[cfg['study']])}_{_end_name(cfg['optimizer'], cfg['init_seed'])}"
    return [f"{base}_b{int(b)}" for b in cfg["batch_sizes"]] + ([f"{base}_gd"] if cfg.get("gd", True) else [])


def walk_batch_size(walk: str) -> int | None:
    """The SGD batch size of a :func:`walk_names` name; ``None`` for the gradient-descent walk."""
    return None if walk.endswith("_gd") else int(walk.rsplit("_b", 1)[1])


def walk_run(config: Config, run_table: Mapping[str, Mapping[str, Any]], chosen: Sequence[str]) -> str:
    cfg = config["walk"]
    return _chosen_run(run_table, chosen, _model(cfg, config[cfg["study"]]), cfg["optimizer"], cfg["init_seed"])


def final_weights(run_table: Mapping[str, Mapping[str, Any]], run: str) -> str:
    return paths.weights(run_table[run], int(run_table[run]["training"]["epochs"]))


def curve_path(pair: str, table: str) -> str:
    return f"{paths.RESULTS}/connectivity/curves/{pair}/{table}.parquet"


def walk_path(walk: str, table: str) -> str:
    return f"{paths.RESULTS}/connectivity/walk/{walk}/{table}.parquet"


def curve_inputs(config: Config, run_table: Mapping[str, Mapping[str, Any]], chosen: Sequence[str],
                 pair: str) -> dict[str, str]:
    job = curve_jobs(config, run_table, chosen)[pair]
    return {"data": paths.prepared_data(run_table[job["start"]]["dataset"]),
            "start": final_weights(run_table, job["start"]), "end": final_weights(run_table, job["end"])}


def curve_params(config: Config, run_table: Mapping[str, Mapping[str, Any]], chosen: Sequence[str],
                 pair: str) -> dict[str, Any]:
    """What one curve job depends on besides its weights: its ends' ids and the section's settings."""
    cfg = config["curves"]
    job = curve_jobs(config, run_table, chosen)[pair]
    keys = ("kind", "epochs", "lr", "momentum", "weight_decay", "batch_size", "seed", "points", "splits", "samples",
            "bn", "plane")
    return {"pair": pair, "start": run_ids(run_table[job["start"]]), "end": run_ids(run_table[job["end"]]),
            "epochs_end": int(run_table[job["start"]]["training"]["epochs"]),
            "settings": {k: cfg[k] for k in keys}}


def walk_params(config: Config, run_table: Mapping[str, Mapping[str, Any]], chosen: Sequence[str],
                walk: str) -> dict[str, Any]:
    """What one walk job depends on: the run it starts from, its method and batch, the steps."""
    cfg = config["walk"]
    run = walk_run(config, run_table, chosen)
    spec = run_table[run]
    optimizer = spec["optimizer_spec"]
    batch_size = walk_batch_size(walk)
    return {"walk": walk, "run": run_ids(spec), "epoch": int(spec["training"]["epochs"]),
            "full_batch": batch_size is None, "batch_size": batch_size,
            "lr": float(cfg["lr"] if cfg.get("lr") is not None else optimizer["lr"]),
            "momentum": float(cfg["momentum"]), "steps": int(cfg["steps"]), "samples": cfg.get("samples"),
            "segment_points": int(cfg["segment_points"]), "seed": int(cfg["seed"])}


def curve_files(config: Config) -> dict[str, list[str]]:
    """``{table: [file of every pair]}``: the inputs of rule ``gather_curves`` (none without the section)."""
    if not config.get("curves"):
        return {}
    names = curve_pair_names(config)
    return {t: [curve_path(p, t) for p in names] for t in CURVE_TABLES}


def walk_files(config: Config) -> dict[str, list[str]]:
    """``{table: [file of every walk]}``: the inputs of rule ``gather_walk`` (none without the section)."""
    if not config.get("walk"):
        return {}
    names = walk_names(config)
    return {t: [walk_path(w, t) for w in names] for t in WALK_TABLES}


# --------------------------------------------------------------------------- one job


def _ids(params: Mapping[str, Any]) -> dict[str, Any]:
    start, end = params["start"], params["end"]
    return {"pair": params["pair"], "model": start["model"], "start_run": start["run"], "end_run": end["run"],
            "start_optimizer": start["optimizer"], "end_optimizer": end["optimizer"],
            "start_seed": start["seed"], "end_seed": end["seed"], "kind": params["settings"]["kind"]}


def _plane_grid(coords, spec: Mapping[str, Any]):
    """The plane's grid: the box around ``θ0, θb, θ1`` grown by ``margin`` of its larger side."""
    import numpy as np

    anchors = coords[coords["point"] != "curve"]
    lo_x, hi_x = float(anchors["x"].min()), float(anchors["x"].max())
    lo_y, hi_y = min(0.0, float(anchors["y"].min())), float(anchors["y"].max())
    side = max(hi_x - lo_x, hi_y - lo_y, 1e-12)
    m = float(spec["margin"]) * side
    num = int(spec["num"])
    return np.linspace(lo_x - m, hi_x + m, num), np.linspace(lo_y - m, hi_y + m, num)


def run_curve(model, start: Mapping, end: Mapping, train_data: tuple, splits: Mapping[str, tuple],
              params: Mapping[str, Any], device=None, progress: bool = False) -> dict[str, Any]:
    """One curve job: train the bend, then the curve against the line on every split and the
    plane through the three points (on the first split). Returns ``{table: DataFrame}``."""
    import numpy as np

    from ...landscape import curve_table, plane_basis, plane_coordinates, surface, train_curve
    from ...landscape.curves import _bn_mode
    from ..tables import with_ids

    s = params["settings"]
    curve, history = train_curve(model, start, end, train_data, kind=s["kind"], epochs=int(s["epochs"]),
                                 lr=float(s["lr"]), momentum=float(s["momentum"]),
                                 weight_decay=float(s["weight_decay"]), batch_size=int(s["batch_size"]),
                                 seed=int(s["seed"]), device=device, progress=progress)
    ts = np.linspace(0.0, 1.0, int(s["points"]))
    bn = _bn_mode(model, s["bn"])
    profiles = curve_table(model, curve, ts, splits, bn=bn)
    coords = plane_coordinates(model, curve, ts)
    u, v = plane_basis(model, curve)
    xs, ys = _plane_grid(coords, s["plane"])
    plane_split = s["splits"][0]
    plane = surface(model, curve.start, u, v, xs, ys, splits[plane_split], bn=bn)
    plane.insert(2, "split", plane_split)
    ids = _ids(params)
    return {"profiles": with_ids(profiles.assign(bn=bn), ids), "plane": with_ids(plane, ids),
            "points": with_ids(coords, ids), "training": with_ids(history, ids)}


def run_walk(model, data: tuple, params: Mapping[str, Any], progress: bool = False) -> dict[str, Any]:
    """One walk job (:func:`lossland.walk` with the job's settings). Returns ``{table: DataFrame}``."""
    from ...walking import walk
    from ..tables import with_ids

    result = walk(model, data, steps=params["steps"], batch_size=params["batch_size"] or len(data[1]),
                  lr=params["lr"], momentum=params["momentum"], full_batch=params["full_batch"],
                  segment_points=params["segment_points"], seed=params["seed"], progress=progress)
    run = params["run"]
    ids = {"walk": params["walk"], "run": run["run"], "model": run["model"], "optimizer": run["optimizer"],
           "seed": run["seed"], "from_epoch": params["epoch"]}
    return {"segments": with_ids(result.segments, ids), "steps": with_ids(result.steps, ids)}


# --------------------------------------------------------------------------- measures


def pair_barriers(profiles, split: str = "train"):
    """Per pair: the loss barrier (:func:`lossland.barrier`, above the chord between the ends)
    along the line and along the trained curve on ``split``, and the lowest accuracy on each.
    Columns ``pair, start_optimizer, end_optimizer, start_seed, end_seed, line_barrier,
    curve_barrier, line_min_accuracy, curve_min_accuracy``."""
    import pandas as pd

    from ...landscape.curves import barrier

    rows = []
    part = profiles[profiles["split"] == split]
    for pair, g in part.groupby("pair", sort=False):
        line, curve = g[g["path"] == "line"], g[g["path"] == "curve"]
        first = g.iloc[0]
        rows.append({"pair": pair, "start_optimizer": first["start_optimizer"],
                     "end_optimizer": first["end_optimizer"], "start_seed": int(first["start_seed"]),
                     "end_seed": int(first["end_seed"]), "line_barrier": barrier(line),
                     "curve_barrier": barrier(curve), "line_min_accuracy": float(line["accuracy"].min()),
                     "curve_min_accuracy": float(curve["accuracy"].min())})
    return pd.DataFrame(rows)


def late_steps(steps, fraction: float = LATE_FRACTION):
    """The last ``fraction`` of every walk's steps (at least one)."""
    import math

    import pandas as pd

    parts = []
    for _, g in steps.groupby("walk", sort=False):
        g = g.sort_values("step")
        parts.append(g.tail(max(1, math.ceil(fraction * len(g)))))
    return pd.concat(parts, ignore_index=True) if parts else steps.iloc[:0]


def walk_summary(steps, fraction: float = LATE_FRACTION):
    """Per walk, over its last ``fraction`` of steps: ``walk, method, batch_size, lr, steps,
    mean_angle, interior_batch, interior_full`` (the shares of steps whose segment has an
    interior minimum on the minibatch and on the walk's images), ``mean_step_length``."""
    import pandas as pd

    rows = []
    for walk, g in late_steps(steps, fraction).groupby("walk", sort=False):
        first = g.iloc[0]
        rows.append({"walk": walk, "method": first["method"], "batch_size": int(first["batch_size"]),
                     "lr": float(first["lr"]), "steps": len(g), "mean_angle": float(g["grad_angle"].mean()),
                     "interior_batch": float(g["interior_minimum_batch"].astype(float).mean()),
                     "interior_full": float(g["interior_minimum_full"].astype(float).mean()),
                     "mean_step_length": float(g["step_length"].mean())})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- findings

#: a pair's straight line "has a barrier" above this many nats of training loss
BARRIER_FLOOR = 0.05


def _curve_removes_barrier(tables: Mapping[str, Any], config: Config):
    from .. import findings as FD

    profiles = tables["curve_profiles"]
    split = "train" if "train" in set(profiles["split"]) else str(profiles["split"].iloc[0])
    b = pair_barriers(profiles, split)
    with_barrier = b[b["line_barrier"] > BARRIER_FLOOR]
    if with_barrier.empty:
        return FD.not_run(f"no pair's straight line has a {split}-loss barrier above {BARRIER_FLOOR} nats "
                          f"(largest {b['line_barrier'].max():.3g}): nothing to remove at this scale")
    ratio = with_barrier["curve_barrier"] / with_barrier["line_barrier"]
    value = float(ratio.max())
    detail = "; ".join(f"{r.pair}: line {r.line_barrier:.3g}, curve {r.curve_barrier:.3g}"
                       for r in with_barrier.itertuples())
    return FD.Measured(value, FD.verdict(value <= 0.5), detail)


def _gd_bounces(tables: Mapping[str, Any], config: Config):
    from .. import findings as FD

    summary = walk_summary(tables["walk_steps"])
    gd = summary[summary["method"] == "gd"]
    if gd.empty:
        return FD.not_run("no full-batch gradient-descent walk (walk.gd is false)")
    angles = late_steps(tables["walk_steps"])
    values = angles.loc[angles["walk"].isin(gd["walk"]), "grad_angle"]
    mean, low, high = FD.bootstrap_mean(values.to_numpy(float))
    sgd = summary[summary["method"] == "sgd"]
    detail = "; ".join(f"SGD batch {r.batch_size}: {r.mean_angle:.0f}°" for r in sgd.itertuples())
    return FD.Measured(mean, FD.verdict(mean >= 150.0), detail, low, high)


def _segments_have_interior_minima(tables: Mapping[str, Any], config: Config):
    from .. import findings as FD

    summary = walk_summary(tables["walk_steps"])
    gd = summary[summary["method"] == "gd"]
    if gd.empty:
        return FD.not_run("no full-batch gradient-descent walk (walk.gd is false)")
    value = float(gd["interior_full"].mean())
    return FD.Measured(value, FD.verdict(value >= 0.5), f"{int(gd['steps'].sum())} late steps (the last "
                       f"{LATE_FRACTION:.0%} of each walk)")


def _findings():
    from ..findings import Finding

    return (
        Finding("curve_removes_barrier", "A trained curve joins two solutions over almost no loss barrier, where "
                "the straight line between them has one", "review §3 (Garipov et al. 2018; Draxler et al. 2018)",
                "the largest ratio of the curve's to the line's training-loss barrier (above the chord between "
                "the ends) over the pairs whose line has a barrier",
                f"reproduced if at most 0.5 for every pair whose line barrier exceeds {BARRIER_FLOOR} nats",
                ("curve_profiles",), _curve_removes_barrier, "curves"),
        Finding("gd_gradients_opposite", "Late in training, consecutive full-batch gradients point almost opposite: "
                "gradient descent bounces between the walls of a valley", "review §3 (Xing et al. 2018)",
                "mean angle (degrees) between consecutive gradients of full-batch gradient descent over the last "
                f"{LATE_FRACTION:.0%} of the walk's steps",
                "reproduced if at least 150°", ("walk_steps",), _gd_bounces, "walk", "about 170°"),
        Finding("segments_valley_floor", "The loss along each late step has a minimum inside the segment: the "
                "iterate crosses the valley floor", "review §3 (Xing et al. 2018)",
                f"share of the last {LATE_FRACTION:.0%} of gradient-descent steps whose segment loss (on the "
                "walk's training images) has an interior minimum",
                "reproduced if at least half", ("walk_steps",), _segments_have_interior_minima, "walk"),
    )


FINDINGS = _findings()
