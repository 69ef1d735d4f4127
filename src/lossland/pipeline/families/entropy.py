"""zhang2018, "Energy-entropy competition and the effectiveness of SGD".

Two sections, each training its own ensembles (no run of the shared run table):

* ``entropy`` (section III): ``members`` nets of one MLP (zhang2018: 108 → 10 → 10 → 10 → 1,
  1320 parameters) on a two-class data set (airplane vs automobile at 6×6×3), trained as
  one :class:`lossland.ensemble.Ensemble` per dynamics (:mod:`lossland.dynamics`): SGD, then
  steepest descent to ``tol``; Langevin dynamics with the SGD gradient-noise variance of each
  parameter as uncorrelated noise, then the same descent; full-batch gradient descent for
  ``gd_steps``, then on to ``tol``. Member ``k`` starts from the same init in every dynamics.
  At every solution the exact Hessian (:func:`lossland.curvature.entropy.exact_spectrum`), its
  entropy (:func:`lossland.spectral_entropy`), −log trace, the test error. One job per dynamics.
* ``deep_linear`` (section IV): students ``W2 W1`` of a noisy linear teacher
  (:mod:`lossland.deep_linear`) trained by SGD then descent, from balanced and unbalanced
  inits (one job per init): entropy over the top ``examples`` eigenvalues, −log trace,
  ``‖W2W1‖²``, the exact generalisation error and eq. 34's prediction; and one job of the
  drift of ``W1W1ᵀ − W2ᵀW2`` under full-batch GD and SGD at several learning rates.

Rules: ``workflow/rules/entropy.smk``; tables ``entropy_solutions``, ``entropy_spectra``,
``entropy_history``, ``deep_linear_solutions``, ``deep_linear_history``, ``deep_linear_drift``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from .. import paths
from ..family import Config, Figure

NAME = "entropy"
SECTIONS = ("entropy", "deep_linear")
RUN_SECTIONS = SECTIONS
CATEGORY = "Energy-entropy competition (zhang2018)"
DYNAMICS = ("sgd", "langevin", "gd")
INITS = ("balanced", "unbalanced")
WILDCARDS = {"dynamics": "|".join(DYNAMICS), "init": "|".join(INITS)}
#: the tables of one dynamics job, and (prefixed ``entropy_``) of the section
DYNAMICS_TABLES = ("solutions", "spectra", "history")
#: the tables of one students job, and (prefixed ``deep_linear_``) of the section
STUDENT_TABLES = ("solutions", "history")
#: the human names of the dynamics
DYNAMICS_LABELS = {"sgd": "SGD", "langevin": "Langevin (matched noise)", "gd": "gradient descent"}

FIGURES = {
    "zhang_fig1_entropy_by_dynamics": Figure("entropy.entropy_by_dynamics", ("entropy_solutions",)),
    "zhang_fig2_entropy_test_error": Figure("entropy.entropy_test_error", ("entropy_solutions",)),
    "zhang_fig3_deep_linear_balanced": Figure("entropy.deep_linear_balanced", ("deep_linear_solutions",),
                                              section="deep_linear"),
    "zhang_fig4_deep_linear_unbalanced": Figure("entropy.deep_linear_unbalanced", ("deep_linear_solutions",),
                                                section="deep_linear"),
    "zhang_fig5_trace_entropy": Figure("entropy.trace_entropy", ("deep_linear_solutions",), section="deep_linear"),
}


# --------------------------------------------------------------------------- config


def input_shape(config: Config, dataset: str) -> tuple[int, int, int]:
    size = int((config["datasets"].get(dataset) or {}).get("image_size") or 32)
    return (3, size, size)


def count_parameters(config: Config) -> int:
    """The number of parameters of the ``entropy`` section's model on its data set's images."""
    from ...models import build_model
    from ...models import count_parameters as count

    cfg = config["entropy"]
    return count(build_model(config["models"][cfg["model"]], input_shape(config, cfg["dataset"]), 2))


def check(config: Config) -> list[str]:
    problems: list[str] = []
    cfg = config.get("entropy")
    if cfg:
        ds = config["datasets"].get(cfg["dataset"])
        spec = config["models"].get(cfg["model"])
        if ds is None:
            problems.append(f"entropy.dataset: {cfg['dataset']!r} is not a datasets entry; allowed: "
                            f"{', '.join(config['datasets'])}")
        elif len(ds.get("classes") or ()) != 2:
            problems.append(f"entropy.dataset: datasets.{cfg['dataset']}.classes must name two classes "
                            f"(zhang2018: [airplane, automobile]); allowed: a list of two CIFAR-10 classes")
        if spec is None:
            problems.append(f"entropy.model: {cfg['model']!r} is not a models entry; allowed: "
                            f"{', '.join(config['models'])}")
        elif spec["arch"] != "mlp" or not spec.get("binary") or spec.get("batch_norm"):
            problems.append(f"entropy.model: models.{cfg['model']} must be an MLP with binary: true and no "
                            f"BatchNorm (zhang2018's net); allowed: arch mlp, binary true, batch_norm false")
        if not problems and cfg.get("parameters"):
            found = count_parameters(config)
            if found != int(cfg["parameters"]):
                problems.append(f"entropy.parameters: models.{cfg['model']} on {cfg['dataset']}'s images has "
                                f"{found} parameters, not {cfg['parameters']}; allowed: {found}, or null to "
                                f"skip the check")
        train = (ds or {}).get("train_size")
        if train and train % cfg["noise_chunks"]:
            problems.append(f"entropy.noise_chunks: {cfg['noise_chunks']} does not divide the {train} training "
                            f"images of {cfg['dataset']}; allowed: a divisor of {train}")
        if train and cfg["batch_size"] > train:
            problems.append(f"entropy.batch_size: {cfg['batch_size']} is larger than the {train} training images; "
                            f"allowed: 1 to {train}")
    cfg = config.get("deep_linear")
    if cfg:
        if cfg["examples"] >= cfg["inputs"]:
            problems.append(f"deep_linear.examples: {cfg['examples']} examples for {cfg['inputs']} inputs is not "
                            f"underdetermined; allowed: fewer than deep_linear.inputs ({cfg['inputs']})")
        scale = cfg["init_scale"]
        if scale["low"] > scale["high"]:
            problems.append(f"deep_linear.init_scale: low {scale['low']} is above high {scale['high']}; "
                            f"allowed: low <= high")
        if cfg["batch_size"] > cfg["examples"]:
            problems.append(f"deep_linear.batch_size: {cfg['batch_size']} is larger than the {cfg['examples']} "
                            f"examples; allowed: 1 to {cfg['examples']}")
    return problems


def runs(config: Config) -> list:
    return []


def tables(config: Config) -> list[str]:
    out = [f"entropy_{t}" for t in DYNAMICS_TABLES] if config.get("entropy") else []
    if config.get("deep_linear"):
        out += [f"deep_linear_{t}" for t in STUDENT_TABLES] + ["deep_linear_drift"]
    return out


def scale(config: Config, section: str) -> str:
    """The caption's scale line of a section (:func:`lossland.pipeline.captions.scale`)."""
    from ..captions import SOURCES, describe_model

    cfg = config[section]
    if section == "entropy":
        ds = config["datasets"][cfg["dataset"]]
        size = ds.get("image_size") or 32
        return (f"{cfg['dataset']} ({SOURCES.get(ds['source'], ds['source'])}: {' vs '.join(ds['classes'])}, "
                f"{ds.get('train_size') or 'all'} training and {ds.get('test_size') or 'all'} test images at "
                f"{size}×{size}×3); {cfg['model']}: {describe_model(config['models'][cfg['model']])}; "
                f"{cfg['members']} solutions per dynamics; SGD {cfg['sgd_epochs']} epochs at batch "
                f"{cfg['batch_size']}, Langevin {cfg['langevin_steps']} steps, GD {cfg['gd_steps']} steps, lr "
                f"{cfg['lr']:g}, L2 {cfg['weight_decay']:g}; then descent to every gradient component below "
                f"{cfg['tol']:g} (at most {cfg['descent_max_steps']} steps)")
    return (f"teacher on {cfg['inputs']} Gaussian inputs, noise std {cfg['noise_std']:g}, {cfg['examples']} "
            f"training examples; students W2 W1 with {cfg['hidden']} hidden units, {cfg['members']} per init, "
            f"init scale {cfg['init_scale']['low']:g} to {cfg['init_scale']['high']:g}, imbalance up to "
            f"×{cfg['imbalance']:g}; SGD {cfg['epochs']} epochs at batch {cfg['batch_size']}, lr {cfg['lr']:g}, "
            f"then descent to {cfg['tol']:g}")


# --------------------------------------------------------------------------- jobs


def dynamics_path(dynamics: str, table: str) -> str:
    return f"{paths.RESULTS}/entropy/{dynamics}/{table}.parquet"


def student_path(init: str, table: str) -> str:
    return f"{paths.RESULTS}/entropy/deep_linear/{init}/{table}.parquet"


def drift_path() -> str:
    return f"{paths.RESULTS}/entropy/deep_linear/drift.parquet"


def dynamics_params(config: Config, dynamics: str) -> dict[str, Any]:
    """What one dynamics job depends on: the section's settings for it, the model and the data set."""
    cfg = config["entropy"]
    keys = ["members", "seed", "lr", "weight_decay", "tol", "descent_max_steps", "log_every"]
    keys += {"sgd": ["sgd_epochs", "batch_size"], "langevin": ["langevin_steps", "noise_chunks"],
             "gd": ["gd_steps"]}[dynamics]
    return {"dynamics": dynamics, **{k: cfg[k] for k in keys}, "model": config["models"][cfg["model"]],
            "model_name": cfg["model"], "dataset": cfg["dataset"]}


def student_params(config: Config, init: str) -> dict[str, Any]:
    cfg = config["deep_linear"]
    keys = ("inputs", "hidden", "examples", "noise_std", "data_seed", "members", "seed", "init_scale", "imbalance",
            "lr", "batch_size", "epochs", "tol", "descent_max_steps")
    return {"init": init, **{k: cfg[k] for k in keys}}


def drift_params(config: Config) -> dict[str, Any]:
    cfg = config["deep_linear"]
    keys = ("inputs", "hidden", "examples", "noise_std", "data_seed", "seed", "batch_size", "drift")
    return {k: cfg[k] for k in keys}


def dynamics_files(config: Config) -> dict[str, list[str]]:
    """``{table: [file of every dynamics]}``: the inputs of rule ``gather_entropy``."""
    if not config.get("entropy"):
        return {}
    return {t: [dynamics_path(d, t) for d in config["entropy"]["dynamics"]] for t in DYNAMICS_TABLES}


def student_files(config: Config) -> dict[str, list[str]]:
    """``{table: [file of every init]}`` and the drift: the inputs of rule ``gather_deep_linear``."""
    if not config.get("deep_linear"):
        return {}
    out = {t: [student_path(i, t) for i in config["deep_linear"]["inits"]] for t in STUDENT_TABLES}
    return {**out, "drift": [drift_path()]}


# --------------------------------------------------------------------------- one job


def member_seed(*parts) -> int:
    from ...data import derive_seed

    return derive_seed("zhang2018", *parts)


def _history(trace, phase: str, ids: Mapping[str, Any], offset: int = 0):
    from ..tables import with_ids

    table = trace.table()
    table["step"] += offset
    return with_ids(table, {**ids, "phase": phase})


def run_dynamics(train: tuple, test: tuple, params: Mapping[str, Any], device=None, progress: bool = False
                 ) -> dict[str, Any]:
    """One dynamics job: the ensemble trained, descended to the tolerance, and every solution's
    exact Hessian. Returns ``{"solutions", "spectra", "history"}`` DataFrames."""
    import pandas as pd

    from ... import dynamics as D
    from ...curvature.entropy import exact_spectrum, spectrum_summary
    from ...ensemble import Ensemble
    from ...models import build_model, create_model

    p = params
    method = p["dynamics"]
    x, y = train[0].reshape(len(train[1]), -1), train[1].float()
    xt, yt = test[0].reshape(len(test[1]), -1), test[1]
    shape = tuple(train[0].shape[1:])
    members = int(p["members"])
    init_seeds = [member_seed("init", p["seed"], k) for k in range(members)]
    models = [create_model(p["model"], shape, 2, seed=s) for s in init_seeds]
    ens = Ensemble.from_models(models)
    ens.flat = ens.flat.to(device or "cpu")
    seeds = [member_seed(method, p["seed"], k) for k in range(members)]
    kw = {"weight_decay": float(p["weight_decay"]), "progress": progress}
    if method == "sgd":
        trace = D.sgd(ens, x, y, lr=p["lr"], epochs=int(p["sgd_epochs"]), batch_size=int(p["batch_size"]),
                      seeds=seeds, log_every=int(p["log_every"]), **kw)
    elif method == "langevin":
        trace = D.langevin(ens, x, y, lr=p["lr"], steps=int(p["langevin_steps"]), seeds=seeds,
                           chunks=int(p["noise_chunks"]), log_every=int(p["log_every"]), **kw)
    else:
        trace = D.gradient_descent(ens, x, y, lr=p["lr"], steps=int(p["gd_steps"]), log_every=int(p["log_every"]),
                                   **kw)
    trained_steps = trace.steps
    descent = D.gradient_descent(ens, x, y, lr=p["lr"], tol=float(p["tol"]), max_steps=int(p["descent_max_steps"]),
                                 log_every=int(p["log_every"]), desc="descent to the tolerance", **kw)
    ids = {"method": method}
    history = pd.concat([_history(trace, "train", ids), _history(descent, "descent", ids, offset=max(trained_steps))],
                        ignore_index=True)
    value, grad = ens.loss_and_grad(x, y, weight_decay=float(p["weight_decay"]))
    data_loss = ens.losses(x, y)
    train_error = (ens.predictions(x) != y.long()).double().mean(1)
    test_error = (ens.predictions(xt) != yt.long()).double().mean(1)
    template = build_model(p["model"], shape, 2).to(ens.flat.device)
    rows, spectra = [], []
    diverged = [a or b for a, b in zip(trace.diverged, descent.diverged)]
    for k in range(members):
        row = {"run": f"{method}-{k}", "method": method, "member": k, "init_seed": init_seeds[k],
               "train_loss": float(data_loss[k]), "objective": float(value[k]),
               "train_error": float(train_error[k]), "test_error": float(test_error[k]),
               "grad_norm": float(grad[k].norm()), "grad_max": float(grad[k].abs().max()),
               "converged": bool(descent.converged[k]), "diverged": bool(diverged[k]),
               "train_steps": int(trained_steps[k]), "descent_steps": int(descent.steps[k]),
               "weight_norm": float(ens.flat[k].norm())}
        if diverged[k]:
            row.update({"entropy": math.nan, "neg_log_trace": math.nan, "negative_fraction": math.nan, "kept": 0,
                        "top_eigenvalue": math.nan, "min_eigenvalue": math.nan})
        else:
            ens.load_into(template, k)
            lam = exact_spectrum(template, (x, y), weight_decay=float(p["weight_decay"]))
            row.update(spectrum_summary(lam, ens.num_parameters))
            spectra.append(pd.DataFrame({"run": row["run"], "method": method, "member": k,
                                         "index": range(len(lam)), "eigenvalue": lam.cpu().numpy()}))
        rows.append(row)
    solutions = pd.DataFrame(rows)
    first = ["run", "method", "member", "entropy", "neg_log_trace", "test_error"]
    solutions = solutions[first + [c for c in solutions.columns if c not in first]]
    spectra = pd.concat(spectra, ignore_index=True) if spectra else pd.DataFrame(
        columns=["run", "method", "member", "index", "eigenvalue"])
    return {"solutions": solutions, "spectra": spectra, "history": history}


def student_setup(params: Mapping[str, Any], init: str, members: int):
    """The teacher's data and the students' flat initial parameters, scales and imbalance factors
    (the same scales and Gaussian draws for every init; only the imbalance differs)."""
    import torch

    from ... import deep_linear as DL

    p = params
    data = DL.teacher_data(int(p["inputs"]), int(p["examples"]), float(p["noise_std"]), int(p["data_seed"]))
    g = torch.Generator().manual_seed(member_seed("deep-linear-scale", p["seed"]))
    lo, hi = float(p["init_scale"]["low"]), float(p["init_scale"]["high"])
    scales = lo + (hi - lo) * torch.rand(members, generator=g, dtype=torch.float64)
    u = 2 * torch.rand(members, generator=g, dtype=torch.float64) - 1
    imbalance = 10 ** (u * math.log10(p["imbalance"])) if init == "unbalanced" else torch.ones(members,
                                                                                              dtype=torch.float64)
    flat = DL.student_init(members, int(p["inputs"]), int(p["hidden"]), scales, imbalance,
                           seed=member_seed("deep-linear-init", p["seed"]))
    return data, flat, scales, imbalance


def run_students(params: Mapping[str, Any], progress: bool = False) -> dict[str, Any]:
    """One students job (one init kind): SGD, descent to the tolerance, every student's Hessian.
    Returns ``{"solutions", "history"}`` DataFrames."""
    import pandas as pd
    import torch

    from ... import deep_linear as DL
    from ... import dynamics as D
    from ...curvature.entropy import exact_spectrum, spectrum_summary
    from ...ensemble import Ensemble

    p = params
    init, members, d, h = p["init"], int(p["members"]), int(p["inputs"]), int(p["hidden"])
    data, flat, scales, imbalance = student_setup(p, init, members)
    ens = Ensemble([(h, d, False), (1, h, False)], "linear", flat)
    start = DL.invariant(*[w for w, _ in ens.layers()])
    seeds = [member_seed("deep-linear-sgd", p["seed"], k) for k in range(members)]
    trace = D.sgd(ens, data.x, data.y, lr=p["lr"], epochs=int(p["epochs"]), batch_size=int(p["batch_size"]),
                  seeds=seeds, loss="mse", log_every=max(1, int(p["epochs"]) // 20), progress=progress)
    descent = D.gradient_descent(ens, data.x, data.y, lr=p["lr"], tol=float(p["tol"]),
                                 max_steps=int(p["descent_max_steps"]), loss="mse", progress=progress,
                                 desc="descent to the tolerance")
    ids = {"init": init}
    history = pd.concat([_history(trace, "train", ids), _history(descent, "descent", ids, offset=max(trace.steps))],
                        ignore_index=True)
    product = ens.weight_products()[:, 0, :]
    gen = DL.generalization_error(product, data.teacher, data.noise_variance)
    predicted = DL.predicted_generalization_error(product, data)
    w1, w2 = [w for w, _ in ens.layers()]
    end = DL.invariant(w1, w2)
    losses = ens.losses(data.x, data.y, "mse")
    model = DL.student_model(d, h)
    rows = []
    empty = {"entropy": math.nan, "neg_log_trace": math.nan, "negative_fraction": math.nan, "kept": 0,
             "top_eigenvalue": math.nan, "min_eigenvalue": math.nan}
    for k in range(members):
        diverged = bool(trace.diverged[k] or descent.diverged[k] or not torch.isfinite(ens.flat[k]).all())
        if diverged:
            summary = empty
        else:
            ens.load_into(model, k)
            lam = exact_spectrum(model, (data.x, data.y), DL.squared_loss)
            summary = spectrum_summary(lam, ens.num_parameters, top=int(p["examples"]))
        row = {"run": f"{init}-{k}", "method": "sgd", "init": init, "member": k, "init_scale": float(scales[k]),
               "imbalance": float(imbalance[k]), **summary,
               "weight_norm": float((product[k] ** 2).sum()), "gen_error": float(gen[k]),
               "predicted_gen_error": float(predicted[k]), "train_loss": float(losses[k]),
               "converged": bool(descent.converged[k]), "diverged": diverged,
               "descent_steps": int(descent.steps[k]), "w1_norm": float((w1[k] ** 2).sum()),
               "w2_norm": float((w2[k] ** 2).sum()), "invariant_norm": float(end[k].norm()),
               "invariant_change": float((end[k] - start[k]).norm())}
        rows.append(row)
    solutions = pd.DataFrame(rows)
    solutions.insert(5, "test_error", solutions["gen_error"])  # the SPEC's contract column
    return {"solutions": solutions, "history": history}


def run_drift(params: Mapping[str, Any]):
    """The drift job: one balanced student from ``drift.init_scale`` trained by full-batch GD and by
    SGD at every ``drift.lrs`` for time ``drift.time``. Returns the ``deep_linear_drift`` table."""
    import pandas as pd
    import torch

    from ... import deep_linear as DL

    p = params
    spec = p["drift"]
    d, h = int(p["inputs"]), int(p["hidden"])
    data = DL.teacher_data(d, int(p["examples"]), float(p["noise_std"]), int(p["data_seed"]))
    flat = DL.student_init(1, d, h, torch.tensor([float(spec["init_scale"])]),
                           seed=member_seed("deep-linear-drift", p["seed"]))
    parts = []
    for method in ("gd", "sgd"):
        for lr in spec["lrs"]:
            steps = max(1, round(float(spec["time"]) / float(lr)))
            table = DL.invariant_drift(flat, (h, d), data, lr=float(lr), steps=steps, records=int(spec["records"]),
                                       batch_size=None if method == "gd" else int(p["batch_size"]),
                                       seed=member_seed("deep-linear-drift-sgd", p["seed"]))
            table.insert(0, "method", method)
            table.insert(1, "lr", float(lr))
            parts.append(table)
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------- measures


def pearson(x, y) -> float:
    import numpy as np

    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3 or np.std(x[keep]) == 0 or np.std(y[keep]) == 0:
        return math.nan
    return round(float(np.corrcoef(x[keep], y[keep])[0, 1]), 12)  # ±1 exactly for an exact line


def spearman(x, y) -> float:
    import numpy as np
    import pandas as pd

    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    return pearson(pd.Series(x[keep]).rank().to_numpy(), pd.Series(y[keep]).rank().to_numpy())


def bootstrap_correlation(x, y, samples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Spearman's correlation of ``x`` and ``y`` with a 95 % percentile-bootstrap interval (pairs resampled)."""
    import numpy as np

    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    value = spearman(x, y)
    if x.size < 4:
        return value, math.nan, math.nan
    rng = np.random.default_rng(seed)
    draws = [spearman(x[i], y[i]) for i in rng.integers(0, x.size, size=(samples, x.size))]
    draws = np.asarray([v for v in draws if np.isfinite(v)])
    if draws.size == 0:
        return value, math.nan, math.nan
    low, high = np.quantile(draws, [0.025, 0.975])
    return value, float(low), float(high)


def usable(solutions):
    """The solutions with a finite entropy (diverged members and empty spectra left out)."""
    import numpy as np

    return solutions[np.isfinite(solutions["entropy"].astype(float))]


def dynamics_summary(solutions):
    """Per dynamics: ``method, solutions, converged, mean_entropy, low, high`` (95 % bootstrap),
    ``mean_test_error``, ``mean_train_loss``, ``mean_negative_fraction``."""
    import pandas as pd

    from ..findings import bootstrap_mean

    rows = []
    for method in [m for m in DYNAMICS if m in set(solutions["method"])]:
        part = solutions[solutions["method"] == method]
        mean, low, high = bootstrap_mean(usable(part)["entropy"].to_numpy(float))
        rows.append({"method": method, "solutions": len(part), "converged": int(part["converged"].sum()),
                     "mean_entropy": mean, "low": low, "high": high,
                     "mean_test_error": float(part["test_error"].mean()),
                     "mean_train_loss": float(part["train_loss"].mean()),
                     "mean_negative_fraction": float(part["negative_fraction"].mean())})
    return pd.DataFrame(rows)


def paired_difference(solutions, a: str = "sgd", b: str = "langevin") -> tuple[float, float, float]:
    """Mean over members of ``entropy(a) − entropy(b)`` (member k starts from one init in both),
    with its 95 % bootstrap interval."""
    from ..findings import bootstrap_mean

    part = usable(solutions)
    wide = part.pivot_table(index="member", columns="method", values="entropy")
    if a not in wide or b not in wide:
        return math.nan, math.nan, math.nan
    return bootstrap_mean((wide[a] - wide[b]).dropna().to_numpy(float))


def linear_fit(x, y) -> tuple[float, float]:
    """Least-squares slope and intercept of ``y`` on ``x``."""
    import numpy as np

    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 2:
        return math.nan, math.nan
    slope, intercept = np.polyfit(x[keep], y[keep], 1)
    return float(slope), float(intercept)


# --------------------------------------------------------------------------- findings

#: a correlation "shows" when its magnitude is at least this and its interval excludes 0
CORRELATION_FLOOR = 0.2


def _sgd_wider(tables: Mapping[str, Any], config: Config):
    from .. import findings as FD

    s = tables["entropy_solutions"]
    if not {"sgd", "langevin"} <= set(s["method"]):
        return FD.not_run("needs both the sgd and the langevin dynamics (entropy.dynamics)")
    mean, low, high = paired_difference(s)
    summary = dynamics_summary(s).set_index("method")
    detail = "; ".join(f"{DYNAMICS_LABELS[m]}: mean entropy {r.mean_entropy:.4g} [{r.low:.4g}, {r.high:.4g}]"
                       for m, r in summary.iterrows())
    if not math.isfinite(low):
        return FD.not_run(f"fewer than two members with a finite entropy in both dynamics; {detail}")
    return FD.Measured(mean, FD.verdict(low > 0), detail, low, high)


def _entropy_test_error(tables: Mapping[str, Any], config: Config):
    from .. import findings as FD

    s = usable(tables["entropy_solutions"])
    part = s[s["method"] == "sgd"] if "sgd" in set(s["method"]) else s
    value, low, high = bootstrap_correlation(part["entropy"], part["test_error"])
    if not math.isfinite(low):
        return FD.not_run(f"{len(part)} solutions: too few for a correlation")
    detail = f"{len(part)} solutions; Pearson {pearson(part['entropy'], part['test_error']):.3g}"
    return FD.Measured(value, FD.verdict(value <= -CORRELATION_FLOOR and high < 0), detail, low, high)


def _deep_linear_correlation(tables: Mapping[str, Any], config: Config):
    from .. import findings as FD

    s = usable(tables["deep_linear_solutions"])
    part = s[s["init"] == "balanced"]
    value, low, high = bootstrap_correlation(part["entropy"], part["gen_error"])
    if not math.isfinite(low):
        return FD.not_run("no balanced students (deep_linear.inits)")
    detail = f"{len(part)} balanced students"
    un = s[s["init"] == "unbalanced"]
    if len(un) > 3:
        detail += f"; unbalanced: Spearman {spearman(un['entropy'], un['gen_error']):.3g}"
    return FD.Measured(value, FD.verdict(value <= -CORRELATION_FLOOR and high < 0), detail, low, high)


def _prediction_line(tables: Mapping[str, Any], config: Config):
    from .. import findings as FD

    s = usable(tables["deep_linear_solutions"])
    slope, _ = linear_fit(s["weight_norm"], s["gen_error"])
    if not math.isfinite(slope):
        return FD.not_run("fewer than two students")
    error = (s["gen_error"] - s["predicted_gen_error"]).abs() / s["gen_error"]
    return FD.Measured(slope, FD.verdict(abs(slope - 1) <= 0.25),
                       f"{len(s)} students; eq. 34's prediction within {100 * error.median():.2g} % (median) "
                       f"of the exact error")


def _invariant_conserved(tables: Mapping[str, Any], config: Config):
    from .. import findings as FD

    drift = tables["deep_linear_drift"]
    last = drift.sort_values("step").groupby(["method", "lr"]).tail(1)
    gd = last[last["method"] == "gd"].sort_values("lr")
    sgd = last[last["method"] == "sgd"].sort_values("lr")
    if len(gd) < 2:
        return FD.not_run("needs at least two learning rates (deep_linear.drift.lrs)")
    ratio = float(gd["relative_drift"].iloc[-1] / gd["relative_drift"].iloc[0])
    lr_ratio = float(gd["lr"].iloc[-1] / gd["lr"].iloc[0])
    detail = ("GD relative drift " + ", ".join(f"{r.relative_drift:.2g} at lr {r.lr:g}" for r in gd.itertuples())
              + "; SGD " + ", ".join(f"{r.relative_drift:.2g} at lr {r.lr:g}" for r in sgd.itertuples()))
    shrinks = ratio >= 0.5 * lr_ratio and float(gd["relative_drift"].min()) < 0.05
    return FD.Measured(float(gd["relative_drift"].min()), FD.verdict(shrinks), detail)


def _findings():
    from ..findings import Finding

    return (
        Finding("sgd_wider_than_langevin", "SGD's anisotropic noise finds wider (higher-entropy) minima than Langevin "
                "dynamics with the same per-parameter noise variance", "zhang2018 §III, Fig 1",
                "mean over members of entropy(SGD) − entropy(Langevin), member k from one init in both",
                "reproduced if the 95 % bootstrap interval lies above 0", ("entropy_solutions",), _sgd_wider,
                "entropy", "SGD above Langevin and GD"),
        Finding("entropy_test_error_negative", "Higher-entropy minima have lower test error", "zhang2018 §III, Fig 2",
                "Spearman correlation of entropy and test error over the SGD solutions",
                f"reproduced if at most −{CORRELATION_FLOOR} with a 95 % interval below 0",
                ("entropy_solutions",), _entropy_test_error, "entropy", "a discernible negative correlation"),
        Finding("deep_linear_entropy_generalisation", "In an underdetermined deep linear net, entropy correlates "
                "negatively with the generalisation error (balanced inits)", "zhang2018 §IV, Fig 3-4",
                "Spearman correlation of entropy and the exact generalisation error over the balanced students",
                f"reproduced if at most −{CORRELATION_FLOOR} with a 95 % interval below 0",
                ("deep_linear_solutions",), _deep_linear_correlation, "deep_linear"),
        Finding("deep_linear_norm_line", "The generalisation error is linear in |W2 W1|² with slope 1 "
                "(eq. 34)", "zhang2018 §IV, eqs. 29-34, Fig 3", "least-squares slope of the exact generalisation "
                "error on |W2 W1|² over all students", "reproduced if within 0.25 of 1",
                ("deep_linear_solutions",), _prediction_line, "deep_linear", "1"),
        Finding("gd_conserves_invariant", "Full-batch gradient descent conserves W1 W1ᵀ − W2ᵀ W2 (its drift vanishes "
                "with the learning rate)", "zhang2018 §IV, eqs. 25-28",
                "the smallest relative drift |ΔD|/(|W1W1ᵀ|+|W2ᵀW2|) of full-batch GD over the learning rates",
                "reproduced if below 0.05 and shrinking at least half as fast as the learning rate",
                ("deep_linear_drift",), _invariant_conserved, "deep_linear", "0 (an invariant of gradient flow)"),
    )


FINDINGS = _findings()
