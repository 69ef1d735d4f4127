"""BatchNorm statistics re-estimated at a point of a landscape (``bn="recompute"``)."""

from __future__ import annotations

import torch
from torch import nn

from ..evaluation import Data, eval_mode
from .batches import _materialize

_BN_TYPES = (nn.modules.batchnorm._BatchNorm,)


def _bn_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, _BN_TYPES) and m.track_running_stats]


@torch.no_grad()
def recompute_bn(model: nn.Module, data: Data, batch_size: int | None = None) -> nn.Module:
    """Re-estimate the BatchNorm running statistics of ``model`` from ``data``, in place.

    The statistics are reset, then the data runs through the model with the BN
    layers in train mode, momentum ``1/k`` at the ``k``-th batch (so the running
    statistics become the equal-weight average of the per-batch statistics, as with
    ``momentum=None``) and no gradient; every other
    module is in eval mode (no dropout). Modes and momenta are restored after.
    """
    bns = _bn_modules(model)
    if not bns:
        return model
    batches = _materialize(data, model, batch_size)
    _recompute_bn(model, bns, batches)
    return model


def _recompute_bn(model: nn.Module, bns: list[nn.Module], batches) -> None:
    momenta = [m.momentum for m in bns]
    with eval_mode(model):
        for m in bns:
            m.reset_running_stats()
            m.train()
        for i, (x, _) in enumerate(batches):
            # momentum 1/(i+1) at batch i: the equal-weight average over the batches, the
            # same numbers as momentum=None, which reads the batch counter back from the
            # device at every batch (a sync that a CUDA graph cannot hold)
            for m in bns:
                m.momentum = 1.0 / (i + 1)
            model(x)
    for m, mom in zip(bns, momenta):
        m.momentum = mom

