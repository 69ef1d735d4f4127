"""What a config costs, per family, in floating-point work and in time at a given rate.

    python tools/estimate_preset.py config/gpu.yaml [--tflops 20] [--overhead 5]

Counts from the config itself, with the workflow's own planning functions (the run
table, the landscape plan, the Hessian points, the reparam sweeps, the curve pairs and
walks): every training epoch (the minibatch steps on the training split, RK2 at two
gradients a step, and the evaluation of every split after it), every landscape point on
every split, every Hessian-vector product at its upper bound (``max_iter`` Lanczos steps
at both ends of the spectrum, the trace and SLQ budgets, the ascent steps of sharpness),
every epoch of bend training and every point of a curve, line and plane (three forwards
with BatchNorm re-estimated: statistics, loss, functional distance), and every step of a
walk (its gradient and the forwards of its segment), every step of the entropy
ensembles (SGD epochs, Langevin and gradient-descent steps on the full training set, the
final descent at its step bound) and every exact Hessian (one product per parameter), and
the sharpness family's Hessian reports, batch-size lines, architecture planes and convexity
maps (``max_iter`` products at both ends at every grid point); with
learning-rate grids every rate's run counts as chosen (an upper bound). Model FLOPs
per image are measured with ``torch.utils.flop_counter`` on the CPU. A product costs
``HVP_FACTOR`` forward+backward passes (``benchmarks/hessian.py`` measured 1.5–2.7).

Time = work / rate + ``--overhead`` seconds per job (start-up, imports, data loading,
checkpoints). The rate is the effective float32 rate of the training and evaluation
kernels, an assumption the caller states (default 20 TFLOP/s: about a third of an H100's
float32 peak, the workflow running without TF32 and with deterministic cuDNN); calibrate
it with the per-family times that ``benchmarks/gpu_checks.sh`` prints for the smoke
preset. An estimate, not a measurement: it ignores how well small batches fill a GPU.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lossland.pipeline import config as C  # noqa: E402
from lossland.pipeline import families as F  # noqa: E402
from lossland.pipeline.families import batchnorm as B  # noqa: E402
from lossland.pipeline.families import connectivity as M  # noqa: E402
from lossland.pipeline.families import entropy as E  # noqa: E402
from lossland.pipeline.families import hessian as H  # noqa: E402
from lossland.pipeline.families import landscape as L  # noqa: E402
from lossland.pipeline.families import reparam as P  # noqa: E402
from lossland.pipeline.families import sharpness as S  # noqa: E402
from lossland.pipeline.timing import run_owners  # noqa: E402

#: images in the sources' splits (before train_size/val_size/test_size subsets)
SOURCE_SIZES = {"torchvision": (50_000, 10_000), "python-archive": (50_000, 10_000),
                "imagefolder": (50_000, 10_000), "embedded": (8_000, 3_600)}
HVP_FACTOR = 2.3
#: tokens (with <eos>) of Penn Treebank's splits
PTB_TOKENS = {"train": 929_589, "valid": 73_760, "test": 82_430}


def text_sizes(dataset: dict) -> dict[str, int]:
    """Sequences of ``seq_len`` tokens per split of a text data set."""
    seq = int(dataset.get("seq_len") or 35)
    default_train = "valid" if dataset["source"] == "ptb-embedded" else "train"
    out = {}
    for split, default in (("train", default_train), ("val", dataset.get("val_split")), ("test", "test")):
        name = dataset.get(f"{split}_split") or default
        tokens = 0 if name is None else min(PTB_TOKENS[name], dataset.get(f"{split}_tokens") or PTB_TOKENS[name])
        out[split] = tokens // seq
    return out


def split_sizes(dataset: dict) -> dict[str, int]:
    if dataset["source"] in C.TEXT_SOURCES:
        return text_sizes(dataset)
    train, test = SOURCE_SIZES[dataset["source"]]
    val = int(dataset.get("val_size") or 0)
    train = int(dataset.get("train_size") or train - val)
    return {"train": train, "val": val, "test": int(dataset.get("test_size") or test)}


def lstm_flops(spec: dict, dataset: dict) -> tuple[float, float]:
    """(forward, forward+backward) FLOPs per sequence of an LSTM language model: four gates of
    E+H inputs per layer and the softmax over the vocabulary at every token."""
    seq = int(dataset.get("seq_len") or 35)
    vocab = int(dataset.get("vocab_size") or 10_000)
    e, h, layers = int(spec.get("embedding", 200)), int(spec.get("hidden", 200)), int(spec.get("layers", 1))
    fwd = seq * (2 * 4 * h * (e + h) + 2 * 4 * h * (2 * h) * (layers - 1) + 2 * h * vocab)
    return float(fwd), 3.0 * fwd


def model_flops(spec: dict) -> tuple[float, float]:
    """(forward, forward+backward) FLOPs per 32x32x3 image of a model spec."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from lossland.models import build_model

    model = build_model(spec, (3, 32, 32), 10)
    x = torch.randn(4, 3, 32, 32)
    with FlopCounterMode(display=False) as both:
        model(x).sum().backward()
    with FlopCounterMode(display=False) as fwd, torch.no_grad():
        model(x)
    return fwd.get_total_flops() / 4, both.get_total_flops() / 4


def estimate(config: dict) -> dict[str, dict[str, float]]:
    """``{family: {"jobs": n, "flop": work}}`` (the im2016 family: its trainings, including the
    runs other sections share with it; reparam: its own sweeps and any run only it trains)."""
    cache: dict[str, tuple[float, float]] = {}

    def flops(model: str, dataset: str | None = None) -> tuple[float, float]:
        spec = config["models"][model]
        if spec["arch"] == "lstm":
            return lstm_flops(spec, config["datasets"][dataset])
        if model not in cache:
            cache[model] = model_flops(spec)
        return cache[model]

    out: dict[str, dict[str, float]] = defaultdict(lambda: {"jobs": 0, "flop": 0.0})
    table = F.run_table(config)
    owners = run_owners(config)
    for name, spec in table.items():
        sizes = split_sizes(config["datasets"][spec["dataset"]])
        fwd, both = flops(spec["model"], spec["dataset"])
        epochs = spec["training"]["epochs"] - int(spec.get("switch_epoch") or 0)
        grads = 2 if spec["optimizer_spec"].get("algorithm") == "rk2" else 1
        per_epoch = sizes["train"] * both * grads + sum(sizes.values()) * fwd
        out[owners[name]]["jobs"] += 1
        out[owners[name]]["flop"] += epochs * per_epoch

    if config.get("landscape"):
        cfg = config["landscape"]
        study = config[cfg["study"]]
        chosen = [x["run"] for x in F.by_name("im2016").study_runs(config, cfg["study"])]
        plan = L.plan(config, table, chosen)
        sizes = split_sizes(config["datasets"][study["dataset"]])
        for kind, jobs in plan.items():
            for job in jobs.values():
                model = table[next(iter(job["weights"].values()))["run"]]["model"]
                settings = cfg["switching"] if kind == "switching" else cfg[kind]
                if kind in L.PLANE_KINDS:
                    points = settings["x"]["num"] * settings["y"]["num"]
                    out["landscape"]["jobs"] += job["shards"]
                else:
                    points = settings["num"] * len(job.get("lines") or [None])
                    out["landscape"]["jobs"] += 1
                images = sum(min(sizes[s], cfg.get("samples") or sizes[s]) for s in cfg["splits"])
                out["landscape"]["flop"] += points * images * flops(model)[0]

    if config.get("hessian"):
        cfg = config["hessian"]
        s = cfg.get("settings") or {}
        products = (2 * s.get("max_iter", 50) + s.get("trace_probes", 20) + 10
                    + s.get("density_probes", 2) * s.get("density_steps", 20) + s.get("sharpness_steps", 5))
        chosen = [x["run"] for x in F.by_name("im2016").study_runs(config, cfg["study"])]
        sizes = split_sizes(config["datasets"][config[cfg["study"]]["dataset"]])
        for kind, key in H.points(config, table, chosen):
            model = key["model"] if kind == "init" else table[key["run"]]["model"]
            n = min(sizes[cfg["split"]], cfg.get("samples") or sizes[cfg["split"]])
            out["hessian"]["jobs"] += 1
            out["hessian"]["flop"] += products * HVP_FACTOR * n * flops(model)[1]

    if config.get("reparam"):
        cfg = config["reparam"]
        s = cfg.get("settings") or {}
        per_point = s.get("max_iter", 30) + s.get("trace_probes", 10) + 10 + 2 * s.get("sharpness_steps", 3)
        sizes = split_sizes(config["datasets"][cfg["dataset"]])
        n = min(sizes[cfg["split"]], cfg["samples"])
        for run, _, _ in P.sweeps(config, table):
            points = len(P.alphas(config)) + 3          # the sweep, and the blocks at alpha = 1
            out["reparam"]["jobs"] += 1
            out["reparam"]["flop"] += points * per_point * HVP_FACTOR * n * flops(table[run]["model"])[1]
        out["reparam"]["jobs"] += len(P.section_runs(config, table))   # the input jobs: forwards only

    for section in M.SECTIONS:
        if not config.get(section):
            continue
        cfg = config[section]
        study = config[cfg["study"]]
        model = cfg.get("model") or study["models"][0]
        fwd, both = flops(model)
        sizes = split_sizes(config["datasets"][study["dataset"]])
        if section == "curves":
            images = [min(sizes[s], cfg.get("samples") or sizes[s]) for s in cfg["splits"]]
            passes = 3 if cfg["bn"] != "stored" else 2
            per_pair = (cfg["epochs"] * sizes["train"] * both + cfg["points"] * 2 * sum(images) * passes * fwd
                        + cfg["plane"]["num"] ** 2 * images[0] * (passes - 1) * fwd)
            out[M.NAME]["jobs"] += len(cfg["pairs"])
            out[M.NAME]["flop"] += len(cfg["pairs"]) * per_pair
        else:
            n = min(sizes["train"], cfg.get("samples") or sizes["train"])
            for name in M.walk_names(config):
                sgd_batch = M.walk_batch_size(name)   # None: gradient descent on the walk's images
                batch = n if sgd_batch is None else sgd_batch
                out[M.NAME]["jobs"] += 1
                evaluated = n if sgd_batch is None else n + batch   # GD's minibatch is the walk's images
                out[M.NAME]["flop"] += cfg["steps"] * (batch * both + cfg["segment_points"] * evaluated * fwd)
    for section in S.SECTIONS:
        if not config.get(section):
            continue
        cfg = config[section]
        sizes = split_sizes(config["datasets"][cfg["dataset"]])
        s = cfg["hessian"]["settings"]
        products = (2 * s.get("max_iter", 50) + s.get("trace_probes", 20) + 10
                    + s.get("density_probes", 2) * s.get("density_steps", 20) + s.get("sharpness_steps", 5))
        images = sum(min(sizes[sp], cfg["samples"] or sizes[sp]) for sp in cfg["splits"])
        for spec in S.section_specs(config, section):
            fwd, both = flops(spec["model"])
            n = min(sizes[cfg["hessian"]["split"]], cfg["hessian"]["samples"])
            out[S.NAME]["jobs"] += 1
            out[S.NAME]["flop"] += products * HVP_FACTOR * n * both
            if section == "batch_size":
                if spec["run"] != S.small_batch_run(config):
                    passes = 2 if cfg["bn"] == "recompute" else 1
                    out[S.NAME]["jobs"] += 1
                    out[S.NAME]["flop"] += cfg["line"]["num"] * images * passes * fwd
            else:
                plane, conv = cfg["plane"], cfg["convexity"]
                out[S.NAME]["jobs"] += S.shards(config) + 1
                out[S.NAME]["flop"] += plane["x"]["num"] * plane["y"]["num"] * images * fwd
                n = min(sizes[cfg["splits"][0]], conv["samples"])
                out[S.NAME]["flop"] += conv["num"] ** 2 * 2 * conv["max_iter"] * HVP_FACTOR * n * both
    if config.get(B.SECTION):
        cfg = config[B.SECTION]
        for (arch, model, seed), specs in B.groups(config).items():
            sizes = split_sizes(config["datasets"][specs[0]["dataset"]])
            n = len(specs)
            points = n * cfg["init_final"]["num"] + n * (n - 1) // 2 * cfg["final_final"]["num"]
            images = sum(min(sizes[sp], cfg["samples"] or sizes[sp]) for sp in cfg["splits"])
            out[B.NAME]["jobs"] += 1
            out[B.NAME]["flop"] += points * images * flops(model, specs[0]["dataset"])[0]
    if config.get("entropy"):
        cfg = config["entropy"]
        sizes = split_sizes(config["datasets"][cfg["dataset"]])
        params = E.count_parameters(config)
        both = 6.0 * params                       # forward + backward of a fully connected net, per image
        steps = {"sgd": cfg["sgd_epochs"], "langevin": cfg["langevin_steps"], "gd": cfg["gd_steps"]}
        for dynamics in cfg["dynamics"]:          # SGD: an epoch is one full pass
            passes = steps[dynamics] + cfg["descent_max_steps"] + params * HVP_FACTOR
            out[E.NAME]["jobs"] += 1
            out[E.NAME]["flop"] += cfg["members"] * (passes * sizes["train"] * both + sizes["test"] * both / 3)
    if config.get("deep_linear"):
        cfg = config["deep_linear"]
        params = cfg["hidden"] * (cfg["inputs"] + 1)
        passes = cfg["epochs"] + cfg["descent_max_steps"] + params * HVP_FACTOR
        out[E.NAME]["jobs"] += len(cfg["inits"]) + 1
        out[E.NAME]["flop"] += len(cfg["inits"]) * cfg["members"] * passes * cfg["examples"] * 6.0 * params
    return dict(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", help="a workflow config (YAML)")
    ap.add_argument("--tflops", type=float, default=20.0, help="effective rate, TFLOP/s (default 20)")
    ap.add_argument("--overhead", type=float, default=5.0, help="seconds per job beyond its FLOPs (default 5)")
    args = ap.parse_args()
    try:
        config = C.check_config(yaml.safe_load(Path(args.config).read_text()))
    except C.ConfigError as exc:
        raise SystemExit(f"{args.config}: {exc}") from None
    rows = estimate(config)
    total_s = 0.0
    print(f"{'family':<13}{'jobs':>6}{'PFLOP':>10}{'minutes':>9}   (at {args.tflops:g} TFLOP/s, "
          f"{args.overhead:g} s a job)")
    for family in F.FAMILIES:
        if family.NAME not in rows:
            continue
        r = rows[family.NAME]
        seconds = r["flop"] / (args.tflops * 1e12) + args.overhead * r["jobs"]
        total_s += seconds
        print(f"{family.NAME:<13}{r['jobs']:>6}{r['flop'] / 1e15:>10.3f}{seconds / 60:>9.1f}")
    print(f"{'total':<13}{sum(r['jobs'] for r in rows.values()):>6}"
          f"{sum(r['flop'] for r in rows.values()) / 1e15:>10.3f}{total_s / 60:>9.1f}")


if __name__ == "__main__":
    main()
