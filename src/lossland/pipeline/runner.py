"""One training run from its spec to its files: resume point, checkpoints, metrics.

:func:`execute_run` is what the workflow's training rule calls. It trains the
run described by a spec (see :mod:`lossland.pipeline.runs`) from its initial
weights, and writes

* ``metrics``: the per-epoch Parquet table (one row per epoch, epoch 0 = init);
* ``final``: the last weights as safetensors with a JSON sidecar;
* ``checkpoints``: a folder with ``epochNNNN.safetensors`` (+ ``.json``) for the
  spec's checkpoint epochs.

While it runs, everything lives in a ``.partial`` folder beside the outputs: a
resume point after every epoch (``resume.safetensors``, written by
:func:`lossland.io.save_state_tree`) and the checkpoints so far. An interrupted
run (killed, pre-empted) continues from its last finished epoch when started
again with the same spec, and nothing appears at an output path before the run
is complete. A run whose loss becomes NaN or infinite stops, and is written out
with ``diverged`` set, so the rest of a workflow goes on.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import io
from ..data import PreparedDataset
from ..models import LANGUAGE_MODELS, build_model
from ..optim import learning_rate, make_optimizer
from ..runtime import resolve_channels_last
from ..training import TrainSettings, TrainState, snapshot, train
from .paths import checkpoint_name
from .runs import algorithm_name

log = logging.getLogger("lossland")

METRIC_ID_COLUMNS = ("run", "model", "dataset", "optimizer", "algorithm", "seed", "data_seed")


@dataclass
class SwitchStart:
    """Where an optimizer-switch run starts: the prefix run's weights at the switch epoch,
    its metrics rows up to that epoch and its checkpoint folder (earlier checkpoints
    are shared, not recomputed)."""

    state: dict[str, torch.Tensor]
    records: list[dict]
    checkpoints_dir: Path | None = None


def switch_start_from(prefix_metrics: str | os.PathLike, prefix_checkpoints: str | os.PathLike,
                      epoch: int) -> SwitchStart:
    """The :class:`SwitchStart` of a switch at ``epoch`` from a finished prefix run's files."""
    table = io.read_parquet(prefix_metrics)
    table = table.drop(columns=[c for c in (*METRIC_ID_COLUMNS, "phase") if c in table])
    records = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
               for row in table.to_dict("records")]
    path = Path(prefix_checkpoints) / checkpoint_name(epoch)
    if not path.exists():
        raise FileNotFoundError(f"{path}: the prefix run saved no checkpoint at the switch epoch {epoch}")
    state, _ = io.load_checkpoint(path)
    return SwitchStart(state, records, Path(prefix_checkpoints))


def resolve_eval_batch_size(value: Any, device: torch.device) -> int:
    """``auto``: 100 on the CPU (cache-sized chunks measured fastest); on a GPU 4096, the
    chunk of the landscape engine's no-grad forwards (:func:`lossland.landscape.batches.
    default_chunk_size`: on an H200 larger chunks only helped), so that the per-epoch
    evaluation of a 45 000-image training split is 11 forwards, not 45."""
    if value in (None, "auto"):
        return 4096 if device.type == "cuda" else 100
    return int(value)


def train_settings(spec: Mapping[str, Any], device: torch.device) -> TrainSettings:
    training = dict(spec["training"])
    training["channels_last"] = resolve_channels_last(training.get("channels_last", "auto"), device)
    training["eval_batch_size"] = resolve_eval_batch_size(training.get("eval_batch_size"), device)
    training["data_seed"] = spec["data_seed"]
    return TrainSettings.from_mapping(training)


def checkpoint_meta(spec: Mapping[str, Any], data: PreparedDataset, state: TrainState,
                    device: torch.device) -> dict[str, Any]:
    return {
        "run": spec["run"],
        "dataset": spec["dataset"],
        "model": spec["model"],
        "model_spec": spec["model_spec"],
        "input_shape": list(data.input_shape),
        "num_classes": data.num_classes,
        "classes": list(data.classes),
        "optimizer": spec["optimizer"],
        "optimizer_spec": spec["optimizer_spec"],
        "init_seed": spec["init_seed"],
        "data_seed": spec["data_seed"],
        "epoch": state.epoch,
        "diverged": state.diverged,
        "metrics": state.records[-1] if state.records else {},
        "provenance": io.provenance(spec, device=str(device)),
    }


def metrics_frame(spec: Mapping[str, Any], records: list[dict]) -> pd.DataFrame:
    """The per-epoch table of a run: identifying columns first, then the records.

    ``phase`` names the optimizer that produced each row's weights (for a switch
    run, the first optimizer up to the switch epoch, then the second). A language
    model's run (:data:`lossland.models.LANGUAGE_MODELS`) gets ``<split>_perplexity``
    = exp(``<split>_loss``, the mean per-token cross-entropy) after each split's columns.
    """
    ids = {
        "run": spec["run"],
        "model": spec["model"],
        "dataset": spec["dataset"],
        "optimizer": spec["optimizer"],
        "algorithm": algorithm_name(spec),
        "seed": spec["init_seed"],
        "data_seed": spec["data_seed"],
    }
    df = pd.DataFrame.from_records(records)
    if "lr" not in df:
        df["lr"] = learning_rate(spec["optimizer_spec"])
    for i, (k, v) in enumerate(ids.items()):
        df.insert(i, k, v)
    if spec.get("kind") == "switch":
        df.insert(len(ids), "phase", [spec["first"] if e <= spec["switch_epoch"] else spec["then"]
                                      for e in df["epoch"]])
    else:
        df.insert(len(ids), "phase", spec["optimizer"])
    df["diverged"] = df["diverged"].astype(bool)
    if spec["model_spec"].get("arch") in LANGUAGE_MODELS:
        for col in [c for c in df.columns if c.endswith("_loss") and c != "train_batch_loss"]:
            with np.errstate(over="ignore"):
                df.insert(df.columns.get_loc(col) + 1, col[:-len("_loss")] + "_perplexity", np.exp(df[col]))
    return df


MODEL_KEYS = ("model_spec", "input_shape", "num_classes")


def read_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[dict, dict]:
    """``(tensors, sidecar)`` of a checkpoint whose sidecar describes a model (:data:`MODEL_KEYS`)."""
    side = io.sidecar_path(path)
    if not side.exists():
        raise FileNotFoundError(f"{path}: no sidecar {side} (it names the model the weights belong to)")
    tensors, meta = io.load_checkpoint(path, device)
    missing = [k for k in MODEL_KEYS if k not in meta]
    if missing:
        raise ValueError(f"{path}: its sidecar {side} lacks {', '.join(missing)}")
    return tensors, meta


def model_for(path: str | os.PathLike, meta: Mapping[str, Any]) -> nn.Module:
    """The (untrained) model that the sidecar ``meta`` of checkpoint ``path`` describes."""
    try:
        return build_model(meta["model_spec"], meta["input_shape"], meta["num_classes"])
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{path}: its sidecar describes no buildable model "
                         f"({meta.get('model')!r}, {meta['model_spec']}): {e}") from e


def check_fits(path: str | os.PathLike, meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor],
               model: nn.Module, shown: int = 3) -> None:
    """Raise ``ValueError`` unless ``tensors`` has exactly the names and shapes of ``model``'s state dict;
    the message names the first ``shown`` wrong shapes, missing and unexpected tensors."""
    want = {k: list(v.shape) for k, v in model.state_dict().items()}
    have = {k: list(v.shape) for k, v in tensors.items()}
    groups = {
        "wrong shape": [f"{k} checkpoint {have[k]} vs model {w}" for k, w in want.items() if have.get(k, w) != w],
        "missing": [f"{k} missing from the checkpoint (model {want[k]})" for k in want if k not in have],
        "unexpected": [f"{k} not in the model (checkpoint {have[k]})" for k in have if k not in want],
    }
    wrong = []
    for kind, items in groups.items():
        wrong += items[:shown] + ([f"{len(items) - shown} more {kind}"] if len(items) > shown else [])
    if wrong:
        raise ValueError(f"{path}: the tensors do not fit the model its sidecar describes "
                         f"({meta.get('model')!r}, {meta['model_spec']}, input {list(meta['input_shape'])}, "
                         f"{meta['num_classes']} classes): {'; '.join(wrong)}")


def model_from_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint sidecar describes and load its weights (checked to fit)."""
    tensors, meta = read_checkpoint(path)
    model = model_for(path, meta)
    check_fits(path, meta, tensors, model)
    model.load_state_dict(tensors)
    return model.to(device), meta


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def execute_run(
    spec: Mapping[str, Any],
    data: PreparedDataset,
    init_state: Mapping[str, torch.Tensor],
    *,
    metrics_path: str | os.PathLike,
    final_path: str | os.PathLike,
    checkpoints_dir: str | os.PathLike,
    device: torch.device,
    progress: bool = True,
    work_dir: str | os.PathLike | None = None,
    switch_start: SwitchStart | None = None,
) -> TrainState:
    """Train the run ``spec`` on ``data`` (already on ``device``) from ``init_state``; write its files.

    A switch run (``spec["kind"] == "switch"``) starts from ``switch_start``: the
    prefix's weights at the switch epoch with a fresh second optimizer; its table
    begins with the prefix's rows and ``dist_from_init`` stays measured from
    ``init_state``.
    """
    metrics_path, final_path, checkpoints_dir = Path(metrics_path), Path(final_path), Path(checkpoints_dir)
    work = Path(work_dir) if work_dir else metrics_path.parent / ".partial"
    work.mkdir(parents=True, exist_ok=True)
    resume_file = work / "resume.safetensors"
    key = io.config_hash(spec)

    settings = train_settings(spec, device)
    model = build_model(spec["model_spec"], data.input_shape, data.num_classes)
    model.load_state_dict(init_state)
    model.to(device)
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model.parameters(), spec["optimizer_spec"])
    wanted = set(spec["training"].get("checkpoint_epochs") or [])

    resume = None
    if resume_file.exists():
        saved = io.load_state_tree(resume_file)
        if saved.get("key") == key:
            resume = TrainState.from_dict(saved["state"])
            log.info("%s: resuming after epoch %d", spec["run"], resume.epoch)
        else:
            log.info("%s: discarding a resume point of a different spec", spec["run"])
            shutil.rmtree(work)
            work.mkdir(parents=True)

    if resume is None and spec.get("kind") == "switch":
        if switch_start is None:
            raise ValueError(f"{spec['run']}: a switch run needs switch_start (the prefix's checkpoint)")
        k = spec["switch_epoch"]
        rows = [dict(r) for r in switch_start.records if r["epoch"] <= k]
        model.load_state_dict(switch_start.state)
        resume = TrainState(int(rows[-1]["epoch"]), rows, bool(rows[-1]["diverged"]), float(rows[-1]["wall_time"]),
                            model.state_dict(), optimizer.state_dict())
        if switch_start.checkpoints_dir is not None:
            for e in sorted(wanted):
                src = Path(switch_start.checkpoints_dir) / checkpoint_name(e)
                if e <= k and src.exists():
                    _link_or_copy(src, work / checkpoint_name(e))
                    _link_or_copy(io.sidecar_path(src), io.sidecar_path(work / checkpoint_name(e)))
        log.info("%s: switching from %s to %s after epoch %d", spec["run"], spec["first"], spec["then"], k)

    def save_checkpoint(state: TrainState, epoch: int) -> None:
        meta = checkpoint_meta(spec, data, state, device)
        io.save_checkpoint(model.state_dict(), work / checkpoint_name(epoch), {**meta, "saved_for_epoch": epoch})

    def on_epoch(state: TrainState, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        if state.epoch in wanted:
            save_checkpoint(state, state.epoch)
        io.save_state_tree({"key": key, "state": snapshot(state, model, optimizer).to_dict()}, resume_file)

    init_on_device = {k: v.to(device) for k, v in init_state.items()}
    state = train(model, optimizer, data.splits, settings, init_state=init_on_device, resume=resume,
                  on_epoch=on_epoch, progress=progress, desc=spec["run"])
    if state.diverged:
        log.warning("%s: diverged at epoch %d (non-finite loss); recorded as diverged", spec["run"], state.epoch)
    # A run stopped by divergence still delivers every promised checkpoint (its last, flagged, weights).
    for e in sorted(wanted):
        if state.diverged and not (work / checkpoint_name(e)).exists():
            save_checkpoint(state, e)

    # Outputs, the metrics table last: its presence means the run is complete.
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    for e in sorted(wanted):
        src = work / checkpoint_name(e)
        if src.exists():
            _link_or_copy(src, checkpoints_dir / checkpoint_name(e))
            _link_or_copy(io.sidecar_path(src), io.sidecar_path(checkpoints_dir / checkpoint_name(e)))
    io.save_checkpoint(model.state_dict(), final_path, checkpoint_meta(spec, data, state, device))
    io.write_parquet(metrics_frame(spec, state.records), metrics_path,
                     io.provenance(spec, device=str(device)))
    shutil.rmtree(work, ignore_errors=True)
    return state
