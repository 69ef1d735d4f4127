"""im2016's optimizer studies (Im, Tao & Branson 2016): the sections that train runs.

* ``optimizer_study`` (§4.1, Fig 4), ``rk2_study`` (A.4, Fig 9), ``init_study``
  (A.5, Fig 11): *plain* studies, one run per model × optimizer × learning rate ×
  init seed; an optimizer with a learning-rate grid has its rate chosen on the
  validation split (rules ``select_lr``, ``gather_lr_selection``);
* ``switch_study`` (§4.3, Fig 7, 12-15): one optimizer for the first k epochs,
  then another with fresh state; the prefix is the first optimizer's own run.

Every optimizer of a study starts from the same initial weights of a seed and
sees the same minibatches (``data_seed``). Rules: ``workflow/rules/im2016.smk``.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from .. import paths
from .. import runs as R
from ..family import Config, Figure

NAME = "im2016"
PLAIN_STUDIES = ("optimizer_study", "rk2_study", "init_study")
SWITCH_STUDY = "switch_study"
SECTIONS = (*PLAIN_STUDIES, SWITCH_STUDY)
RUN_SECTIONS = SECTIONS
CATEGORY = "Optimizers"
WILDCARDS = {"study": "|".join(SECTIONS)}


def _learning_curves(study: str) -> Figure:
    return Figure("im2016.learning_curves", (f"{study}_metrics",), caption="learning_curves.rst",
                  kwargs=lambda config: {"study": study}, category="Training", subcategory=study, section=study)


FIGURES = {
    "fig4_optimizer_accuracy": Figure("im2016.optimizer_accuracy", ("optimizer_study_chosen_metrics",)),
    "fig7_switching": Figure("im2016.switching", ("switch_study_metrics",),
                             kwargs=lambda config: {"switches": config[SWITCH_STUDY]["switches"]},
                             section=SWITCH_STUDY),
    "fig9_rk2_training": Figure("im2016.rk2_training", ("rk2_study_chosen_metrics",), section="rk2_study"),
    "fig11_exotic_inits": Figure("im2016.exotic_inits", ("init_study_chosen_metrics",), section="init_study"),
    **{f"{study}_learning_curves": _learning_curves(study) for study in SECTIONS},
}


def present_studies(config: Config) -> list[str]:
    return [name for name in SECTIONS if config.get(name)]


def lr_grid(config: Config, study: str, optimizer: str) -> list[float]:
    """The learning rates a plain study trains ``optimizer`` with (its grid, or its own lr)."""
    grids = config[study].get("lr_grids") or {}
    if optimizer in grids:
        return [float(v) for v in grids[optimizer]]
    return [R.learning_rate(config["optimizers"][optimizer])]


def switch_code(config: Config, optimizer: str) -> str:
    codes = config[SWITCH_STUDY].get("codes") or {}
    return codes.get(optimizer, optimizer[0].upper())


def switch_label(config: Config, first: str, then: str, k: int, epochs: int) -> str:
    """im2016's names: ``S50-A150`` = first optimizer (code S) for 50 epochs, then A for 150."""
    return f"{switch_code(config, first)}{k}-{switch_code(config, then)}{epochs - k}"


def switch_epochs(at: Iterable[float], epochs: int) -> list[int]:
    """Switch epochs for fractions ``at`` of ``epochs`` (rounded to the nearest epoch)."""
    return sorted({int(round(f * epochs)) for f in at})


# --------------------------------------------------------------------------- checks


def _check_switch_study(config: Config, study: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for i, pair in enumerate(study["switches"]):
        problems += R.undefined_refs(f"{SWITCH_STUDY}.switches[{i}]", pair, config["optimizers"], "optimizer")
        if len(set(pair)) == 1:
            problems.append(f"{SWITCH_STUDY}.switches[{i}]: switches from {pair[0]!r} to itself; "
                            f"name two different optimizers")
    by_code: dict[str, list[str]] = {}
    for o in sorted({o for pair in study["switches"] for o in pair}):
        by_code.setdefault(switch_code(config, o), []).append(o)
    for code, names in sorted(by_code.items()):
        if len(names) > 1:
            problems.append(f"{SWITCH_STUDY}.codes: optimizers {', '.join(names)} share the code {code!r} "
                            f"in variant names; give each a distinct code, e.g. codes: "
                            f"{{{', '.join(f'{n}: {n.upper()}' for n in names)}}}")
    epochs = R.training_settings(config, study)["epochs"]
    for k in switch_epochs(study["at"], epochs):
        if not 1 <= k < epochs:
            problems.append(f"{SWITCH_STUDY}.at: a switch at epoch {k} of {epochs} is outside training; "
                            f"allowed: fractions giving epochs 1..{epochs - 1}")
    return problems


def _check_plain_study(config: Config, name: str, study: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    problems += R.undefined_refs(f"{name}.optimizers", study["optimizers"], config["optimizers"], "optimizer")
    for opt in study.get("lr_grids") or {}:
        if opt not in study["optimizers"]:
            problems.append(f"{name}.lr_grids.{opt}: {opt!r} is not one of the study's optimizers; "
                            f"allowed: {', '.join(study['optimizers'])}")
    has_grid = any(len(v) > 1 for v in (study.get("lr_grids") or {}).values())
    ds = config["datasets"].get(study["dataset"])
    if has_grid and ds is not None and not ds.get("val_size"):
        problems.append(f"datasets.{study['dataset']}.val_size: {name}.lr_grids chooses learning rates on a "
                        f"validation split; allowed: an integer >= 1")
    return problems


def check(config: Config) -> list[str]:
    problems: list[str] = []
    for name in present_studies(config):
        study = config[name]
        problems += R.undefined_refs(f"{name}.dataset", [study["dataset"]], config["datasets"], "dataset")
        problems += R.undefined_refs(f"{name}.models", study["models"], config["models"], "model")
        if name == SWITCH_STUDY:
            problems += _check_switch_study(config, study)
        else:
            problems += _check_plain_study(config, name, study)
        problems += R.check_training(config, name, study)
        problems += R.check_models_fit_data(config, name, study)
    return problems


# --------------------------------------------------------------------------- runs


def study_runs(config: Config, study_name: str) -> list[dict[str, Any]]:
    """The runs one study asks for (before merging with the other sections)."""
    study = config[study_name]
    training = R.training_settings(config, study)
    training["checkpoint_epochs"] = R.checkpoint_epochs(training)

    def spec(model: str, optimizer: str, lr: float, seed: int) -> dict[str, Any]:
        return R.train_spec(config, study["dataset"], model, optimizer, lr, seed, study["data_seed"], training)

    if study_name != SWITCH_STUDY:
        return [spec(model, opt, lr, seed) for model in study["models"] for opt in study["optimizers"]
                for lr in lr_grid(config, study_name, opt) for seed in study["init_seeds"]]
    out = []
    epochs = training["epochs"]
    ks = switch_epochs(study["at"], epochs)
    for model in study["models"]:
        for first, then in study["switches"]:
            then_spec = dict(config["optimizers"][then], lr=R.learning_rate(config["optimizers"][then]))
            for seed in study["init_seeds"]:
                prefix = spec(model, first, R.learning_rate(config["optimizers"][first]), seed)
                prefix["training"]["checkpoint_epochs"] = sorted(set(training["checkpoint_epochs"]) | set(ks))
                out.append(prefix)
                for k in ks:
                    label = switch_label(config, first, then, k, epochs)
                    out.append({
                        "run": f"{model}_{label}_init{seed}",
                        "kind": "switch",
                        "dataset": study["dataset"],
                        "model": model,
                        "model_spec": dict(config["models"][model]),
                        "optimizer": label,
                        "first": first,
                        "first_spec": dict(prefix["optimizer_spec"]),
                        "then": then,
                        "optimizer_spec": then_spec,
                        "switch_epoch": k,
                        "prefix_run": prefix["run"],
                        "init_seed": int(seed),
                        "data_seed": int(study["data_seed"]),
                        "training": dict(training),
                    })
    return out


def runs(config: Config) -> list[tuple[str, list[dict[str, Any]]]]:
    return [(name, study_runs(config, name)) for name in present_studies(config)]


def selection_groups(config: Config, study_name: str) -> dict[tuple[str, str], list[str]]:
    """``{(model, optimizer): [runs]}`` for the optimizers of a plain study with a learning-rate grid."""
    study = config[study_name]
    groups: dict[tuple[str, str], list[str]] = {}
    for model in study["models"]:
        for opt in study["optimizers"]:
            grid = lr_grid(config, study_name, opt)
            if len(grid) > 1:
                groups[(model, opt)] = [R.run_name(model, opt, lr, seed)
                                        for lr in grid for seed in study["init_seeds"]]
    return groups


def all_selection_groups(config: Config) -> dict[str, dict[tuple[str, str], list[str]]]:
    """:func:`selection_groups` of every plain study present: ``{study: {(model, optimizer): [runs]}}``."""
    return {s: selection_groups(config, s) for s in present_studies(config) if s in PLAIN_STUDIES}


def tables(config: Config) -> list[str]:
    studies = present_studies(config)
    out = [f"{s}_metrics" for s in studies] + [f"{s}_chosen_metrics" for s in studies if s in PLAIN_STUDIES]
    if any(all_selection_groups(config).values()):
        out.append("lr_selection")
    return out


def selection_table(metrics, metric: str, study: str):
    """The learning-rate selection of one grid (:func:`lossland.selection.select_learning_rate`)
    with its ``study`` as the first column: what rule ``select_lr`` writes."""
    from ...selection import select_learning_rate

    table = select_learning_rate(metrics, metric)
    table.insert(0, "study", study)
    return table


def selection_path(study: str, model: str, optimizer: str) -> str:
    """Where rule ``select_lr`` writes one grid's selection."""
    return f"{paths.RESULTS}/selection/{study}/{model}_{optimizer}.parquet"


# --------------------------------------------------------------------------- findings


def _distinct_minima(tables: Mapping[str, Any], config: Config):
    """Between-optimizer spread of the distance travelled from the init over its spread
    between inits of one optimizer (one model)."""
    import numpy as np

    from .. import findings as FD

    last = FD.last_epoch_rows(tables["optimizer_study_chosen_metrics"])
    last = last[~last["diverged"].astype(bool)]
    ratios = []
    for _, model in last.groupby("model"):
        by_opt = model.groupby("optimizer")["dist_from_init"]
        if by_opt.ngroups < 2 or by_opt.size().min() < 2:
            continue
        within = float(np.sqrt(by_opt.var(ddof=1).mean()))
        between = float(by_opt.mean().std(ddof=1))
        ratios.append(between / within if within > 0 else np.inf)
    if not ratios:
        return FD.not_run("needs two or more optimizers with two or more init seeds each")
    value = float(min(ratios))
    return FD.Measured(value, FD.verdict(value > 2.0),
                       f"per model: {', '.join(f'{r:.2f}' for r in ratios)}")


def _bn_init_dependence(tables: Mapping[str, Any], config: Config):
    """Spread of the final training loss across initialisations, without minus with BatchNorm."""
    import numpy as np

    from .. import findings as FD

    last = FD.last_epoch_rows(tables["init_study_chosen_metrics"])
    bn = last["model"].map(lambda m: bool(config["models"][m].get("batch_norm", True)))
    loss = last["train_loss"].where(np.isfinite(last["train_loss"]), np.inf)
    groups = {flag: loss[bn == flag] for flag in (True, False)}
    if min(len(g) for g in groups.values()) < 2:
        return FD.not_run("needs two or more initialisations with and without BatchNorm in init_study")
    spread = {flag: float(g.max() - g.min()) for flag, g in groups.items()}
    value = spread[False] - spread[True]
    return FD.Measured(value, FD.verdict(value > 0),
                       f"spread with BatchNorm {spread[True]:.3g}, without {spread[False]:.3g} (nats; "
                       "a run that diverged counts as infinite loss)")


def _findings():
    from ..findings import Finding

    return (
        Finding("distinct_minima", "Different optimizers reach characteristically different minima",
                "im2016 §4.2, Fig 4-5",
                "between-optimizer standard deviation of the distance travelled from the init, over the "
                "pooled standard deviation between inits of one optimizer (the smallest over models)",
                "reproduced if above 2: optimizers differ more than restarts of one optimizer do",
                ("optimizer_study_chosen_metrics",), _distinct_minima, "optimizer_study"),
        Finding("bn_init_dependence", "Without BatchNorm the quality of the minimum depends much more on the init",
                "im2016 §4.4, A.5, Table 2",
                "spread (max − min) of the final training loss across initialisations without BatchNorm "
                "minus the spread with BatchNorm",
                "reproduced if above 0", ("init_study_chosen_metrics",), _bn_init_dependence, "init_study"),
    )


FINDINGS = _findings()
