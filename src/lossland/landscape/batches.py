"""The data of one landscape call: its batches, held on the model's device."""

from __future__ import annotations

import torch

from ..evaluation import Data, is_tensor_pair, iter_batches, prepare_inputs


def _default_batch_size(device: torch.device) -> int:
    # measured on a 2-core CPU (NIN at width 1/4, channels-last): 64–128 beat
    # 256 and 1024 (cache); on a GPU larger batches only help
    return 128 if device.type == "cpu" else 4096


def _materialize(data: Data, device: torch.device, channels_last: bool,
                 batch_size: int | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The batches of ``data`` on ``device``, ready for the model (held for the call)."""
    bs = batch_size or _default_batch_size(device)
    if is_tensor_pair(data):
        x = prepare_inputs(data[0], device, channels_last)
        y = data[1].to(device)
        batches = list(iter_batches((x, y), bs))
    else:
        batches = [(prepare_inputs(x, device, channels_last), y.to(device)) for x, y in iter_batches(data)]
    if not batches or sum(int(y.shape[0]) for _, y in batches) == 0:
        raise ValueError("no data to evaluate the landscape on")
    return batches
