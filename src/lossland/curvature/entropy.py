"""zhang2018's entropy of a minimum from its exact Hessian spectrum.

``S = −(1 / 2P) Σ_{λ kept} log λ`` (zhang2018 eq. 14), ``P`` the number of parameters.
The spectrum is cleaned first (section III): eigenvalues whose value is below the
magnitude of the most negative eigenvalue are dropped, that magnitude standing for
the scale of numerical error (with no negative eigenvalue, the non-positive ones are
dropped); with ``top=k`` only the ``k`` largest are kept, the rule of section IV for a
deep linear net whose number of nonzero eigenvalues is known. ``P`` stays the number
of parameters (all eigenvalues), not the number kept, so that entropies of one model
compare.
"""

from __future__ import annotations

import math

import torch


def clean_spectrum(eigenvalues, top: int | None = None) -> torch.Tensor:
    """The eigenvalues the entropy sums over (see the module docstring), in descending order."""
    lam = torch.as_tensor(eigenvalues, dtype=torch.float64).flatten()
    lam = torch.sort(lam, descending=True).values
    if top is not None:
        kept = lam[:int(top)]
        return kept[kept > 0]
    floor = max(-float(lam.min()), 0.0) if lam.numel() else 0.0
    return lam[lam > floor]


def spectral_entropy(eigenvalues, num_parameters: int | None = None, top: int | None = None) -> float:
    """zhang2018's entropy ``−(1/2P) Σ log λ`` over the cleaned spectrum (:func:`clean_spectrum`);
    ``num_parameters``: ``P`` (default: the number of eigenvalues). NaN when nothing is kept."""
    lam = torch.as_tensor(eigenvalues, dtype=torch.float64).flatten()
    p = int(num_parameters or lam.numel())
    kept = clean_spectrum(lam, top)
    if kept.numel() == 0:
        return math.nan
    return float(-torch.log(kept).sum() / (2 * p))


def spectrum_summary(eigenvalues, num_parameters: int | None = None, top: int | None = None) -> dict:
    """The entropy and its companions from one spectrum: ``entropy``, ``neg_log_trace``
    (``−log Σ λ``), ``negative_fraction``, ``kept`` (eigenvalues summed), ``top_eigenvalue``,
    ``min_eigenvalue``."""
    lam = torch.as_tensor(eigenvalues, dtype=torch.float64).flatten()
    trace = float(lam.sum())
    return {"entropy": spectral_entropy(lam, num_parameters, top),
            "neg_log_trace": -math.log(trace) if trace > 0 else math.nan,
            "negative_fraction": float((lam < 0).double().mean()),
            "kept": int(clean_spectrum(lam, top).numel()),
            "top_eigenvalue": float(lam.max()), "min_eigenvalue": float(lam.min())}


def exact_spectrum(model, data, loss_fn=None, weight_decay: float = 0.0) -> torch.Tensor:
    """The eigenvalues (ascending, float64) of the exact Hessian of the mean loss over ``data``
    plus ``(weight_decay/2)·‖θ‖²`` (which adds ``weight_decay`` to every eigenvalue); the
    dense Hessian from :func:`lossland.hessian`, symmetrised."""
    from .operator import hessian

    h = hessian(model, data, loss_fn).double()
    h = 0.5 * (h + h.T)
    try:
        lam = torch.linalg.eigvalsh(h)
    except torch.linalg.LinAlgError:  # many (near-)repeated zero eigenvalues: LAPACK's other driver
        import numpy as np

        lam = torch.from_numpy(np.linalg.eigvalsh(h.cpu().numpy())).to(h.device)
    return lam + float(weight_decay)
