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


def cross_check(config: Mapping[str, Any]) -> list[str]:
    """Problems a JSON schema cannot see, one line each (empty when all is well)."""
    problems: list[str] = []
    datasets, models, optimizers = config["datasets"], config["models"], config["optimizers"]

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

    study = config["optimizer_study"]

    def refs(key: str, values: Iterable[str], defined: Mapping[str, Any], kind: str) -> None:
        for v in values:
            if v not in defined:
                problems.append(f"optimizer_study.{key}: {kind} {v!r} is not defined; "
                                f"defined {kind}s: {', '.join(sorted(defined))}")

    refs("dataset", [study["dataset"]], datasets, "dataset")
    refs("models", study["models"], models, "model")
    refs("optimizers", study["optimizers"], optimizers, "optimizer")

    training = training_settings(config, study)
    for e in training["checkpoint_epochs"]:
        if e > training["epochs"]:
            problems.append(f"training.checkpoint_epochs: epoch {e} is past the last epoch "
                            f"({training['epochs']}); allowed: 0..{training['epochs']}")
    ds = datasets.get(study["dataset"])
    if ds is not None:
        for mname in study["models"]:
            spec = models.get(mname)
            if spec and spec.get("binary") and len(ds.get("classes") or range(10)) != 2:
                problems.append(f"models.{mname}.binary: needs a two-class data set; "
                                f"datasets.{study['dataset']}.classes has "
                                f"{len(ds.get('classes') or range(10))}")
            if spec and spec["arch"] == "vgg" and (ds.get("image_size") or 32) < 32:
                problems.append(f"models.{mname}: vgg needs images of at least 32 pixels; "
                                f"datasets.{study['dataset']}.image_size is {ds.get('image_size')}")
    return problems


def check_config(config: Mapping[str, Any], schema: Mapping[str, Any] | None = None) -> dict:
    """Validate ``config`` fully; return it with defaults filled in, or raise :class:`ConfigError`."""
    full = validate_schema(config, schema)
    problems = cross_check(full)
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
    return full


def run_name(model: str, optimizer: str, init_seed: int) -> str:
    return f"{model}_{optimizer}_init{init_seed}"


def runs(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The run table: ``{run name: run spec}`` for every run the studies ask for.

    A run spec holds everything that defines the run's results: data set name,
    model name and spec, optimizer name and spec, init seed, data seed and the
    resolved training settings (with the checkpoint epochs).
    """
    table: dict[str, dict[str, Any]] = {}
    study = config["optimizer_study"]
    training = training_settings(config, study)
    training["checkpoint_epochs"] = checkpoint_epochs(training)
    for model in study["models"]:
        for opt in study["optimizers"]:
            for seed in study["init_seeds"]:
                name = run_name(model, opt, seed)
                table[name] = {
                    "run": name,
                    "study": "optimizer_study",
                    "dataset": study["dataset"],
                    "model": model,
                    "model_spec": dict(config["models"][model]),
                    "optimizer": opt,
                    "optimizer_spec": dict(config["optimizers"][opt]),
                    "init_seed": int(seed),
                    "data_seed": int(study["data_seed"]),
                    "training": dict(training),
                }
    return table


def inits(run_table: Mapping[str, Mapping[str, Any]]) -> set[tuple[str, str, int]]:
    """The ``(dataset, model, init seed)`` triples whose initial weights the runs need."""
    return {(r["dataset"], r["model"], r["init_seed"]) for r in run_table.values()}
