"""Fully connected nets on flattened inputs (zhang2018's 1320-parameter net among them)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


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

