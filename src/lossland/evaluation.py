"""The one evaluation loop: mean loss and accuracy of a model over data.

``data`` is either a tuple ``(inputs, targets)`` of tensors, split here into
chunks of ``batch_size``, or any iterable of such batches. Logits with one
column are read as a binary classifier (sigmoid + binary cross-entropy);
otherwise softmax cross-entropy over dimension 1, so a language model's ``N×V×T``
logits with ``N×T`` targets give the mean per-token loss. Accuracy is the mean over
samples of each sample's share of correct labels (:func:`correct_count`): the plain
accuracy for one label per sample, the per-token accuracy for sequences.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Batch = tuple[torch.Tensor, torch.Tensor]
Data = Batch | Iterable[Batch]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def default_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy; binary cross-entropy with logits for one-column outputs."""
    if logits.dim() == 2 and logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], targets.to(logits.dtype))
    return F.cross_entropy(logits, targets)


def predictions(logits: torch.Tensor) -> torch.Tensor:
    """Predicted labels: argmax, or ``logit > 0`` for a one-column output."""
    if logits.dim() == 2 and logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)


def sample_mean(values: torch.Tensor) -> torch.Tensor:
    """``N×...`` → ``N``: each sample's mean over its other dimensions (float64), e.g. over a sequence's tokens."""
    return values.reshape(values.shape[0], -1).double().mean(1)


def correct_count(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The batch's number of correct samples (float64): per sample the share of its labels predicted,
    summed (for one label per sample the count of correct predictions)."""
    return sample_mean(predictions(logits) == targets).sum()


def is_tensor_pair(data: object) -> bool:
    return (isinstance(data, (tuple, list)) and len(data) == 2
            and all(isinstance(t, torch.Tensor) for t in data))


def iter_batches(data: Data, batch_size: int | None = None) -> Iterator[Batch]:
    """Yield ``(inputs, targets)`` batches from a tensor pair or an iterable of pairs."""
    if is_tensor_pair(data):
        x, y = data
        n = y.shape[0]
        step = n if not batch_size else batch_size
        for start in range(0, n, step):
            yield x[start:start + step], y[start:start + step]
    else:
        yield from data


def model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def _spatial_convs(model: nn.Module):
    """The model's 2-D convolutions with a kernel wider than 1×1."""
    return (m for m in model.modules() if isinstance(m, nn.Conv2d) and m.weight.shape[-1] > 1)


def has_conv2d(model: nn.Module) -> bool:
    """Whether ``model`` has a 2-D convolution with a kernel wider than 1×1."""
    return any(True for _ in _spatial_convs(model))


def convs_channels_last(model: nn.Module) -> bool:
    """Whether the user made ``model``'s convolutions channels-last."""
    return any(m.weight.is_contiguous(memory_format=torch.channels_last) for m in _spatial_convs(model))


def inputs_channels_last(model: nn.Module) -> bool:
    """Whether image batches go into ``model`` in channels-last memory format.

    Yes when its convolutions are channels-last already (the format the user
    chose), and on the CPU for any model with a 2-D convolution, whatever the
    format of its weights: oneDNN then runs its channels-last kernels, and each
    conv's output keeps the input's format, so the model itself need not be
    converted. Measured on ``benchmarks/surface_throughput.py``'s zoo (2 cores,
    1000 CIFAR images in chunks of 128, no-grad forward, models in PyTorch's
    default format): 2.6× on a plain conv–ReLU–pool CNN, 2.4× on NIN-¼ with
    BatchNorm, 2.0× on VGG-11-¼, 1.2× on a ResNet-8. A fixed rule rather than
    a timing probe, so that the same call gives the same numbers in every
    process. Not on CUDA, where cuDNN's choice is left alone (float32
    channels-last is not generally faster there). Hessian products follow a
    narrower rule (:func:`lossland.curvature.operator._products_channels_last`).
    """
    return convs_channels_last(model) or (model_device(model).type == "cpu" and has_conv2d(model))


def prepare_inputs(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


@contextlib.contextmanager
def eval_mode(model: nn.Module, train: bool = False):
    """Put ``model`` in eval mode (or train mode) and restore each module's mode after."""
    modes = [(m, m.training) for m in model.modules()]
    model.train(train)
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode


@torch.no_grad()
def evaluate(model: nn.Module, data: Data, *, loss_fn: LossFn | None = None,
             batch_size: int | None = 1000) -> dict[str, float]:
    """Mean loss, accuracy and count of ``model`` (in eval mode) over ``data``.

    ``loss_fn(logits, targets)`` must return the batch's mean loss (default:
    :func:`default_loss`); batches are weighted by their size.
    """
    loss_fn = loss_fn or default_loss
    device = model_device(model)
    cl = inputs_channels_last(model)
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    with eval_mode(model):
        for x, y in iter_batches(data, batch_size):
            x = prepare_inputs(x, device, cl)
            y = y.to(device, non_blocking=True)
            logits = model(x)
            total_loss += loss_fn(logits, y).double() * y.shape[0]
            correct += correct_count(logits, y)
            count += int(y.shape[0])
    if count == 0:
        raise ValueError("evaluate() got no data")
    return {"loss": float(total_loss) / count, "accuracy": float(correct) / count, "n": count}


def evaluate_splits(model: nn.Module, splits: dict[str, Sequence[torch.Tensor]], **kw) -> dict[str, dict]:
    """:func:`evaluate` on each named split."""
    return {name: evaluate(model, tuple(split), **kw) for name, split in splits.items()}
