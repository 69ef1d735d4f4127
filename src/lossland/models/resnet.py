"""CIFAR ResNets (He et al. 2016, §4.2) with the no-short variant of Li et al. 2018."""

from __future__ import annotations

import numbers
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import _scaled

# depth = 6n + 2: three stages of n basic blocks (two 3x3 convs each), the stem conv and the linear layer
RESNET_DEPTHS = (8, 14, 20, 32, 44, 56, 110)


def resnet_depth_ok(depth: int) -> bool:
    """Whether ``depth`` is a CIFAR ResNet depth, 6n + 2 with n ≥ 1 (:data:`RESNET_DEPTHS` the usual ones)."""
    return isinstance(depth, numbers.Integral) and not isinstance(depth, bool) and depth >= 8 and (depth - 2) % 6 == 0


def resnet_depths_text() -> str:
    return f"6n+2 for n >= 1 ({', '.join(map(str, RESNET_DEPTHS))}, ...)"


class BasicBlock(nn.Module):
    """conv3×3–BN–ReLU–conv3×3–BN, ``+ shortcut(x)`` when ``skip``, ReLU. The shortcut is
    He et al.'s option A, without parameters: the identity, or where the shape changes
    ``x[:, :, ::2, ::2]`` with zero channels appended."""

    def __init__(self, cin: int, cout: int, stride: int, batch_norm: bool, skip: bool) -> None:
        super().__init__()
        self.skip, self.stride, self.pad = skip, stride, cout - cin
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=not batch_norm)
        self.bn1 = nn.BatchNorm2d(cout) if batch_norm else None
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=not batch_norm)
        self.bn2 = nn.BatchNorm2d(cout) if batch_norm else None
        self.relu2 = nn.ReLU(inplace=True)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.pad)) if self.pad else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        if self.bn1 is not None:
            out = self.bn1(out)
        out = self.conv2(self.relu1(out))
        if self.bn2 is not None:
            out = self.bn2(out)
        if self.skip:
            out = out + self.shortcut(x)
        return self.relu2(out)


class ResNet(nn.Module):
    """CIFAR ResNet-``depth`` (He et al. 2016, §4.2): a 3×3 conv to 16 channels, three
    stages of n = (depth − 2)/6 basic blocks at 16, 32, 64 channels (times ``width``;
    stride 2 at the first block of stages 2 and 3), global average pool, linear.
    ``skip=False`` is Li et al. 2018's "no-short" net: every addition removed, the
    same modules and state_dict otherwise (the shortcuts have no parameters)."""

    def __init__(self, num_classes: int, in_channels: int = 3, depth: int = 20, width: float = 1.0,
                 batch_norm: bool = True, skip: bool = True) -> None:
        super().__init__()
        if not resnet_depth_ok(depth):
            raise ValueError(f"ResNet depth must be {resnet_depths_text()}, got {depth}")
        n = (int(depth) - 2) // 6
        chans = [_scaled(c, width) for c in (16, 32, 64)]
        stem: list[tuple[str, nn.Module]] = [("conv", nn.Conv2d(in_channels, chans[0], 3, 1, 1, bias=not batch_norm))]
        if batch_norm:
            stem.append(("bn", nn.BatchNorm2d(chans[0])))
        stem.append(("relu", nn.ReLU(inplace=True)))
        self.stem = nn.Sequential(OrderedDict(stem))
        cin = chans[0]
        for s, cout in enumerate(chans):
            blocks = [BasicBlock(cin if i == 0 else cout, cout, 2 if s > 0 and i == 0 else 1, batch_norm, skip)
                      for i in range(n)]
            self.add_module(f"stage{s + 1}", nn.Sequential(*blocks))
            cin = cout
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage3(self.stage2(self.stage1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))
