"""Initialisation schemes: He, Glorot, PyTorch's own, and im2016's exotic normal inits."""

from __future__ import annotations

import torch
from torch import nn

INIT_SCHEMES = ("default", "kaiming", "glorot", "torch", "normal")


def _weighted_layers(model: nn.Module):
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding, nn.RNNBase))]


def _uses_relu(model: nn.Module) -> bool:
    return any(isinstance(m, nn.ReLU) for m in model.modules())


@torch.no_grad()
def init_weights(model: nn.Module, scheme: str = "default", *, mean: float = 0.0, std: float = 1.0,
                 seed: int | None = None) -> nn.Module:
    """Initialise ``model`` in place and return it.

    * ``default``: the model's own ``default_init()`` where it has one (the LSTM language
      model: uniform ±0.1), else ``kaiming`` for nets with ReLUs, ``glorot`` otherwise;
    * ``kaiming``: He normal (fan-in, ReLU gain) weights, zero biases;
    * ``glorot``: Glorot uniform weights, zero biases;
    * ``torch``: PyTorch's own layer defaults;
    * ``normal``: every conv/linear weight and bias from N(mean, std), as in the
      exotic inits of im2016 (N(−10, 0.01), N(−1, 1)).

    Weighted layers are convolutions, linear layers, embeddings and recurrent layers
    (each ``weight*`` matrix of an LSTM, its ``bias*`` vectors as biases). BatchNorm
    scales and shifts are set to 1 and 0 in every scheme. With
    ``seed`` the draw uses a private generator state (the global RNG is left as
    it was).
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; allowed: {', '.join(INIT_SCHEMES)}")
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return init_weights(model, scheme, mean=mean, std=std, seed=None)
    if scheme == "default" and callable(getattr(model, "default_init", None)):
        model.default_init()
        scheme = "own"
    elif scheme == "default":
        scheme = "kaiming" if _uses_relu(model) else "glorot"
    for m in _weighted_layers(model) if scheme != "own" else ():
        if scheme == "torch":
            m.reset_parameters()
            continue
        for name, p in m.named_parameters(recurse=False):
            if scheme == "normal":
                nn.init.normal_(p, mean, std)
            elif name.startswith("bias"):
                nn.init.zeros_(p)
            elif scheme == "kaiming":
                nn.init.kaiming_normal_(p, mode="fan_in", nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(p)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
            m.reset_running_stats()
    return model

