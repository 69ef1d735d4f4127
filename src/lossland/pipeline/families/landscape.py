"""Loss landscapes of the chosen runs of one study: which lines and planes, and one job's work.

:func:`plan` turns the ``landscape`` section of a config and a study's chosen runs
into ``{kind: {name: job}}``; :func:`evaluate_job` evaluates one job (a 1-D line,
or one shard of a 2-D plane) with :mod:`lossland.landscape`. Both are plain
functions of their arguments, so the rules (``workflow/rules/landscape.smk``) and
scripts stay thin and the logic is testable without Snakemake. Planning imports
no torch; the job functions import the engines when called.

Kinds (im2016 figure / review section):

* ``init_final`` (1-D, Fig 2, 5, 10): ``init + α(final − init)``;
* ``final_final`` (1-D, Fig 5, Table 1 upper triangle): between the solutions of
  two optimizers from the same init, with functional distance and disagreement;
* ``distance`` (1-D, Fig 6): ``final + λ(init − final)/‖init − final‖``;
* ``switching`` (1-D, Fig 7 right column): between the first optimizer's run and
  each switch variant, and between the variants;
* ``bilinear`` (2-D, Fig 3): the bilinear plane through four optimizers' solutions;
* ``barycentric`` (2-D, Table 1 lower triangle): the plane through the init and
  two solutions;
* ``random_plane`` (2-D, Li et al.): filter-normalised random directions around a final;
* ``pca`` (2-D, Li et al.): the top-2 PCA directions of a run's saved checkpoints.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import analysis, paths
from ..family import Config, Figure
from ..runs import run_ids, saved_epochs
from ..tables import with_ids

NAME = "landscape"
SECTIONS = ("landscape",)
RUN_SECTIONS = ()
CATEGORY = "Loss landscape"
WILDCARDS: dict[str, str] = {}

LINE_KINDS = ("init_final", "final_final", "distance", "switching")
PLANE_KINDS = ("bilinear", "barycentric", "random_plane", "pca")
KINDS = LINE_KINDS + PLANE_KINDS
#: the kinds a ``landscape.kinds`` list may name (switching has its own switch)
CONFIG_KINDS = ("init_final", "final_final", "distance", "bilinear", "barycentric", "random_plane", "pca")

#: the landscape figures and the gathered tables (``landscape_<kind>``) each draws from
FIGURES = {
    "fig2_init_final": Figure("landscape.init_final_two_inits", ("landscape_init_final",)),
    "fig3_bilinear": Figure("landscape.bilinear_planes", ("landscape_bilinear",)),
    "fig5_interpolation": Figure("landscape.interpolation_overview",
                                 ("landscape_init_final", "landscape_final_final")),
    "fig6_distance": Figure("landscape.distance_paths", ("landscape_distance",)),
    "fig10_beyond_final": Figure("landscape.beyond_final", ("landscape_init_final",)),
    "table1_optimizer_grid": Figure("landscape.optimizer_grid", ("landscape_barycentric", "landscape_final_final")),
    "fig7_switching_interpolation": Figure("landscape.switching_interpolation", ("landscape_switching",)),
    "random_plane": Figure("landscape.random_planes", ("landscape_random_plane",)),
    "pca_plane": Figure("landscape.pca_planes", ("landscape_pca", "landscape_pca_trajectory")),
}


PAIR_KINDS = ("final_final", "barycentric")  # a job per pair of the analysed optimizers' runs


def kinds(config: Config) -> list[str]:
    """The kinds the config asks for (switching only with a switch study)."""
    cfg = config["landscape"]
    out = list(cfg.get("kinds") or CONFIG_KINDS)
    if (cfg.get("switching") or {}).get("enabled") and config.get("switch_study"):
        out.append("switching")
    return out


def tables(config: Config) -> list[str]:
    """``landscape_<kind>`` of every kind asked for, and the PCA trajectories with ``pca``."""
    if not config.get("landscape"):
        return []
    asked = kinds(config)
    return [f"landscape_{k}" for k in KINDS if k in asked] + (["landscape_pca_trajectory"] if "pca" in asked else [])


def runs(config: Config) -> list:
    return []


def check(config: Config) -> list[str]:
    problems, study = analysis.check_section(config, "landscape")
    if study is None:
        return problems
    cfg = config["landscape"]
    name = cfg["study"]
    asked = cfg.get("kinds") or []
    corners = cfg.get("bilinear_optimizers") or []
    if "bilinear" in asked:
        if len(corners) != 4:
            problems.append(f"landscape.bilinear_optimizers: the bilinear plane needs exactly 4 optimizers, "
                            f"got {len(corners)}; allowed: 4 of {', '.join(study['optimizers'])}")
        for v in corners:
            if v not in study["optimizers"]:
                problems.append(f"landscape.bilinear_optimizers: {v!r} is not one of {name}'s optimizers; "
                                f"allowed: {', '.join(study['optimizers'])}")
    paired = [k for k in PAIR_KINDS if k in asked]
    chosen_optimizers = cfg.get("optimizers") or study["optimizers"]
    if paired and len(chosen_optimizers) < 2:
        problems.append(f"landscape.optimizers: {', '.join(paired)} pair the runs of two optimizers, got only "
                        f"{', '.join(map(repr, chosen_optimizers))}; allowed: 2 or more of {name}'s optimizers "
                        f"({', '.join(study['optimizers'])}), or leave {', '.join(paired)} out of landscape.kinds")
    problems += analysis.check_split(config, "landscape.splits", study, cfg.get("splits") or [])
    saved = saved_epochs(config, study)
    if "pca" in asked:
        wanted = (cfg.get("pca") or {}).get("epochs")
        for e in wanted or []:
            if e not in saved:
                problems.append(f"landscape.pca.epochs: epoch {e} is not saved by {name}; allowed: "
                                f"{', '.join(map(str, sorted(saved)))} (see training.checkpoint_every)")
        if len(set(wanted or saved) & saved) < 3:
            problems.append(f"landscape.pca.epochs: a PCA plane needs at least 3 trajectory points; {name} "
                            f"saves {', '.join(map(str, sorted(saved)))} (see training.checkpoint_every)")
    sw = cfg.get("switching") or {}
    if sw.get("enabled"):
        if not config.get("switch_study"):
            problems.append("landscape.switching.enabled: needs switch_study; allowed: false, "
                            "or configure switch_study")
        else:
            configured = [list(p) for p in config["switch_study"]["switches"]]
            for pair in sw.get("switches") or []:
                if list(pair) not in configured:
                    problems.append(f"landscape.switching.switches: {list(pair)} is not one of "
                                    f"switch_study.switches; allowed: {', '.join(map(str, configured))}")
    return problems


def axis(spec: Mapping[str, Any]) -> np.ndarray:
    """``{start, stop, num}`` -> ``num`` evenly spaced values from ``start`` to ``stop`` (both included)."""
    return np.linspace(float(spec["start"]), float(spec["stop"]), int(spec["num"]))


def plane_axes(settings: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    return axis(settings["x"]), axis(settings["y"])


def shard_rows(n_rows: int, n_cols: int, shard_points: int) -> list[range]:
    """Split a grid of ``n_rows × n_cols`` points into shards of whole rows (x values).

    Each shard holds at most ``max(shard_points, n_cols)`` points; every row is in
    exactly one shard, in order.
    """
    per = max(1, int(shard_points) // max(1, n_cols))
    return [range(s, min(s + per, n_rows)) for s in range(0, n_rows, per)]


def shard_count(kind: str, settings: Mapping[str, Any], shard_points: int) -> int:
    xs, ys = plane_axes(settings[kind])
    return len(shard_rows(len(xs), len(ys), shard_points))


def shard_axes(settings: Mapping[str, Any], shard: int, shards: int, shard_points: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """The ``(xs, ys)`` of shard ``shard`` (0-based) of a plane's grid."""
    xs, ys = plane_axes(settings)
    rows = shard_rows(len(xs), len(ys), shard_points)
    if len(rows) != shards or not 0 <= shard < shards:
        raise ValueError(f"shard {shard} of {shards} does not match the grid ({len(rows)} shards)")
    return xs[list(rows[shard])], ys


# --------------------------------------------------------------------------- the plan


def _ref(run: str, epoch: int) -> dict[str, Any]:
    return {"run": run, "epoch": int(epoch)}


def _last(spec: Mapping[str, Any]) -> int:
    return int(spec["training"]["epochs"])


def pair_ids(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    return {"dataset": a["dataset"], "model": a["model"], "seed": int(a["init_seed"]),
            "run_a": a["run"], "run_b": b["run"], "optimizer_a": a["optimizer"], "optimizer_b": b["optimizer"]}


def trajectory_epochs(spec: Mapping[str, Any], wanted: Sequence[int] | None = None) -> list[int]:
    """Epochs of a run's trajectory: 0 (init), its saved checkpoints and the last (or ``wanted``)."""
    saved = {0, _last(spec), *spec["training"].get("checkpoint_epochs", [])}
    return sorted(saved if not wanted else set(wanted) & saved)


def plan(config: Mapping[str, Any], run_table: Mapping[str, Mapping[str, Any]],
         chosen: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{kind: {name: job}}`` for the ``landscape`` section of ``config``.

    ``chosen`` are the chosen runs of ``landscape.study`` (one learning rate per
    optimizer). A job has ``weights`` (``{role: {run, epoch}}``; epoch 0 is the
    run's initial weights), ``ids`` (columns naming what the rows belong to) and,
    for planes, ``shards``.
    """
    cfg = config["landscape"]
    asked = set(kinds(config))
    shard_points = int(cfg["shard_points"])
    out: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
    specs = [run_table[r] for r in chosen]
    analysed = [s for s in specs if analysis.in_analysis(cfg, s)]
    for s in analysed:
        last = _last(s)
        ids = run_ids(s)
        if "init_final" in asked:
            out["init_final"][s["run"]] = {"weights": {"start": _ref(s["run"], 0), "end": _ref(s["run"], last)},
                                          "ids": ids, "labels": {"start": "init", "end": s["run"]}}
        if "distance" in asked:
            out["distance"][s["run"]] = {"weights": {"start": _ref(s["run"], last), "end": _ref(s["run"], 0)},
                                        "ids": ids, "labels": {"start": s["run"], "end": "init"}}
        if "random_plane" in asked:
            out["random_plane"][s["run"]] = {"weights": {"origin": _ref(s["run"], last)}, "ids": ids,
                                            "shards": shard_count("random_plane", cfg, shard_points)}
        if "pca" in asked:
            epochs = trajectory_epochs(s, cfg["pca"].get("epochs"))
            out["pca"][s["run"]] = {"weights": {"origin": _ref(s["run"], last)}, "ids": ids,
                                   "trajectory": [_ref(s["run"], e) for e in epochs],
                                   "shards": shard_count("pca", cfg, shard_points)}
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for s in analysed:
        groups.setdefault((s["dataset"], s["model"], s["init_seed"]), []).append(s)
    for group in groups.values():
        for a, b in itertools.combinations(group, 2):
            name = f"{a['run']}__{b['run']}"
            weights = {"start": _ref(a["run"], _last(a)), "end": _ref(b["run"], _last(b))}
            if "final_final" in asked:
                out["final_final"][name] = {"weights": weights, "ids": pair_ids(a, b),
                                           "labels": {"start": a["run"], "end": b["run"]}}
            if "barycentric" in asked:
                out["barycentric"][name] = {
                    "weights": {"theta0": _ref(a["run"], 0), **{"theta1": weights["start"], "theta2": weights["end"]}},
                    "ids": pair_ids(a, b), "shards": shard_count("barycentric", cfg, shard_points)}
    if "bilinear" in asked:
        corners = list(cfg["bilinear_optimizers"])
        by_init: dict[tuple, dict[str, Mapping[str, Any]]] = {}
        for s in specs:
            if analysis.in_analysis(cfg, s, optimizers=False) and s["optimizer"] in corners:
                by_init.setdefault((s["dataset"], s["model"], s["init_seed"]), {})[s["optimizer"]] = s
        for (dataset, model, seed), found in by_init.items():
            if len(found) != len(corners):
                continue
            name = f"{model}_init{seed}"
            out["bilinear"][name] = {
                "weights": {f"corner{i}": _ref(found[o]["run"], _last(found[o])) for i, o in enumerate(corners)},
                "ids": {"dataset": dataset, "model": model, "seed": int(seed), "corners": ",".join(corners)},
                "shards": shard_count("bilinear", cfg, shard_points)}
    if "switching" in asked:
        wanted = [tuple(p) for p in (cfg["switching"].get("switches") or config["switch_study"]["switches"])]
        variants: dict[tuple, list[Mapping[str, Any]]] = {}
        for s in run_table.values():
            if s.get("kind") != "switch" or (s["first"], s["then"]) not in wanted:
                continue
            if not analysis.in_analysis(cfg, s, optimizers=False):
                continue
            variants.setdefault((s["dataset"], s["model"], s["first"], s["then"], s["init_seed"]), []).append(s)
        for (dataset, model, first, then, seed), vs in variants.items():
            vs = sorted(vs, key=lambda v: v["switch_epoch"])
            prefix = run_table[vs[0]["prefix_run"]]
            members = [prefix, *vs]
            lines = [(prefix, v) for v in vs] + list(itertools.combinations(vs, 2))
            name = f"{model}_{first}-{then}_init{seed}"
            out["switching"][name] = {
                "weights": {m["run"]: _ref(m["run"], _last(m)) for m in members},
                "labels": {prefix["run"]: f"{prefix['optimizer']} only",
                           **{v["run"]: v["optimizer"] for v in vs}},
                "lines": [[a["run"], b["run"]] for a, b in lines],
                "ids": {"dataset": dataset, "model": model, "seed": int(seed), "first": first, "then": then}}
    for jobs in out.values():
        for name, job in jobs.items():
            job["name"] = name
    return out


def weight_refs(job: Mapping[str, Any], trajectory: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """``[(role, {run, epoch})]`` of the weights a job reads, in a fixed order; with
    ``trajectory`` those of a pca job's trajectory instead (roles ``traj<i>``)."""
    if trajectory:
        return [(f"traj{i}", r) for i, r in enumerate(job["trajectory"])]
    return list(job["weights"].items())


def settings_for(config: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """What one kind's jobs depend on (their `params`): the common keys and the kind's own."""
    cfg = config["landscape"]
    common = {k: cfg[k] for k in ("splits", "samples", "bn", "batch_size") if k in cfg}
    own = cfg["switching"] if kind == "switching" else cfg[kind]
    out = {**common, kind: own}
    if kind in PLANE_KINDS:
        out["shard_points"] = cfg["shard_points"]
    return out


# --------------------------------------------------------------------------- files of the rules


def surface_path(kind: str, name: str) -> str:
    """One line, or one gathered plane, of a kind."""
    return f"{paths.RESULTS}/landscape/{kind}/{name}.parquet"


def shard_path(kind: str, name: str, shard: int | str, shards: int | str) -> str:
    return f"{paths.RESULTS}/landscape/shards/{kind}/{name}/shard{shard}-of{shards}.parquet"


def pca_files(name: str) -> dict[str, str]:
    """The PCA directions of a run's trajectory and the trajectory's coordinates on them."""
    return {"directions": f"{paths.RESULTS}/landscape/pca_directions/{name}.safetensors",
            "trajectory": f"{paths.RESULTS}/landscape/pca_trajectory/{name}.parquet"}


def job_inputs(config: Config, run_table: Mapping[str, Mapping[str, Any]], chosen: Sequence[str], kind: str,
               name: str, trajectory: bool = False) -> dict[str, str]:
    """Inputs of one job: ``data`` and, as ``w0, w1, ...``, the weights of its refs in order (with
    ``trajectory``, those of a pca job's trajectory); a pca plane also reads its directions."""
    job = plan(config, run_table, chosen)[kind][name]
    refs = weight_refs(job, trajectory)
    inputs = {"data": paths.prepared_data(run_table[refs[0][1]["run"]]["dataset"])}
    inputs.update({f"w{i}": paths.weights(run_table[r["run"]], r["epoch"]) for i, (_, r) in enumerate(refs)})
    if kind == "pca" and not trajectory:
        inputs.update(pca_files(name))
    return inputs


def job_params(config: Config, run_table: Mapping[str, Mapping[str, Any]], chosen: Sequence[str], kind: str,
               name: str, grid: bool = True) -> dict[str, Any]:
    """What one job depends on: its kind, the job (weights, ids) and, with ``grid``, the kind's settings."""
    out = {"kind": kind, "job": plan(config, run_table, chosen)[kind][name]}
    if grid:
        out["settings"] = settings_for(config, kind)
    return out


def shard_files(config: Config, run_table: Mapping[str, Mapping[str, Any]], chosen: Sequence[str], kind: str,
                name: str) -> list[str]:
    n = plan(config, run_table, chosen)[kind][name]["shards"]
    return [shard_path(kind, name, i, n) for i in range(n)]


def kind_files(config: Config, run_table: Mapping[str, Mapping[str, Any]], chosen: Sequence[str],
               table: str) -> list[str]:
    """The files gathered into ``landscape_<table>``: every line or plane of a kind (or every
    PCA trajectory for ``pca_trajectory``)."""
    kind = "pca" if table == "pca_trajectory" else table
    names = sorted(plan(config, run_table, chosen)[kind])
    if table == "pca_trajectory":
        return [pca_files(n)["trajectory"] for n in names]
    return [surface_path(kind, n) for n in names]


# --------------------------------------------------------------------------- one job


def _options(settings: Mapping[str, Any]) -> dict[str, Any]:
    opts = {"bn": settings.get("bn", "stored")}
    if settings.get("batch_size"):
        opts["batch_size"] = int(settings["batch_size"])
    return opts


def evaluate_job(kind: str, model, states: Mapping[str, Mapping], data: Mapping[str, tuple], job: Mapping[str, Any],
                 settings: Mapping[str, Any], *, shard: int = 0, shards: int = 1,
                 directions: Mapping[str, Any] | None = None, progress=None):
    """Evaluate one line job or one plane shard; one row per point and split.

    ``states`` maps the job's weight roles to state dicts; ``data`` maps split
    names to ``(inputs, targets)``; ``directions`` (pca only) holds ``dir_x``,
    ``dir_y`` and ``extent`` (the trajectory's largest |coordinate| per axis).
    """
    import pandas as pd

    from ... import landscape as L
    from ...state import distance, float_param_names

    own = settings[kind]
    opts = _options(settings)
    frames = []
    for split in settings.get("splits") or list(data):
        d = data[split]
        if progress is not None:
            progress.set_postfix_str(split)
        if kind == "init_final" or kind == "final_final":
            a = axis(own)
            df = L.interpolate(model, states["start"], states["end"], a, d, **opts)
            if kind == "final_final":
                fd = L.functional_distance(model, states["start"], states["end"], a, d, **opts)
                df["functional_distance"] = fd["functional_distance"].to_numpy()
                df["disagreement"] = fd["disagreement"].to_numpy()
            df = with_ids(df, {**job["ids"], "start": job["labels"]["start"], "end": job["labels"]["end"]})
        elif kind == "distance":
            norm = distance(states["end"], states["start"], float_param_names(model, states["start"]))
            df = L.distance_path(model, states["start"], states["end"], axis(own) * norm, d, **opts)
            df["init_distance"] = norm
            df = with_ids(df, {**job["ids"], "start": job["labels"]["start"], "end": job["labels"]["end"]})
        elif kind == "switching":
            parts = []
            for a_run, b_run in job["lines"]:
                line = L.interpolate(model, states[a_run], states[b_run], axis(own), d, **opts)
                parts.append(with_ids(line, {**job["ids"], "start": a_run, "end": b_run,
                                             "start_label": job["labels"][a_run], "end_label": job["labels"][b_run]}))
            df = pd.concat(parts, ignore_index=True)
        else:
            xs, ys = shard_axes(own, shard, shards, settings["shard_points"])
            if kind == "bilinear":
                corners = [states[f"corner{i}"] for i in range(4)]
                df = L.bilinear_surface(model, corners, xs, ys, d, **opts)
            elif kind == "barycentric":
                df = L.barycentric_surface(model, states["theta0"], states["theta1"], states["theta2"],
                                           xs, ys, d, **opts)
            elif kind == "random_plane":
                seeds = own.get("seeds", [1, 2])
                dirs = [L.random_direction(model, own.get("normalization", "filter"), seed=s,
                                           ignore=own.get("ignore", "biasbn"), weights=states["origin"])
                        for s in seeds]
                df = L.surface(model, states["origin"], dirs[0], dirs[1], xs, ys, d, **opts)
            elif kind == "pca":
                ex, ey = directions["extent"]
                df = L.surface(model, states["origin"], directions["dir_x"], directions["dir_y"],
                               xs * ex, ys * ey, d, **opts)
            else:
                raise ValueError(f"unknown landscape kind {kind!r}; allowed: {', '.join(KINDS)}")
            df = with_ids(df, {"kind": kind, "name": job.get("name", ""), **job["ids"]})
        df.insert(df.columns.get_loc("loss"), "split", split)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    if kind in LINE_KINDS and "kind" not in out:
        out.insert(0, "kind", kind)
    return out


def gather_shards(df, settings: Mapping[str, Any], kind: str):
    """A plane's concatenated shards, checked to cover its grid exactly once per split, in grid order."""
    if df.duplicated(["split", "x", "y"]).any():
        raise ValueError(f"{kind}: shards overlap (a point is in more than one shard)")
    xs, ys = plane_axes(settings[kind])
    per_split = df.groupby("split").size()
    if (per_split != len(xs) * len(ys)).any():
        raise ValueError(f"{kind}: shards hold {per_split.to_dict()} points per split; "
                         f"the grid has {len(xs) * len(ys)}")
    return df.sort_values(["split", "x", "y"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- files of a job


def load_states(inputs: Mapping[str, Any], refs: Sequence[tuple[str, Mapping[str, Any]]], device
                ) -> tuple[Any, dict[str, dict]]:
    """The model and ``{role: state dict}`` of a job: ``inputs[f"w{i}"]`` holds the weights of
    ``refs[i]`` (a file, or the checkpoints folder with its epoch)."""
    from ..jobs import load_weights

    model, states = load_weights([(inputs[f"w{i}"], ref["epoch"]) for i, (_, ref) in enumerate(refs)], device)
    return model, {role: state for (role, _), state in zip(refs, states)}


def split_data(prepared, settings: Mapping[str, Any]) -> dict[str, tuple]:
    """``{split: (inputs, targets)}``: :func:`lossland.data.subset_indices` of each of ``splits``."""
    from ...data import subset_indices

    out = {}
    for split in settings["splits"]:
        s = prepared[split]
        idx = subset_indices(len(s.y), settings.get("samples")).to(s.y.device)
        out[split] = (s.x[idx], s.y[idx])
    return out


def trajectory_pca(job: Mapping[str, Any], states: Sequence[Mapping], epochs: Sequence[int]):
    """PCA directions of a trajectory (``states`` at ``epochs``, the last = the plane's origin)
    and the table of its coordinates: ids, ``name, epoch, x, y`` and the explained variance ratios."""
    from ...landscape import pca_directions

    pca = pca_directions(list(states), final=states[-1])
    traj = pca.coords.rename(columns={"index": "step"})
    traj.insert(1, "epoch", [int(e) for e in epochs])
    traj["explained_variance_ratio_x"] = float(pca.explained_variance_ratio[0])
    traj["explained_variance_ratio_y"] = float(pca.explained_variance_ratio[1])
    return pca, with_ids(traj, {"kind": "pca", "name": job.get("name", ""), **job["ids"]})


def direction_tensors(pca) -> dict[str, Any]:
    return {**{f"x.{k}": v for k, v in pca.dir_x.items()}, **{f"y.{k}": v for k, v in pca.dir_y.items()}}


def load_directions(path, trajectory_path, device) -> dict[str, Any]:
    """PCA directions as saved by :func:`direction_tensors` and the trajectory's extent
    (largest |coordinate| per axis, 1 when there is none: the plane's axes are in these units)."""
    from ... import io

    tensors = io.load_tensors(path, device)
    traj = io.read_parquet(trajectory_path)
    # a diverged trajectory has NaN coordinates: its plane keeps the configured axes (NaN losses)
    ext = [m if np.isfinite(m) and m > 0 else 1.0 for m in (float(traj[c].abs().max()) for c in ("x", "y"))]
    return {"dir_x": {k[2:]: v for k, v in tensors.items() if k.startswith("x.")},
            "dir_y": {k[2:]: v for k, v in tensors.items() if k.startswith("y.")},
            "extent": tuple(ext)}


# --------------------------------------------------------------------------- findings


def _at_second_solution(tables: Mapping[str, Any], column: str):
    frame = tables["landscape_final_final"]
    split = "test" if "test" in set(frame["split"]) else frame["split"].iloc[0]
    frame = frame[frame["split"] == split]
    ends = frame.loc[(frame["alpha"] - 1.0).abs().groupby([frame["run_a"], frame["run_b"]]).idxmin()]
    return ends[column].to_numpy(float), split


def _functional_distance(tables: Mapping[str, Any], config: Config):
    from .. import findings as FD

    values, split = _at_second_solution(tables, "functional_distance")
    mean, low, high = FD.bootstrap_mean(values)
    return FD.Measured(mean, FD.verdict(FD.within_factor(mean, 0.16)),
                       f"{len(values)} pairs, {split} split", low, high)


def _disagreement(tables: Mapping[str, Any], config: Config):
    from .. import findings as FD

    values, split = _at_second_solution(tables, "disagreement")
    mean, low, high = FD.bootstrap_mean(values)
    return FD.Measured(mean, FD.verdict(FD.within_factor(mean, 0.08)),
                       f"{len(values)} pairs, {split} split", low, high)


def basin_widths(distance, rise: float):
    """``{(run, optimizer, seed): width}``: along the final→init path on the training split, the
    distance from the final at which the loss first exceeds the final's by ``rise`` (a diverged
    point exceeds it; inf where the line never does)."""
    import math

    import numpy as np

    from ..findings import first_crossing

    frame = distance[distance["split"] == "train"]
    out = {}
    for (run, optimizer, seed), line in frame.groupby(["run", "optimizer", "seed"]):
        line = line.sort_values("distance")
        loss = np.nan_to_num(line["loss"].to_numpy(float), nan=math.inf)
        width = first_crossing(line["distance"], loss, loss[0] + rise)
        out[(run, optimizer, int(seed))] = math.inf if math.isnan(width) else width
    return out


def _adam_wider(tables: Mapping[str, Any], config: Config):
    from ...plots.landscape import BASIN_RISE  # the Fig 6 caption's definition
    from .. import findings as FD

    widths = basin_widths(tables["landscape_distance"], BASIN_RISE)
    by_seed: dict[int, dict[str, float]] = {}
    for (_, optimizer, seed), width in widths.items():
        by_seed.setdefault(seed, {})[optimizer] = width
    diffs = [w["adam"] - w["sgd"] for w in by_seed.values() if "adam" in w and "sgd" in w]
    if not diffs:
        return FD.not_run("needs the distance paths of both sgd and adam from one init")
    mean, low, high = FD.bootstrap_mean(diffs)
    return FD.Measured(mean, FD.verdict(all(d > 0 for d in diffs)),
                       f"{len(diffs)} init(s); widths: " + ", ".join(
                           f"{o} {w:.3g}" for s in by_seed.values() for o, w in sorted(s.items())), low, high)


def _switching_moves(tables: Mapping[str, Any], config: Config):
    from .. import findings as FD

    frame = tables["landscape_switching"]
    frame = frame[(frame["split"] == "train") & frame["start_label"].str.endswith(" only")]
    barriers = {end: FD.barrier(line.sort_values("alpha")["loss"]) for end, line in frame.groupby("end_label")}
    if not barriers:
        return FD.not_run("no line from a first optimizer's own solution to a switch variant")
    value = min(barriers.values())
    return FD.Measured(value, FD.verdict(value > 0),
                       "barriers: " + ", ".join(f"{k} {v:.3g}" for k, v in sorted(barriers.items())))


def _findings():
    from ..findings import Finding

    return (
        Finding("functional_distance", "Solutions of different optimizers from one init are different functions",
                "im2016 §4.1, Table 1 (upper triangle)",
                "mean functional distance at the second solution over pairs of optimizers (test split)",
                "reproduced if within a factor of 2 of the paper's 0.16", ("landscape_final_final",),
                _functional_distance, "landscape", "≈ 0.16"),
        Finding("label_disagreement", "Solutions of different optimizers disagree on about 8 % of the test labels",
                "im2016 §4.1, Table 1 (upper triangle)",
                "mean label disagreement at the second solution over pairs of optimizers (test split)",
                "reproduced if within a factor of 2 of the paper's 8 %", ("landscape_final_final",),
                _disagreement, "landscape", "≈ 0.08"),
        Finding("adam_wider_basins", "Adam's basins are wider than SGD's", "im2016 §4.2, Fig 5(a), Fig 6",
                "Adam's minus SGD's basin width: the distance from the final at which the training loss "
                "first exceeds the final's by 0.5 (mean over inits)",
                "reproduced if Adam's is wider from every analysed init", ("landscape_distance",),
                _adam_wider, "landscape"),
        Finding("switching_moves", "Switching optimizers, even late, moves to a different minimum",
                "im2016 §4.3, Fig 7 (right column)",
                "the smallest loss barrier (training split) on the line from the first optimizer's own "
                "solution to a switch variant's",
                "reproduced if every such line has a barrier (> 0)", ("landscape_switching",),
                _switching_moves, "switch_study"),
    )


FINDINGS = _findings()
