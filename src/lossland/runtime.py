"""Device choice, threads and determinism for scripts and notebooks.

torch is imported by the functions that need it, so that importing this module
(as a table or figure job may) does not load it.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger("lossland")


def pick_device(requested: str = "cpu") -> torch.device:
    """``torch.device`` for ``requested`` (``cpu``, ``cuda``, ``cuda:N`` or ``auto``).

    A CUDA request on a machine without a visible GPU falls back to the CPU with
    a warning, so a GPU config still runs on a laptop.
    """
    import torch

    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        log.warning("device %r requested but no CUDA device is visible; using the CPU", requested)
        return torch.device("cpu")
    return torch.device(requested)


def configure(device: torch.device, threads: int | None = None, deterministic: bool = True) -> None:
    """Set torch's CPU threads and deterministic algorithms for reproducible tables.

    On CUDA this turns off cuDNN autotuning and asks for deterministic kernels
    (warning, not failing, where an op has none).
    """
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    if device.type == "cuda":
        # full float32 matmuls: tables must not depend on TF32 settings
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def resolve_channels_last(setting: str | bool, device: torch.device) -> bool:
    """``auto``: channels-last on the CPU (measured faster for the conv nets here), not on CUDA."""
    if setting == "auto":
        return device.type == "cpu"
    return bool(setting)

