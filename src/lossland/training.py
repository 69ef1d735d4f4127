"""The training loop: short and flat, data kept on the device.

:func:`train` runs epochs of minibatch optimisation over a
:class:`~lossland.data.DeviceBatches` order (so every optimizer given the same
data seed sees the same batches), evaluates after every epoch, records a
metrics row per epoch (epoch 0 is the initial point), stops a run whose loss
becomes NaN or infinite (recording it as diverged), and hands the caller a
:class:`TrainState` after every epoch so that it can save checkpoints and a
resume point. Resuming from a saved state gives the same result as an
uninterrupted run: the batch order, the augmentation and the dropout masks of
each epoch are drawn from ``(data_seed, epoch)`` alone.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

import torch
from torch import nn

from .data import DeviceBatches, Split, derive_seed
from .evaluation import LossFn, default_loss, evaluate, inputs_channels_last
from .state import distance, trainable_names


@dataclass
class TrainSettings:
    """How to train: what the loop needs beyond the model, optimizer and data."""

    epochs: int
    batch_size: int = 128
    data_seed: int = 0
    augment: bool = False
    eval_batch_size: int = 1000
    channels_last: bool | None = None  # None: lossland.evaluation.inputs_channels_last(model)
    drop_last: bool = False
    grad_clip: float = 0.0  # > 0: clip the gradient's total norm to this before every step (LSTMs)

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> "TrainSettings":
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in m.items() if k in names})


@dataclass
class TrainState:
    """Everything needed to continue training after ``epoch`` epochs."""

    epoch: int
    records: list[dict] = field(default_factory=list)
    diverged: bool = False
    wall_time: float = 0.0
    model: dict | None = None
    optimizer: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainState":
        return cls(**d)


def gradient_norm(params: list[torch.Tensor]) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _is_finite(x: float) -> bool:
    return math.isfinite(x)


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    splits: Mapping[str, Split],
    settings: TrainSettings,
    *,
    loss_fn: LossFn | None = None,
    init_state: Mapping[str, torch.Tensor] | None = None,
    resume: TrainState | None = None,
    on_epoch: Callable[[TrainState, nn.Module, torch.optim.Optimizer], None] | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> TrainState:
    """Train ``model`` with ``optimizer`` on ``splits["train"]`` for ``settings.epochs`` epochs.

    Every split in ``splits`` (``train``, ``test``, ``val``, ...) is evaluated after
    each epoch, giving the columns ``<split>_loss`` and ``<split>_acc``. Rows also
    carry ``epoch, lr, grad_norm`` (mean minibatch gradient norm, before any clipping by
    ``settings.grad_clip``),
    ``train_batch_loss`` (mean minibatch loss, in train mode), ``dist_from_init``
    (Euclidean distance of the trainable parameters from ``init_state``, default
    the weights at epoch 0), ``wall_time`` (seconds, cumulative) and ``diverged``.

    ``resume``: a :class:`TrainState` from an earlier call (``model`` and
    ``optimizer`` are loaded from it). ``on_epoch(state, model, optimizer)`` is
    called after every epoch, epoch 0 included; ``state.model``/``state.optimizer``
    are left empty there (take them from the arguments when saving).
    """
    loss_fn = loss_fn or default_loss
    train_split = splits["train"]
    device = train_split.x.device
    batches = DeviceBatches(train_split.x, train_split.y, settings.batch_size, settings.data_seed,
                            augment=settings.augment, drop_last=settings.drop_last,
                            channels_last=(inputs_channels_last(model) if settings.channels_last is None
                                           else settings.channels_last))
    names = trainable_names(model)
    params = [p for p in model.parameters() if p.requires_grad]
    needs_closure = bool(getattr(optimizer, "needs_closure", False))

    if resume is not None:
        model.load_state_dict(resume.model)
        optimizer.load_state_dict(resume.optimizer)
        state = TrainState(resume.epoch, list(resume.records), resume.diverged, resume.wall_time)
    else:
        state = TrainState(0)
    if init_state is None:
        if resume is not None:
            raise ValueError("resuming needs init_state (the weights at epoch 0) for dist_from_init")
        init_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    init_state = {k: init_state[k].to(device) for k in names}

    @torch.no_grad()
    def measure(epoch: int, batch_loss: float, grad_norm: float) -> dict:
        row: dict[str, Any] = {"epoch": epoch}
        for name, split in splits.items():
            res = evaluate(model, split.as_tuple(), loss_fn=loss_fn, batch_size=settings.eval_batch_size)
            row[f"{name}_loss"] = res["loss"]
            row[f"{name}_acc"] = res["accuracy"]
        row["train_batch_loss"] = batch_loss
        row["grad_norm"] = grad_norm
        row["lr"] = float(optimizer.param_groups[0]["lr"])
        row["dist_from_init"] = distance(dict(model.named_parameters()), init_state, names)
        row["wall_time"] = state.wall_time
        row["diverged"] = not (_is_finite(row["train_loss"]) and _is_finite(batch_loss if epoch else 0.0))
        return row

    if not state.records:
        state.records.append(measure(0, math.nan, math.nan))
        state.diverged = state.records[-1]["diverged"]
        if on_epoch:
            on_epoch(state, model, optimizer)

    steps = len(batches)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=settings.epochs * steps, initial=state.epoch * steps, desc=desc, unit="step",
                   file=sys.stderr, mininterval=0.5 if sys.stderr.isatty() else 30.0, dynamic_ncols=True)
    try:
        while state.epoch < settings.epochs and not state.diverged:
            epoch = state.epoch + 1
            t0 = time.perf_counter()
            torch.manual_seed(derive_seed("dropout", settings.data_seed, epoch))
            model.train()
            loss_sum = torch.zeros((), device=device)
            norm_sum = torch.zeros((), device=device)
            for xb, yb in batches.epoch(epoch):
                first = []

                def closure() -> torch.Tensor:
                    optimizer.zero_grad(set_to_none=True)
                    loss = loss_fn(model(xb), yb)
                    loss.backward()
                    if not first:
                        first.append(gradient_norm(params))
                    if settings.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
                    return loss

                if needs_closure:
                    loss = optimizer.step(closure)
                else:
                    loss = closure()
                    optimizer.step()
                loss_sum += loss.detach()
                norm_sum += first[0]
                if bar is not None:
                    bar.update(1)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            state.wall_time += time.perf_counter() - t0
            row = measure(epoch, float(loss_sum) / steps, float(norm_sum) / steps)
            state.epoch = epoch
            state.records.append(row)
            state.diverged = row["diverged"]
            if bar is not None:
                bar.set_postfix(loss=f"{row['train_loss']:.3g}", acc=f"{row['train_acc']:.3f}",
                                test_acc=f"{row.get('test_acc', math.nan):.3f}", refresh=False)
            if on_epoch:
                on_epoch(state, model, optimizer)
    finally:
        if bar is not None:
            bar.close()
    return state


def snapshot(state: TrainState, model: nn.Module, optimizer: torch.optim.Optimizer) -> TrainState:
    """A copy of ``state`` holding the model's and optimizer's current state dicts (on the CPU)."""
    import copy

    def to_cpu(obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            return obj.detach().to("cpu", copy=True)
        if isinstance(obj, dict):
            return {k: to_cpu(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(to_cpu(v) for v in obj)
        return copy.deepcopy(obj)

    return TrainState(state.epoch, copy.deepcopy(state.records), state.diverged, state.wall_time,
                      to_cpu(model.state_dict()), to_cpu(optimizer.state_dict()))
