"""VGG for CIFAR-10, as in ``szagoruyko/cifar.torch``'s ``vgg_bn_drop.lua``."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import _conv_block, _scaled

VGG_DEPTHS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}


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

