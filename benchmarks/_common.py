"""Helpers shared by the benchmark scripts (run as ``python benchmarks/<name>.py``,
which puts this folder on ``sys.path``)."""

import torch


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work, so that a timing covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_spec(name: str) -> dict:
    """``nin:0.25`` -> NIN at width 0.25; ``mlp:256`` -> MLP with one hidden layer of 256."""
    arch, _, size = name.partition(":")
    if arch == "mlp":
        return {"arch": "mlp", "hidden": [int(size or 256)]}
    return {"arch": arch, "width": float(size or 1.0)}
