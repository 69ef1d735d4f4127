"""Chunks that fit a memory budget: how many examples one pass of a model may take at once.

A job is given a memory budget (on a cluster, the ``mem_mb`` it asked SLURM for; on a
GPU, the device's free memory). What a pass needs beyond what the process already holds
grows with the batch: the activations of every layer, held for the backward passes.
:func:`activation_bytes` measures them for one example with a forward pass (hooks on
every leaf module), and :func:`fitting_batch_size` picks the largest batch whose
estimate fits. The estimate is that size times a factor per kind of pass
(:data:`PASS_FACTORS`), measured on a CPU as the rise of peak RSS over the activations'
bytes: 1.6–2.4 for a Hessian-vector product by double backward (NIN at width 1/4 on
16×16 and 32×32 images, an MLP 3072-512-512-10), so 3 leaves room; a forward without
grad frees each layer's input as it goes, so 1 is an upper bound.

A batch that fits is left as asked (``None``: all examples at once), so results change
only where the job would otherwise have run out of memory; then its products are sums
over chunks, equal to the one-batch values up to float rounding.
"""

from __future__ import annotations

import os
import resource
import sys
from typing import Any

import torch
from torch import nn

PASS_FACTORS = {"forward": 1.0, "hvp": 3.0}
MB = 2 ** 20


@torch.no_grad()
def activation_bytes(model: nn.Module, example: torch.Tensor) -> int:
    """Bytes of every leaf module's output for ``example`` (a batch of one), i.e. per example."""
    total = 0

    def count(_module, _inputs, output) -> None:
        nonlocal total
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()

    hooks = [m.register_forward_hook(count) for m in model.modules() if not any(True for _ in m.children())]
    was_training = model.training
    try:
        model.eval()
        model(example[:1])
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return int(total)


def resident_bytes() -> int:
    """The resident memory of this process now (Linux ``/proc/self/statm``; elsewhere its peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)


def available_bytes(mem_mb: float | None, device: torch.device | str = "cpu") -> int | None:
    """What a job may still allocate: on a CUDA device its free memory, on the CPU ``mem_mb``
    (the job's budget) less what the process already holds; ``None`` without a budget."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if not mem_mb:
        return None
    return max(int(mem_mb * MB) - resident_bytes(), 0)


def _per_example_bytes(model: nn.Module, inputs: torch.Tensor, kind: str) -> float:
    """The estimated memory of one example in a pass of ``kind``."""
    if kind not in PASS_FACTORS:
        raise ValueError(f"kind must be one of {', '.join(PASS_FACTORS)}, got {kind!r}")
    return PASS_FACTORS[kind] * activation_bytes(model, inputs[:1])


def _fit(n: int, batch_size: int | None, budget_bytes: int | None, per_example: float) -> int | None:
    wanted = n if batch_size is None else min(int(batch_size), n)
    if budget_bytes is None or n == 0 or wanted * per_example <= budget_bytes:
        return batch_size
    return max(1, int(budget_bytes // per_example))


def fitting_batch_size(model: nn.Module, inputs: torch.Tensor, budget_bytes: int | None, *, kind: str = "hvp",
                       batch_size: int | None = None) -> int | None:
    """The batch size for passes of ``kind`` over ``inputs`` within ``budget_bytes``: ``batch_size``
    (``None``: all of ``inputs`` in one batch) when its estimate fits, else the largest that does
    (at least 1). Without a budget, ``batch_size``."""
    per_example = _per_example_bytes(model, inputs, kind)
    return _fit(int(inputs.shape[0]), batch_size, budget_bytes, per_example)


def chunk_plan(model: nn.Module, inputs: torch.Tensor, mem_mb: float | None, device: Any, *, kind: str = "hvp",
               batch_size: int | None = None) -> dict[str, Any]:
    """:func:`fitting_batch_size` within the job's budget, with what decided it (for the log and
    the tables' provenance): ``batch_size``, ``chunks``, ``budget_mb``, ``per_example_mb``."""
    budget = available_bytes(mem_mb, device)
    per_example = _per_example_bytes(model, inputs, kind)
    n = int(inputs.shape[0])
    chosen = _fit(n, batch_size, budget, per_example)
    size = n if chosen is None else chosen
    return {"batch_size": chosen, "chunks": -(-n // max(size, 1)),
            "budget_mb": None if budget is None else round(budget / MB, 1),
            "per_example_mb": round(per_example / MB, 4)}
