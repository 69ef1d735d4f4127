"""What every workflow script starts with, and how it finds weights.

A script (``workflow/scripts/*.py``) reads the ``snakemake`` object, calls
:func:`start` (log file, device, threads; table-only scripts: ``compute=False``,
which imports no torch), calls the library and writes its outputs.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from .paths import weights_file

log = logging.getLogger("lossland")


def setup_logging(log_path: str | None = None) -> logging.Logger:
    """Log to stderr and to ``log_path`` (the job's log file); uncaught errors are logged too."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_path:
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        handlers=handlers, force=True)

    def log_uncaught(exc_type, exc, tb):
        log.error("failed: %s: %s", exc_type.__name__, exc, exc_info=(exc_type, exc, tb))

    sys.excepthook = log_uncaught
    return log


def start(log_path: str | None, *, gpu: bool = False, threads: int | None = None, compute: bool = True):
    """Start a job: logging to ``log_path`` and, for a compute job, the device (CUDA when the
    rule asked for a GPU and one is visible, else the CPU), torch's threads and deterministic
    algorithms. Returns ``(logger, device)``; the device is ``None`` for ``compute=False``."""
    logger = setup_logging(log_path)
    if not compute:
        return logger, None
    from ..runtime import configure, pick_device

    device = pick_device("cuda" if gpu else "cpu")
    configure(device, threads=threads)
    return logger, device


def load_weights(items: Sequence[tuple[str | Path, int]], device: Any = "cpu") -> tuple[Any, list[dict]]:
    """The model and the state dicts of ``items``: ``(path, epoch)`` pairs, each path a weights file
    or a checkpoints folder holding that epoch (:func:`lossland.pipeline.paths.weights`). The
    model is rebuilt from the first file's sidecar and holds its weights; every file's sidecar
    must describe the same model and its tensors must fit it. Each file is read once."""
    from .runner import MODEL_KEYS, check_fits, model_for, read_checkpoint

    model, first, states, cache = None, None, [], {}
    for path, epoch in items:
        path = weights_file(path, epoch)
        if path not in cache:
            tensors, meta = read_checkpoint(path, device)
            if model is None:
                model, first = model_for(path, meta), (path, meta)
            differ = [f"{k} {first[1][k]} vs {meta[k]}" for k in MODEL_KEYS if meta[k] != first[1][k]]
            if differ:
                raise ValueError(f"{first[0]} and {path} hold weights of different models: {'; '.join(differ)}")
            check_fits(path, meta, tensors, model)
            cache[path] = tensors
        states.append(cache[path])
    if model is not None:
        model.to(device).load_state_dict(states[0])
    return model, states
