"""The conv block NIN and VGG share: conv, optional BatchNorm, ReLU, at a width multiplier."""

from __future__ import annotations

from torch import nn


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def _conv_block(cin: int, cout: int, k: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, padding=k // 2, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout, eps=1e-3))
    layers.append(nn.ReLU(inplace=True))
    return layers

