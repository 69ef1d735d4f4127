"""The data of one landscape call: its batches, held on the model's device, in the
memory format and chunk size chosen for the model."""

from __future__ import annotations

import torch
from torch import nn

from ..evaluation import (
    Data,
    has_conv2d,
    inputs_channels_last,
    is_tensor_pair,
    iter_batches,
    model_device,
    prepare_inputs,
)


def default_chunk_size(model: nn.Module, device: torch.device) -> int:
    """Images per forward when the caller gives no ``batch_size``.

    On a GPU larger chunks only help (4096). On a CPU (2 cores, no-grad forward over
    1000 CIFAR images, ``benchmarks/surface_throughput.py``'s zoo, channels-last):
    conv nets run fastest in chunks of 128 (NIN-¼ 4.8 points/s against 3.0 at 256 and
    2.5 at 1000; ResNet-8 6.1 against 4.1 at 256; a plain CNN and VGG-11-¼ within 5 %
    of their best from 64 to 256), where a chunk's activations stay in cache; a model
    without convolutions has small activations and gains from fewer, larger
    matrix products (an MLP 3072-512-512: 62 points/s in one chunk of 1000 against 48
    in chunks of 128), so it takes 1024.
    """
    if device.type != "cpu":
        return 4096
    return 128 if has_conv2d(model) else 1024


def _materialize(data: Data, model: nn.Module,
                 batch_size: int | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The batches of ``data`` on ``model``'s device, ready for the model (held for the
    call): channels-last where :func:`lossland.evaluation.inputs_channels_last` says so,
    in chunks of ``batch_size`` (default :func:`default_chunk_size`)."""
    device = model_device(model)
    channels_last = inputs_channels_last(model)
    bs = batch_size or default_chunk_size(model, device)
    if is_tensor_pair(data):
        x = prepare_inputs(data[0], device, channels_last)
        y = data[1].to(device)
        batches = list(iter_batches((x, y), bs))
    else:
        batches = [(prepare_inputs(x, device, channels_last), y.to(device)) for x, y in iter_batches(data)]
    if not batches or sum(int(y.shape[0]) for _, y in batches) == 0:
        raise ValueError("no data to evaluate the landscape on")
    return batches
