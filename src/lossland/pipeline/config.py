"""A workflow config, checked: the schema (a base plus one fragment per family) and the cross-check.

The Snakemake workflow calls :func:`check_config` before any job is planned: it
validates the config against the schema, filling its defaults, and then checks
what a schema cannot (names that must refer to defined entries, optimizer
hyper-parameters, options only some architectures take, and every family's own
rules). Every problem is reported in one :class:`ConfigError` whose lines each
name the key and the allowed values.

The schema is ``workflow/schemas/config.schema.yaml`` (device, threads, data
sets, models, optimizers, training) with each family's fragment
``workflow/schemas/<family>.schema.yaml`` merged in: its ``properties`` become
top-level sections and its ``$defs`` join the base's.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

ARCH_OPTIONS = {
    "nin": {"width", "depth", "batch_norm", "dropout"},
    "vgg": {"width", "depth", "batch_norm", "dropout", "conv_dropout"},
    "resnet": {"width", "depth", "batch_norm", "skip"},
    "mlp": {"hidden", "activation", "output_bias", "batch_norm", "binary"},
    "lstm": {"embedding", "hidden", "layers", "dropout", "tie_weights"},
}
PATH_SOURCES = ("imagefolder", "python-archive")
#: the text sources (:data:`lossland.data.TEXT_SOURCES`, kept here so that the pipeline reads them without torch)
TEXT_SOURCES = ("ptb-embedded", "ptb")
#: data set keys that only image sources read (the text ones: :data:`lossland.data.TEXT_OPTIONS`)
IMAGE_KEYS = ("download", "classes", "train_size", "test_size", "val_size", "image_size", "subset_seed")


#: the schema's defaults of the data set keys (a key at its default was not necessarily written)
_KEY_DEFAULTS = {"download": False, "classes": None, "train_size": None, "test_size": None, "val_size": 0,
                 "image_size": None, "subset_seed": 0, "val_split": None, "train_tokens": None, "test_tokens": None,
                 "val_tokens": None, "vocab_size": None, "seq_len": 35}


class ConfigError(ValueError):
    """A config that cannot run; the message names each offending key and its allowed values."""


def default_schema_dir() -> Path:
    """The workflow's schemas, when this package is used from a checkout of the repository."""
    return Path(__file__).resolve().parents[3] / "workflow" / "schemas"


def load_schema(directory: str | Path | None = None) -> dict:
    """The base schema with every family's fragment merged in (see the module docstring)."""
    from .families import schema_fragments

    folder = Path(directory or default_schema_dir())
    schema = yaml.safe_load((folder / "config.schema.yaml").read_text())
    for name in schema_fragments():
        fragment = yaml.safe_load((folder / name).read_text()) or {}
        for key in ("properties", "$defs"):
            clash = set(schema.setdefault(key, {})) & set(fragment.get(key) or {})
            if clash:
                raise ValueError(f"{folder / name}: {key} {', '.join(sorted(clash))} are defined twice")
            schema[key].update(fragment.get(key) or {})
    return schema


def _key(path: Iterable[Any]) -> str:
    """``a.b[2].c``: mapping keys joined by dots, list positions in brackets."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


_TYPE_WORDS = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
               "array": "a list", "object": "a mapping", "null": "null"}


def _allowed(schema: Mapping[str, Any]) -> str:
    """What a (sub)schema accepts, in words: ``an integer >= 1``, ``a list of 2 items``."""
    if "enum" in schema:
        return ", ".join(repr(v) for v in schema["enum"])
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    words = " or ".join(_TYPE_WORDS.get(t, t) for t in types) or "a value"
    bounds = [f"{op} {schema[k]}" for k, op in (("minimum", ">="), ("exclusiveMinimum", ">"),
                                                 ("maximum", "<="), ("exclusiveMaximum", "<")) if k in schema]
    if bounds:
        words += " " + " and ".join(bounds)
    lo, hi = schema.get("minItems"), schema.get("maxItems")
    limits = ([f"at least {lo}"] if lo else []) + ([f"at most {hi}"] if hi is not None else [])
    if lo is not None and lo == hi:
        words += f" of {lo} item{'s' * (lo != 1)}"
    elif limits:
        words += f" of {' and '.join(limits)} items"
    if schema.get("uniqueItems"):
        words += ", without repeats"
    return words


def _option_text(sub: Mapping[str, Any]) -> str:
    """One alternative of a oneOf/anyOf in words: ``integer >= 1``, ``positive_int``, ``array of positive_int``."""
    if "$ref" in sub:
        return sub["$ref"].rsplit("/", 1)[-1]
    if "type" not in sub:
        return ""
    desc = str(sub["type"])
    if "minimum" in sub:
        desc += f" >= {sub['minimum']}"
    if sub["type"] == "array" and isinstance(sub.get("items"), Mapping):
        desc += f" of {_option_text(sub['items']) or 'items'}"
    return desc


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
    if error.validator in ("oneOf", "anyOf"):
        # e.g. `size`: null or a positive integer; MLP/LSTM `hidden`: a list of widths or one integer
        options = [_option_text(sub) for sub in error.validator_value]
        options = [o for o in options if o]
        return f"{key}: {error.instance!r} is not allowed; allowed: {' or '.join(options) or 'see schema'}"
    if error.validator in ("type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems",
                           "maxItems", "uniqueItems"):
        return f"{key}: {error.message}; allowed: {_allowed(schema)}"
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


def cross_check(config: Mapping[str, Any]) -> list[str]:
    """Problems a JSON schema cannot see, one line each (empty when all is well): the
    shared sections' (data sets, models, optimizers), then every family's."""
    from ..models import NIN_STAGES, VGG_DEPTHS, resnet_depth_ok, resnet_depths_text  # torch: the archs' constants
    from ..optim import check_spec
    from .families import check

    problems: list[str] = []
    for name, ds in config["datasets"].items():
        if ds["source"] in PATH_SOURCES and not ds.get("path"):
            problems.append(f"datasets.{name}.path: required for source {ds['source']!r} "
                            f"(a folder or archive)")
        elif ds["source"] in PATH_SOURCES and not Path(ds["path"]).exists():
            problems.append(f"datasets.{name}.path: {ds['path']} does not exist (relative paths are read from "
                            f"{Path.cwd()}); allowed: an existing folder or archive for source {ds['source']!r}")
        if ds["source"] == "ptb" and not ds.get("path"):
            problems.append(f"datasets.{name}.path: required for source 'ptb'; allowed: a folder with ptb.train.txt, "
                            f"ptb.valid.txt and ptb.test.txt")
        text = ds["source"] in TEXT_SOURCES
        from ..data import TEXT_OPTIONS as TEXT_KEYS  # prepare_text's keywords

        # keys the schema filled with defaults are left out: only what the user wrote counts
        for key in TEXT_KEYS if not text else IMAGE_KEYS:
            if key in ds and ds[key] != _KEY_DEFAULTS.get(key):
                problems.append(f"datasets.{name}.{key}: not read by source {ds['source']!r}; allowed keys: "
                                + ", ".join(("path",) + (TEXT_KEYS if text else IMAGE_KEYS)))
    for name, spec in config["models"].items():
        arch = spec["arch"]
        allowed = ARCH_OPTIONS[arch]
        hidden = spec.get("hidden")
        if arch == "lstm" and hidden is not None and not isinstance(hidden, int):
            problems.append(f"models.{name}.hidden: {hidden!r}; allowed for lstm: one integer (the state's size)")
        if arch == "lstm" and spec.get("tie_weights") and spec.get("embedding", 200) != spec.get("hidden", 200):
            problems.append(f"models.{name}.tie_weights: needs embedding == hidden (got {spec.get('embedding', 200)} "
                            f"and {spec.get('hidden', 200)}); allowed: equal sizes, or tie_weights false")
        if arch == "mlp" and isinstance(hidden, int):
            problems.append(f"models.{name}.hidden: {hidden!r}; allowed for mlp: a list of layer widths")
        for key in sorted(set(spec) - allowed - {"arch", "init"}):
            problems.append(f"models.{name}.{key}: not an option of arch {arch!r}; "
                            f"allowed keys: {', '.join(sorted(allowed | {'arch', 'init'}))}")
        depth = spec.get("depth")
        if arch == "nin" and depth is not None and not 1 <= depth <= len(NIN_STAGES):
            problems.append(f"models.{name}.depth: {depth} is not allowed for nin; allowed values: 1, 2, 3")
        if arch == "vgg" and depth is not None and depth not in VGG_DEPTHS:
            problems.append(f"models.{name}.depth: {depth} is not allowed for vgg; allowed values: "
                            f"{', '.join(map(str, sorted(VGG_DEPTHS)))}")
        if arch == "resnet" and depth is not None and not resnet_depth_ok(depth):
            problems.append(f"models.{name}.depth: {depth} is not allowed for resnet; allowed values: "
                            f"{resnet_depths_text()}")
    for name, spec in config["optimizers"].items():
        try:
            check_spec(spec)
        except ValueError as exc:
            problems.append(f"optimizers.{name}: {exc}")
    return problems + check(config)


def check_config(config: Mapping[str, Any], schema: Mapping[str, Any] | None = None) -> dict:
    """Validate ``config`` fully; return it with defaults filled in, or raise :class:`ConfigError`."""
    full = validate_schema(config, schema)
    problems = cross_check(full)
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
    return full
