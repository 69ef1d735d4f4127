"""From a workflow config to checked run specifications.

The Snakemake workflow calls :func:`check_config` before any job is planned:
it validates the config against the JSON schema and then checks what a schema
cannot (names that must refer to defined entries, optimizer hyper-parameters,
options that only some architectures take). Every problem is reported in one
:class:`ConfigError` whose lines each name the key and the allowed values.

:func:`runs` expands the studies of a config into the run table: one entry per
trained model, with everything that defines it (so a change to any of it
reruns that run and only it). Pure Python: no module here imports Snakemake.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from . import optim
from .models import ARCHS, NIN_STAGES, VGG_DEPTHS

TRAINING_DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 128,
    "augment": False,
    "eval_batch_size": "auto",
    "channels_last": "auto",
    "drop_last": False,
    "checkpoint_every": 0,
    "checkpoint_epochs": [],
}
ARCH_OPTIONS = {
    "nin": {"width", "depth", "batch_norm", "dropout"},
    "vgg": {"width", "depth", "batch_norm", "dropout", "conv_dropout"},
    "mlp": {"hidden", "activation", "output_bias", "batch_norm", "binary"},
}
PATH_SOURCES = ("imagefolder", "python-archive")


class ConfigError(ValueError):
    """A config that cannot run; the message names each offending key and its allowed values."""


def default_schema_path() -> Path:
    """The workflow's schema, when this package is used from a checkout of the repository."""
    return Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def load_schema(path: str | Path | None = None) -> dict:
    return yaml.safe_load(Path(path or default_schema_path()).read_text())


def _key(path: Iterable[Any]) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "<top level>"


def _describe(error) -> str:
    """One line for a jsonschema error: the key, what is wrong, what is allowed."""
    key = _key(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value)
        return f"{key}: {error.instance!r} is not allowed; allowed values: {allowed}"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in known)
        where = key
        return f"{where}: unknown key(s) {', '.join(map(repr, extra))}; allowed keys: {', '.join(known)}"
    if error.validator == "required":
        return f"{key}: {error.message}"
    if error.validator == "pattern" or (error.validator == "propertyNames"):
        return f"{key}: {error.message} (names use letters, digits, '.' and '-', and start with a letter or digit)"
    if error.validator == "oneOf":
        # e.g. `size`: null or a positive integer
        options = []
        for sub in error.validator_value:
            if "type" in sub:
                desc = sub["type"]
                if "minimum" in sub:
                    desc += f" >= {sub['minimum']}"
                options.append(str(desc))
        return f"{key}: {error.instance!r} is not allowed; allowed: {' or '.join(options) or 'see schema'}"
    return f"{key}: {error.message}"


def _with_defaults(validator_class):
    from jsonschema import validators

    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(prop, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def validate_schema(config: Mapping[str, Any], schema: Mapping[str, Any] | None = None) -> dict:
    """Validate against the JSON schema; return a copy with the schema's defaults filled in."""
    from jsonschema import Draft202012Validator

    schema = dict(schema or load_schema())
    config = copy.deepcopy(dict(config))
    errors = sorted(Draft202012Validator(schema).iter_errors(config),
                    key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if errors:
        lines = sorted({_describe(e) for e in errors})
        raise ConfigError("invalid config:\n  " + "\n  ".join(lines))
    _with_defaults(Draft202012Validator)(schema).validate(config)
    return config


def training_settings(config: Mapping[str, Any], study: Mapping[str, Any]) -> dict[str, Any]:
    """Training settings of a study: library defaults <- config `training` <- study `training`."""
    merged = dict(TRAINING_DEFAULTS)
    merged.update(config.get("training") or {})
    merged.update(study.get("training") or {})
    merged["checkpoint_epochs"] = sorted(set(merged.get("checkpoint_epochs") or []))
    return merged


def checkpoint_epochs(training: Mapping[str, Any], extra: Iterable[int] = ()) -> list[int]:
    """Epochs whose checkpoints a run saves: every ``checkpoint_every``-th, the listed ones and ``extra``."""
    epochs = int(training["epochs"])
    every = int(training.get("checkpoint_every") or 0)
    chosen = set(training.get("checkpoint_epochs") or []) | set(extra)
    if every:
        chosen |= set(range(every, epochs + 1, every))
    return sorted(e for e in chosen if 0 <= e <= epochs)


PLAIN_STUDIES = ("optimizer_study", "rk2_study", "init_study")
SWITCH_STUDY = "switch_study"
STUDIES = (*PLAIN_STUDIES, SWITCH_STUDY)


def present_studies(config: Mapping[str, Any]) -> list[str]:
    return [name for name in STUDIES if config.get(name)]


def lr_tag(lr: float) -> str:
    """Compact, stable text of a learning rate for run names (0.1 -> '0.1', 1e-4 -> '0.0001')."""
    return f"{float(lr):g}"


def run_name(model: str, optimizer: str, lr: float, init_seed: int) -> str:
    """``<model>_<optimizer>-lr<lr>_init<seed>``: the learning rate is part of a run's name,
    so every value of a grid is its own cached run and a changed rate never overwrites
    the results of the old one."""
    return f"{model}_{optimizer}-lr{lr_tag(lr)}_init{init_seed}"


def switch_code(config: Mapping[str, Any], optimizer: str) -> str:
    codes = config[SWITCH_STUDY].get("codes") or {}
    return codes.get(optimizer, optimizer[0].upper())


def switch_label(config: Mapping[str, Any], first: str, then: str, k: int, epochs: int) -> str:
    """im2016's names: ``S50-A150`` = first optimizer (code S) for 50 epochs, then A for 150."""
    return f"{switch_code(config, first)}{k}-{switch_code(config, then)}{epochs - k}"


def switch_epochs(at: Iterable[float], epochs: int) -> list[int]:
    """Switch epochs for fractions ``at`` of ``epochs`` (rounded to the nearest epoch)."""
    return sorted({int(round(f * epochs)) for f in at})


def lr_grid(config: Mapping[str, Any], study: str, optimizer: str) -> list[float]:
    """The learning rates a plain study trains ``optimizer`` with (its grid, or its own lr)."""
    grids = config[study].get("lr_grids") or {}
    if optimizer in grids:
        return [float(v) for v in grids[optimizer]]
    return [optim.learning_rate(config["optimizers"][optimizer])]


def cross_check(config: Mapping[str, Any]) -> list[str]:
    """Problems a JSON schema cannot see, one line each (empty when all is well)."""
    problems: list[str] = []
    datasets, models, optimizers = config["datasets"], config["models"], config["optimizers"]

    if not present_studies(config):
        problems.append(f"<top level>: no study is configured; allowed studies: {', '.join(STUDIES)}")
    for name, ds in datasets.items():
        if ds["source"] in PATH_SOURCES and not ds.get("path"):
            problems.append(f"datasets.{name}.path: required for source {ds['source']!r} "
                            f"(a folder or archive)")
    for name, spec in models.items():
        arch = spec["arch"]
        allowed = ARCH_OPTIONS[arch]
        for key in sorted(set(spec) - allowed - {"arch", "init"}):
            problems.append(f"models.{name}.{key}: not an option of arch {arch!r}; "
                            f"allowed keys: {', '.join(sorted(allowed | {'arch', 'init'}))}")
        depth = spec.get("depth")
        if arch == "nin" and depth is not None and not 1 <= depth <= len(NIN_STAGES):
            problems.append(f"models.{name}.depth: {depth} is not allowed for nin; allowed values: 1, 2, 3")
        if arch == "vgg" and depth is not None and depth not in VGG_DEPTHS:
            problems.append(f"models.{name}.depth: {depth} is not allowed for vgg; allowed values: "
                            f"{', '.join(map(str, sorted(VGG_DEPTHS)))}")
    for name, spec in optimizers.items():
        try:
            optim.check_spec(spec)
        except ValueError as exc:
            problems.append(f"optimizers.{name}: {exc}")

    def refs(key: str, values: Iterable[str], defined: Mapping[str, Any], kind: str) -> None:
        for v in values:
            if v not in defined:
                problems.append(f"{key}: {kind} {v!r} is not defined; "
                                f"defined {kind}s: {', '.join(sorted(defined))}")

    for study_name in present_studies(config):
        study = config[study_name]
        refs(f"{study_name}.dataset", [study["dataset"]], datasets, "dataset")
        refs(f"{study_name}.models", study["models"], models, "model")
        if study_name == SWITCH_STUDY:
            for i, pair in enumerate(study["switches"]):
                refs(f"{study_name}.switches[{i}]", pair, optimizers, "optimizer")
                if len(set(pair)) == 1:
                    problems.append(f"{study_name}.switches[{i}]: switches from {pair[0]!r} to itself; "
                                    f"name two different optimizers")
            used = sorted({o for pair in study["switches"] for o in pair})
            by_code: dict[str, list[str]] = {}
            for o in used:
                by_code.setdefault(switch_code(config, o), []).append(o)
            for code, names in sorted(by_code.items()):
                if len(names) > 1:
                    problems.append(f"{study_name}.codes: optimizers {', '.join(names)} share the code {code!r} "
                                    f"in variant names; give each a distinct code, e.g. codes: "
                                    f"{{{', '.join(f'{n}: {n.upper()}' for n in names)}}}")
        else:
            refs(f"{study_name}.optimizers", study["optimizers"], optimizers, "optimizer")
            for opt in study.get("lr_grids") or {}:
                if opt not in study["optimizers"]:
                    problems.append(f"{study_name}.lr_grids.{opt}: {opt!r} is not one of the study's "
                                    f"optimizers; allowed: {', '.join(study['optimizers'])}")
            has_grid = any(len(v) > 1 for v in (study.get("lr_grids") or {}).values())
            ds = datasets.get(study["dataset"])
            if has_grid and ds is not None and not ds.get("val_size"):
                problems.append(f"datasets.{study['dataset']}.val_size: {study_name}.lr_grids chooses "
                                f"learning rates on a validation split; allowed: an integer >= 1")
        training = training_settings(config, study)
        for e in training["checkpoint_epochs"]:
            if e > training["epochs"]:
                problems.append(f"training.checkpoint_epochs: epoch {e} is past the last epoch "
                                f"({training['epochs']}) of {study_name}; allowed: 0..{training['epochs']}")
        if study_name == SWITCH_STUDY:
            for k in switch_epochs(study["at"], training["epochs"]):
                if not 1 <= k < training["epochs"]:
                    problems.append(f"{study_name}.at: a switch at epoch {k} of {training['epochs']} is "
                                    f"outside training; allowed: fractions giving epochs 1..{training['epochs'] - 1}")
        ds = datasets.get(study["dataset"])
        if ds is None:
            continue
        for mname in study["models"]:
            spec = models.get(mname)
            if spec and spec.get("binary") and len(ds.get("classes") or range(10)) != 2:
                problems.append(f"models.{mname}.binary: needs a two-class data set; "
                                f"datasets.{study['dataset']}.classes has "
                                f"{len(ds.get('classes') or range(10))}")
            if spec and spec["arch"] == "vgg" and (ds.get("image_size") or 32) < 32:
                problems.append(f"models.{mname}: vgg needs images of at least 32 pixels; "
                                f"datasets.{study['dataset']}.image_size is {ds.get('image_size')}")
    problems += _check_hessian(config)
    problems += _check_landscape(config)
    if not problems:
        try:
            runs(config)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def algorithm_name(spec: Mapping[str, Any]) -> str:
    def one(opt: Mapping[str, Any]) -> str:
        if opt["algorithm"] == "rk2":
            return f"rk2-{opt.get('method', 'heun')}({opt.get('base', 'sgd')})"
        return opt["algorithm"]

    if spec.get("kind") == "switch":
        return f"{one(spec['first_spec'])}->{one(spec['optimizer_spec'])}"
    return one(spec["optimizer_spec"])


def run_ids(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The columns that identify a run in analysis tables."""
    return {"run": spec["run"], "dataset": spec["dataset"], "model": spec["model"],
            "optimizer": spec["optimizer"], "algorithm": algorithm_name(spec),
            "lr": optim.learning_rate(spec["optimizer_spec"]), "seed": int(spec["init_seed"])}


def in_analysis(cfg: Mapping[str, Any], spec: Mapping[str, Any], optimizers: bool = True) -> bool:
    """Whether the run ``spec`` lies within an analysis section's (``hessian``,
    ``landscape``) ``models``, ``init_seeds`` and, with ``optimizers``, its
    ``optimizers`` (a switch run also by its first optimizer)."""
    if cfg.get("models") and spec["model"] not in cfg["models"]:
        return False
    if cfg.get("init_seeds") and spec["init_seed"] not in cfg["init_seeds"]:
        return False
    if optimizers and cfg.get("optimizers"):
        first = spec["first"] if spec.get("kind") == "switch" else spec["optimizer"]
        if spec["optimizer"] not in cfg["optimizers"] and first not in cfg["optimizers"]:
            return False
    return True


def analysis_runs(config: Mapping[str, Any], section: str, chosen: Iterable[str]) -> list[str]:
    """The runs among ``chosen`` (a study's chosen runs) that an analysis section
    restricts itself to (:func:`in_analysis`)."""
    table = runs(config)
    return [name for name in chosen if in_analysis(config[section], table[name])]


def _check_analysis_section(config: Mapping[str, Any], section: str) -> tuple[list[str], dict | None]:
    """Checks every analysis section (``hessian``, ``landscape``) shares: its study is
    configured, and its ``models``, ``init_seeds`` and ``optimizers`` are the study's.
    Returns the problems and the study (``None`` when the section is absent or its
    study is not configured: nothing more to check)."""
    cfg = config.get(section)
    if not cfg:
        return [], None
    name = cfg["study"]
    if not config.get(name):
        return [f"{section}.study: {name!r} is not configured; configured studies: "
                f"{', '.join(present_studies(config)) or 'none'}"], None
    study = config[name]
    problems = []
    for key, allowed in (("models", study["models"]), ("init_seeds", study.get("init_seeds") or [0]),
                         ("optimizers", study.get("optimizers") or sorted({o for p in study.get("switches", [])
                                                                            for o in p}))):
        for v in cfg.get(key) or []:
            if v not in allowed:
                problems.append(f"{section}.{key}: {v!r} is not one of {name}'s {key}; "
                                f"allowed: {', '.join(map(str, allowed))}")
    return problems, study


def _saved_epochs(config: Mapping[str, Any], study: Mapping[str, Any]) -> set[int]:
    """Epochs whose weights a study's runs keep: 0 (the init), the saved checkpoints, the last."""
    training = training_settings(config, study)
    return set(checkpoint_epochs(training)) | {0, int(training["epochs"])}


def _check_hessian(config: Mapping[str, Any]) -> list[str]:
    problems, study = _check_analysis_section(config, "hessian")
    if study is None:
        return problems
    cfg = config["hessian"]
    name = cfg["study"]
    saved = _saved_epochs(config, study)
    for e in cfg.get("epochs") or []:
        if e not in saved:
            problems.append(f"hessian.epochs: epoch {e} is not saved by {name}; allowed: "
                            f"{', '.join(map(str, sorted(saved)))} (see training.checkpoint_every)")
    settings = cfg.get("settings") or {}
    method = settings.get("trace_method", "deflated")
    least = {"deflated": 2, "hutch++": 3}.get(method, 1)
    if settings.get("trace_probes", least) < least:
        problems.append(f"hessian.settings.trace_probes: {settings['trace_probes']} is too few for "
                        f"{method}; allowed: {least} or more")
    if settings.get("trace_tol") is not None and method not in ("deflated", "hutchinson"):
        problems.append(f"hessian.settings.trace_tol: not used by trace_method {method}; allowed: null, "
                        f"or trace_method deflated or hutchinson")
    ds = config["datasets"].get(study["dataset"], {})
    if cfg.get("split") == "val" and not ds.get("val_size"):
        problems.append(f"hessian.split: 'val' needs datasets.{study['dataset']}.val_size; allowed: train, test")
    return problems


def _check_landscape(config: Mapping[str, Any]) -> list[str]:
    problems, study = _check_analysis_section(config, "landscape")
    if study is None:
        return problems
    cfg = config["landscape"]
    name = cfg["study"]
    kinds = cfg.get("kinds") or []
    corners = cfg.get("bilinear_optimizers") or []
    if "bilinear" in kinds:
        if len(corners) != 4:
            problems.append(f"landscape.bilinear_optimizers: the bilinear plane needs exactly 4 optimizers, "
                            f"got {len(corners)}; allowed: 4 of {', '.join(study['optimizers'])}")
        for v in corners:
            if v not in study["optimizers"]:
                problems.append(f"landscape.bilinear_optimizers: {v!r} is not one of {name}'s optimizers; "
                                f"allowed: {', '.join(study['optimizers'])}")
    ds = config["datasets"].get(study["dataset"], {})
    if "val" in (cfg.get("splits") or []) and not ds.get("val_size"):
        problems.append(f"landscape.splits: 'val' needs datasets.{study['dataset']}.val_size; allowed: train, test")
    saved = _saved_epochs(config, study)
    if "pca" in kinds:
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
        if not config.get(SWITCH_STUDY):
            problems.append("landscape.switching.enabled: needs switch_study; allowed: false, "
                            "or configure switch_study")
        else:
            configured = [list(p) for p in config[SWITCH_STUDY]["switches"]]
            for pair in sw.get("switches") or []:
                if list(pair) not in configured:
                    problems.append(f"landscape.switching.switches: {list(pair)} is not one of switch_study.switches; "
                                    f"allowed: {', '.join(map(str, configured))}")
    return problems


def check_config(config: Mapping[str, Any], schema: Mapping[str, Any] | None = None) -> dict:
    """Validate ``config`` fully; return it with defaults filled in, or raise :class:`ConfigError`."""
    full = validate_schema(config, schema)
    problems = cross_check(full)
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
    return full


def _train_spec(config: Mapping[str, Any], study: Mapping[str, Any], model: str, optimizer: str,
                lr: float, seed: int, training: Mapping[str, Any]) -> dict[str, Any]:
    opt_spec = dict(config["optimizers"][optimizer], lr=float(lr))
    return {
        "run": run_name(model, optimizer, lr, seed),
        "kind": "train",
        "dataset": study["dataset"],
        "model": model,
        "model_spec": dict(config["models"][model]),
        "optimizer": optimizer,
        "optimizer_spec": opt_spec,
        "init_seed": int(seed),
        "data_seed": int(study["data_seed"]),
        "training": dict(training),
    }


def _without_checkpoints(spec: Mapping[str, Any]) -> dict:
    out = dict(spec)
    out["training"] = {k: v for k, v in spec["training"].items() if k != "checkpoint_epochs"}
    return out


def study_runs(config: Mapping[str, Any], study_name: str) -> list[dict[str, Any]]:
    """The runs one study asks for (before merging with the other studies)."""
    study = config[study_name]
    training = training_settings(config, study)
    training["checkpoint_epochs"] = checkpoint_epochs(training)
    out = []
    if study_name != SWITCH_STUDY:
        for model in study["models"]:
            for opt in study["optimizers"]:
                for lr in lr_grid(config, study_name, opt):
                    for seed in study["init_seeds"]:
                        out.append(_train_spec(config, study, model, opt, lr, seed, training))
        return out
    epochs = training["epochs"]
    for model in study["models"]:
        for first, then in study["switches"]:
            first_lr = optim.learning_rate(config["optimizers"][first])
            then_spec = dict(config["optimizers"][then], lr=optim.learning_rate(config["optimizers"][then]))
            for seed in study["init_seeds"]:
                prefix = _train_spec(config, study, model, first, first_lr, seed, training)
                ks = switch_epochs(study["at"], epochs)
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


def runs(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The run table: ``{run name: run spec}`` for every run the studies ask for.

    A run spec holds everything that defines the run's results: data set, model
    name and spec, optimizer name and spec (with its learning rate), init seed,
    data seed and the resolved training settings. A run asked for by several
    studies is trained once; its checkpoint epochs are the union of the requests.
    Two studies asking for one name with different definitions is an error.
    """
    table: dict[str, dict[str, Any]] = {}
    owner: dict[str, str] = {}
    for study_name in present_studies(config):
        for spec in study_runs(config, study_name):
            name = spec["run"]
            if name not in table:
                table[name], owner[name] = spec, study_name
                continue
            if _without_checkpoints(table[name]) != _without_checkpoints(spec):
                raise ConfigError(
                    f"{study_name}: run {name!r} is also defined by {owner[name]} with other settings "
                    f"(training or data seed differ); give one of the studies other optimizer or model "
                    f"names, or the same settings")
            merged = sorted(set(table[name]["training"]["checkpoint_epochs"])
                            | set(spec["training"]["checkpoint_epochs"]))
            table[name]["training"]["checkpoint_epochs"] = merged
    return table


def study_members(config: Mapping[str, Any], study_name: str) -> list[dict[str, Any]]:
    """The runs of one study with their roles (for tables, selection and figures)."""
    table = runs(config)
    return [table[spec["run"]] for spec in study_runs(config, study_name)]


def selection_groups(config: Mapping[str, Any], study_name: str) -> dict[tuple[str, str], list[str]]:
    """``{(model, optimizer): [runs]}`` for the optimizers of a plain study with a learning-rate grid."""
    study = config[study_name]
    groups: dict[tuple[str, str], list[str]] = {}
    for model in study["models"]:
        for opt in study["optimizers"]:
            grid = lr_grid(config, study_name, opt)
            if len(grid) > 1:
                groups[(model, opt)] = [run_name(model, opt, lr, seed)
                                        for lr in grid for seed in study["init_seeds"]]
    return groups


def inits(run_table: Mapping[str, Mapping[str, Any]]) -> set[tuple[str, str, int]]:
    """The ``(dataset, model, init seed)`` triples whose initial weights the runs need."""
    return {(r["dataset"], r["model"], r["init_seed"]) for r in run_table.values()}
