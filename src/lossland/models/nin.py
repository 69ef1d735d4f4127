"""Network in Network for CIFAR-10, as in ``szagoruyko/cifar.torch``'s ``nin.lua``."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import _conv_block, _scaled

# NIN stages of cifar.torch: (kernel, [out channels of the kxk conv and the two 1x1 convs])
NIN_STAGES = ((5, (192, 160, 96)), (5, (192, 192, 192)), (3, (192, 192, None)))


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

