"""Models by name (NIN, VGG, MLP) and initialisation schemes.

NIN and VGG follow the CIFAR-10 implementations that im2016 used
(``szagoruyko/cifar.torch``: ``nin.lua`` and ``vgg_bn_drop.lua``), with a width
multiplier, a depth and batch normalisation switchable so that the default
study can run narrow versions on a CPU. The MLP covers zhang2018's 1320-parameter
net (108 inputs, three hidden layers of 10, one sigmoid output without bias).

All models take ``N×C×H×W`` image tensors and return logits ``N×K`` (``N×1``
for a binary head).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import nn

ARCHS = ("nin", "vgg", "mlp")
INIT_SCHEMES = ("default", "kaiming", "glorot", "torch", "normal")
ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
VGG_DEPTHS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}
# NIN stages of cifar.torch: (kernel, [out channels of the kxk conv and the two 1x1 convs])
NIN_STAGES = ((5, (192, 160, 96)), (5, (192, 192, 192)), (3, (192, 192, None)))


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def _conv_block(cin: int, cout: int, k: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, padding=k // 2, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout, eps=1e-3))
    layers.append(nn.ReLU(inplace=True))
    return layers


class NIN(nn.Module):
    """Network in Network (Lin et al. 2014), as in cifar.torch's ``nin.lua``.

    ``depth`` stages (1 to 3) of mlpconv blocks (a k×k conv and two 1×1 convs, each
    followed by optional BN and ReLU); max-pool after the first stage, average
    pool after the second, dropout after each pool; the last 1×1 conv maps to the
    classes and a global average pool gives the logits.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: float = 1.0, depth: int = 3,
                 batch_norm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        if not 1 <= depth <= len(NIN_STAGES):
            raise ValueError(f"NIN depth must be 1..{len(NIN_STAGES)}, got {depth}")
        layers: list[nn.Module] = []
        cin = in_channels
        for s, (k, chans) in enumerate(NIN_STAGES[:depth]):
            last_stage = s == depth - 1
            outs = [_scaled(c, width) if c is not None else num_classes for c in chans]
            if last_stage:
                outs[-1] = num_classes
            for j, cout in enumerate(outs):
                layers += _conv_block(cin, cout, k if j == 0 else 1, batch_norm)
                cin = cout
            if not last_stage:
                pool = nn.MaxPool2d(3, 2, ceil_mode=True) if s == 0 else nn.AvgPool2d(3, 2, ceil_mode=True)
                layers.append(pool)
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class VGG(nn.Module):
    """VGG for CIFAR-10 as in cifar.torch's ``vgg_bn_drop.lua``: 3×3 conv blocks with
    optional BN, dropout in the conv blocks (``conv_dropout``), max-pools, then
    dropout → linear(512w) → BN → ReLU → dropout → linear(classes)."""

    def __init__(self, num_classes: int, in_channels: int = 3, width: float = 1.0, depth: int = 16,
                 batch_norm: bool = True, dropout: float = 0.0, conv_dropout: float = 0.0) -> None:
        super().__init__()
        if depth not in VGG_DEPTHS:
            raise ValueError(f"VGG depth must be one of {sorted(VGG_DEPTHS)}, got {depth}")
        layers: list[nn.Module] = []
        cin = in_channels
        cfg = VGG_DEPTHS[depth]
        for i, item in enumerate(cfg):
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            cout = _scaled(item, width)
            layers += _conv_block(cin, cout, 3, batch_norm)
            if conv_dropout > 0 and cfg[i + 1] != "M":
                layers.append(nn.Dropout(conv_dropout))
            cin = cout
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        hidden = _scaled(512, width)
        head: list[nn.Module] = []
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(cin, hidden, bias=not batch_norm))
        if batch_norm:
            head.append(nn.BatchNorm1d(hidden))
        head.append(nn.ReLU(inplace=True))
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(hidden, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class MLP(nn.Module):
    """Fully connected net on flattened inputs: ``hidden`` layers with ``activation``.

    With ``outputs=1`` the single logit is read through a sigmoid by the loss
    (binary cross-entropy), as in zhang2018; ``output_bias=False`` drops the last
    layer's bias (zhang2018's 1320-parameter net).
    """

    def __init__(self, in_features: int, outputs: int, hidden: Sequence[int] = (10, 10, 10),
                 activation: str = "relu", output_bias: bool = True, batch_norm: bool = False) -> None:
        super().__init__()
        act = ACTIVATIONS[activation]
        layers: list[nn.Module] = [nn.Flatten()]
        cin = in_features
        for h in hidden:
            layers.append(nn.Linear(cin, h, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(act())
            cin = h
        layers.append(nn.Linear(cin, outputs, bias=output_bias))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_model(spec: Mapping[str, Any], input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Build the model that ``spec`` names for inputs of ``input_shape`` (C, H, W).

    ``spec`` keys: ``arch`` (one of :data:`ARCHS`) and the architecture's options:
    NIN ``width, depth, batch_norm, dropout``; VGG ``width, depth, batch_norm,
    dropout, conv_dropout``; MLP ``hidden, activation, output_bias, batch_norm,
    binary`` (one logit for a two-class problem). ``init`` is ignored here (see
    :func:`init_weights`).
    """
    arch = spec.get("arch")
    c = int(input_shape[0])
    if arch == "nin":
        return NIN(num_classes, c, width=spec.get("width", 1.0), depth=spec.get("depth", 3),
                   batch_norm=spec.get("batch_norm", True), dropout=spec.get("dropout", 0.0))
    if arch == "vgg":
        return VGG(num_classes, c, width=spec.get("width", 1.0), depth=spec.get("depth", 16),
                   batch_norm=spec.get("batch_norm", True), dropout=spec.get("dropout", 0.0),
                   conv_dropout=spec.get("conv_dropout", 0.0))
    if arch == "mlp":
        binary = spec.get("binary", False)
        if binary and num_classes != 2:
            raise ValueError(f"a binary MLP needs 2 classes, the data set has {num_classes}")
        return MLP(math.prod(int(s) for s in input_shape), 1 if binary else num_classes,
                   hidden=spec.get("hidden", (10, 10, 10)), activation=spec.get("activation", "relu"),
                   output_bias=spec.get("output_bias", True), batch_norm=spec.get("batch_norm", False))
    raise ValueError(f"unknown model arch {arch!r}; allowed: {', '.join(ARCHS)}")


def _weighted_layers(model: nn.Module):
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _uses_relu(model: nn.Module) -> bool:
    return any(isinstance(m, nn.ReLU) for m in model.modules())


@torch.no_grad()
def init_weights(model: nn.Module, scheme: str = "default", *, mean: float = 0.0, std: float = 1.0,
                 seed: int | None = None) -> nn.Module:
    """Initialise ``model`` in place and return it.

    * ``default``: ``kaiming`` for nets with ReLUs, ``glorot`` otherwise;
    * ``kaiming``: He normal (fan-in, ReLU gain) weights, zero biases;
    * ``glorot``: Glorot uniform weights, zero biases;
    * ``torch``: PyTorch's own layer defaults;
    * ``normal``: every conv/linear weight and bias from N(mean, std), as in the
      exotic inits of im2016 (N(−10, 0.01), N(−1, 1)).

    BatchNorm scales and shifts are set to 1 and 0 in every scheme. With
    ``seed`` the draw uses a private generator state (the global RNG is left as
    it was).
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; allowed: {', '.join(INIT_SCHEMES)}")
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return init_weights(model, scheme, mean=mean, std=std, seed=None)
    if scheme == "default":
        scheme = "kaiming" if _uses_relu(model) else "glorot"
    for m in _weighted_layers(model):
        if scheme == "torch":
            m.reset_parameters()
        elif scheme == "normal":
            nn.init.normal_(m.weight, mean, std)
            if m.bias is not None:
                nn.init.normal_(m.bias, mean, std)
        else:
            if scheme == "kaiming":
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
            m.reset_running_stats()
    return model


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
