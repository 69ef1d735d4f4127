"""Sections that analyse the chosen runs of a training study (``hessian``, ``landscape``, ...).

Such a section names its ``study`` and may restrict itself to some of the study's
``models``, ``init_seeds`` and ``optimizers``. The checks and the run filter are
the same for every analysing family, so they live here once.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping


def in_analysis(cfg: Mapping[str, Any], spec: Mapping[str, Any], optimizers: bool = True) -> bool:
    """Whether the run ``spec`` lies within an analysis section's ``models``, ``init_seeds``
    and, with ``optimizers``, its ``optimizers`` (a switch run also by its first optimizer)."""
    if cfg.get("models") and spec["model"] not in cfg["models"]:
        return False
    if cfg.get("init_seeds") and spec["init_seed"] not in cfg["init_seeds"]:
        return False
    if optimizers and cfg.get("optimizers"):
        first = spec["first"] if spec.get("kind") == "switch" else spec["optimizer"]
        if spec["optimizer"] not in cfg["optimizers"] and first not in cfg["optimizers"]:
            return False
    return True


def analysis_runs(cfg: Mapping[str, Any], run_table: Mapping[str, Mapping[str, Any]],
                  chosen: Iterable[str]) -> list[str]:
    """The runs among ``chosen`` (a study's chosen runs) that section ``cfg`` restricts itself to."""
    return [name for name in chosen if in_analysis(cfg, run_table[name])]


def study_optimizers(study: Mapping[str, Any]) -> list[str]:
    """The optimizers a study trains (a switch study: those of its switches)."""
    return list(study.get("optimizers") or sorted({o for pair in study.get("switches", []) for o in pair}))


def check_section(config: Mapping[str, Any], section: str) -> tuple[list[str], dict | None]:
    """What every analysis section shares: its study is configured, and its ``models``,
    ``init_seeds`` and ``optimizers`` are the study's. Returns the problems and the
    study (``None`` when the section is absent or its study is not configured)."""
    cfg = config.get(section)
    if not cfg:
        return [], None
    name = cfg["study"]
    if not config.get(name):
        from .families import present_sections

        return [f"{section}.study: {name!r} is not configured; configured studies: "
                f"{', '.join(present_sections(config, trains=True)) or 'none'}"], None
    study = config[name]
    problems = []
    for key, allowed in (("models", study["models"]), ("init_seeds", study.get("init_seeds") or [0]),
                         ("optimizers", study_optimizers(study))):
        for v in cfg.get(key) or []:
            if v not in allowed:
                problems.append(f"{section}.{key}: {v!r} is not one of {name}'s {key}; "
                                f"allowed: {', '.join(map(str, allowed))}")
    return problems, study


def check_split(config: Mapping[str, Any], key: str, study: Mapping[str, Any], splits: Iterable[str]) -> list[str]:
    """A ``val`` split (config key ``key``) needs the study's data set to hold one out."""
    ds = config["datasets"].get(study["dataset"], {})
    if "val" in splits and not ds.get("val_size"):
        return [f"{key}: 'val' needs datasets.{study['dataset']}.val_size; allowed: train, test"]
    return []
