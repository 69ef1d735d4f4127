"""Models by name (NIN, VGG, ResNet, MLP, LSTM) and initialisation schemes.

NIN and VGG follow the CIFAR-10 implementations that im2016 used
(``szagoruyko/cifar.torch``: ``nin.lua`` and ``vgg_bn_drop.lua``), with a width
multiplier, a depth and batch normalisation switchable so that the default
study can run narrow versions on a CPU. ResNet is He et al. (2016)'s CIFAR ResNet
(depth 6n+2, parameter-free option-A shortcuts) with the skip connections
switchable, for Li et al. (2018)'s ResNet-56 against ResNet-56-noshort. The MLP
covers zhang2018's 1320-parameter net (108 inputs, three hidden layers of 10, one
sigmoid output without bias). The LSTM is im2016's word-level language model on
Penn Treebank.

The image models take ``N×C×H×W`` image tensors and return logits ``N×K`` (``N×1``
for a binary head); the LSTM takes token ids ``N×T`` and returns ``N×V×T``. One
module an architecture (:mod:`.nin`, :mod:`.vgg`, :mod:`.resnet`, :mod:`.mlp`,
:mod:`.lstm`, the shared conv block and width rounding in
:mod:`.blocks`), the initialisation schemes in :mod:`.init`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from .init import INIT_SCHEMES, init_weights
from .lstm import LSTMLanguageModel
from .mlp import ACTIVATIONS, MLP
from .nin import NIN, NIN_STAGES
from .resnet import RESNET_DEPTHS, ResNet, resnet_depth_ok, resnet_depths_text
from .vgg import VGG, VGG_DEPTHS

__all__ = ["ARCHS", "NIN_STAGES", "VGG_DEPTHS", "RESNET_DEPTHS", "INIT_SCHEMES", "ACTIVATIONS", "NIN", "VGG",
           "ResNet", "MLP", "LSTMLanguageModel", "resnet_depth_ok", "resnet_depths_text", "build_model", "init_weights",
           "create_model", "count_parameters", "LANGUAGE_MODELS", "BATCH_NORM_DEFAULTS", "has_batch_norm"]

ARCHS = ("nin", "vgg", "resnet", "mlp", "lstm")
#: architectures whose inputs are token ids and whose loss is per token (perplexity = exp(loss))
LANGUAGE_MODELS = ("lstm",)
#: whether an architecture has BatchNorm layers when its spec says nothing (the LSTM has none)
BATCH_NORM_DEFAULTS = {"nin": True, "vgg": True, "resnet": True, "mlp": False}


def has_batch_norm(spec: Mapping[str, Any]) -> bool:
    """Whether the model that ``spec`` names has BatchNorm layers (``batch_norm``, else the
    architecture's default in :data:`BATCH_NORM_DEFAULTS`; never for the LSTM)."""
    arch = spec.get("arch")
    if arch not in BATCH_NORM_DEFAULTS:
        return False
    return bool(spec.get("batch_norm", BATCH_NORM_DEFAULTS[arch]))


def build_model(spec: Mapping[str, Any], input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Build the model that ``spec`` names for inputs of ``input_shape`` (C, H, W; for the LSTM (T,)).

    ``spec`` keys: ``arch`` (one of :data:`ARCHS`) and the architecture's options:
    NIN ``width, depth, batch_norm, dropout``; VGG ``width, depth, batch_norm,
    dropout, conv_dropout``; ResNet ``depth`` (6n+2, default 20), ``width``,
    ``batch_norm``, ``skip`` (false: Li et al.'s no-short net); MLP ``hidden,
    activation, output_bias, batch_norm, binary`` (one logit for a two-class problem); LSTM ``embedding,
    hidden, layers, dropout, tie_weights`` (``num_classes`` is the vocabulary's size). ``init`` is ignored here (see
    :func:`init_weights`).
    """
    arch = spec.get("arch")
    c = int(input_shape[0])
    if arch == "nin":
        return NIN(num_classes, c, width=spec.get("width", 1.0), depth=spec.get("depth", 3),
                   batch_norm=has_batch_norm(spec), dropout=spec.get("dropout", 0.0))
    if arch == "vgg":
        return VGG(num_classes, c, width=spec.get("width", 1.0), depth=spec.get("depth", 16),
                   batch_norm=has_batch_norm(spec), dropout=spec.get("dropout", 0.0),
                   conv_dropout=spec.get("conv_dropout", 0.0))
    if arch == "resnet":
        return ResNet(num_classes, c, depth=spec.get("depth", 20), width=spec.get("width", 1.0),
                      batch_norm=has_batch_norm(spec), skip=spec.get("skip", True))
    if arch == "mlp":
        binary = spec.get("binary", False)
        if binary and num_classes != 2:
            raise ValueError(f"a binary MLP needs 2 classes, the data set has {num_classes}")
        return MLP(math.prod(int(s) for s in input_shape), 1 if binary else num_classes,
                   hidden=spec.get("hidden", (10, 10, 10)), activation=spec.get("activation", "relu"),
                   output_bias=spec.get("output_bias", True), batch_norm=has_batch_norm(spec))
    if arch == "lstm":
        if len(input_shape) != 1:
            raise ValueError(f"an lstm reads token sequences (input shape (T,)); got inputs of shape "
                             f"{tuple(input_shape)}: use a text data set (ptb, ptb-embedded)")
        return LSTMLanguageModel(num_classes, embedding=spec.get("embedding", 200), hidden=spec.get("hidden", 200),
                                 layers=spec.get("layers", 1), dropout=spec.get("dropout", 0.0),
                                 tie_weights=spec.get("tie_weights", False))
    raise ValueError(f"unknown model arch {arch!r}; allowed: {', '.join(ARCHS)}")


def create_model(spec: Mapping[str, Any], input_shape: Sequence[int], num_classes: int,
                 seed: int = 0) -> nn.Module:
    """Build and initialise a model from a config ``spec`` (with its ``init`` entry)."""
    init = dict(spec.get("init") or {})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = build_model(spec, input_shape, num_classes)
        init_weights(model, init.get("scheme", "default"), mean=init.get("mean", 0.0),
                     std=init.get("std", 1.0))
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
