"""zhang2018 section IV: deep linear students of a noisy linear teacher.

A teacher ``w̄ ~ N(0, I)`` labels Gaussian inputs ``x ~ N(0, I_D)``:
``y = w̄·x + ε``, ``ε ~ N(0, σ²)``. A student ``ŷ = W2 W1 x`` (``W1``: ``H × D``,
``W2``: ``1 × H``, no biases) is trained on ``N < D`` examples (the underdetermined
regime) with the quadratic loss ``½ mean (y − ŷ)²``. For a student ``W = W2 W1``:

* the exact generalisation error on a fresh Gaussian example is
  ``E_g = ‖W − w̄‖² + σ²`` (:func:`generalization_error`);
* zhang2018 eqs. 29-34: ``W`` splits into its part in the span of the training inputs
  and the part orthogonal to it. Training to zero error fixes the first to the
  interpolant ``w* = y X⁺`` (the same for every student); the teacher's orthogonal part
  is uncorrelated with the student's and has expected squared norm ``D − N``. So
  ``E_g ≈ ‖W‖² + c`` with ``c = ‖w* − w̄_∥‖² − ‖w*‖² + ‖w̄_⊥‖² + σ²``: linear in the
  squared weight norm with slope 1 (:func:`predicted_generalization_error`). The paper
  writes ``D − N`` for ``‖w̄_⊥‖²``, its expectation; the teacher is known here, so the
  intercept uses its realised value (``expected=True`` gives the paper's), and the only term
  left out is the cross term ``−2 W_⊥·w̄_⊥``, which averages to zero over students;
* ``W1 W1ᵀ − W2ᵀ W2`` is conserved by gradient flow on the full batch (eqs. 25-28):
  :func:`invariant`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TeacherData:
    """``x (N, D)``, ``y (N,)``, the teacher ``w̄ (D,)`` and the label noise's variance."""

    x: torch.Tensor
    y: torch.Tensor
    teacher: torch.Tensor
    noise_variance: float


def teacher_data(inputs: int, examples: int, noise_std: float, seed: int = 0,
                 dtype: torch.dtype = torch.float64) -> TeacherData:
    """``examples`` Gaussian inputs of dimension ``inputs`` labelled by a unit-variance teacher plus noise."""
    g = torch.Generator().manual_seed(int(seed))
    teacher = torch.randn(inputs, generator=g, dtype=dtype)
    x = torch.randn(examples, inputs, generator=g, dtype=dtype)
    y = x @ teacher + float(noise_std) * torch.randn(examples, generator=g, dtype=dtype)
    return TeacherData(x, y, teacher, float(noise_std) ** 2)


def generalization_error(product: torch.Tensor, teacher: torch.Tensor, noise_variance: float) -> torch.Tensor:
    """Exact ``E[(y − W x)²]`` for ``x ~ N(0, I)``: ``‖W − w̄‖² + σ²``; ``product``: ``(D,)`` or ``(M, D)``."""
    w = product.reshape(-1, teacher.numel()).to(teacher.dtype)
    return ((w - teacher) ** 2).sum(1) + noise_variance


def interpolant(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The minimum-norm ``w`` with ``x w = y`` (``y X⁺``; exact when ``N ≤ D`` and ``x`` has full rank)."""
    return torch.linalg.lstsq(x, y.unsqueeze(1), driver="gelsd").solution[:, 0] if x.device.type == "cpu" else \
        torch.linalg.pinv(x) @ y


def prediction_intercept(data: TeacherData, expected: bool = False) -> float:
    """``c`` of ``E_g ≈ ‖W‖² + c`` (zhang2018 eq. 34; see the module docstring; ``expected``:
    ``D − N`` for the teacher's orthogonal part, as the paper)."""
    x, teacher = data.x, data.teacher
    n, d = x.shape
    w_star = interpolant(x, data.y)
    q, _ = torch.linalg.qr(x.T)               # an orthonormal basis of the span of the inputs, (D, N)
    teacher_par = q @ (q.T @ teacher)
    orthogonal = (d - n) if expected else float(((teacher - teacher_par) ** 2).sum())
    return float(((w_star - teacher_par) ** 2).sum() - (w_star ** 2).sum() + orthogonal + data.noise_variance)


def predicted_generalization_error(product: torch.Tensor, data: TeacherData, expected: bool = False) -> torch.Tensor:
    """zhang2018 eq. 34: ``‖W‖² + c`` for every student ``W`` of ``product`` (``(D,)`` or ``(M, D)``)."""
    w = product.reshape(-1, data.teacher.numel()).to(data.teacher.dtype)
    return (w ** 2).sum(1) + prediction_intercept(data, expected)


def invariant(w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """``W1 W1ᵀ − W2ᵀ W2`` (``H × H``; batched over leading axes)."""
    return w1 @ w1.transpose(-1, -2) - w2.transpose(-1, -2) @ w2


def student_model(inputs: int, hidden: int, dtype: torch.dtype = torch.float64) -> torch.nn.Module:
    """``ŷ = W2 W1 x`` as an ``nn.Module`` (two bias-free ``nn.Linear`` layers)."""
    return torch.nn.Sequential(torch.nn.Linear(inputs, hidden, bias=False),
                               torch.nn.Linear(hidden, 1, bias=False)).to(dtype)


def student_init(members: int, inputs: int, hidden: int, scales: torch.Tensor, imbalance: torch.Tensor | None = None,
                 seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Flat initial parameters ``(M, H·D + H)`` (``W1`` then ``W2``): ``W1 = a s G1 / √D``,
    ``W2 = s G2 / a`` with ``G`` standard normal, ``s = scales[m]`` and ``a = imbalance[m]``
    (default 1: balanced, ``‖W1‖_F² ≈ ‖W2‖² ≈ H s²``)."""
    g = torch.Generator().manual_seed(int(seed))
    scales = torch.as_tensor(scales, dtype=dtype).reshape(members, 1)
    a = torch.ones(members, 1, dtype=dtype) if imbalance is None else torch.as_tensor(imbalance, dtype=dtype).reshape(
        members, 1)
    w1 = torch.randn(members, hidden * inputs, generator=g, dtype=dtype) * scales * a / inputs ** 0.5
    w2 = torch.randn(members, hidden, generator=g, dtype=dtype) * scales / a
    return torch.cat([w1, w2], 1)


def squared_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``½ mean (ŷ − y)²`` (the loss of :class:`~lossland.ensemble.Ensemble` with ``loss="mse"``)."""
    return 0.5 * ((out.reshape(-1) - y.to(out.dtype)) ** 2).mean()


def invariant_drift(flat: torch.Tensor, shape: tuple[int, int], data: TeacherData, *, lr: float, steps: int,
                    records: int = 20, batch_size: int | None = None, seed: int = 0):
    """Train one student (``flat``: ``(1, H·D + H)``; ``shape``: ``(H, D)``) by full-batch gradient
    descent (``batch_size`` None) or SGD (each epoch shuffled from one generator seeded by ``seed``)
    for ``steps`` steps at ``lr``; at ``records`` evenly spaced steps and at the start, the drift
    ``|D_t − D_0|_F`` of ``D = W1 W1ᵀ − W2ᵀ W2``, relative to ``|W1 W1ᵀ|_F + |W2ᵀ W2|_F``, and the
    loss. Returns a DataFrame ``step, time (lr × step), drift, relative_drift, loss``."""
    import pandas as pd

    from .ensemble import Ensemble

    h, d = shape
    ens = Ensemble([(h, d, False), (1, h, False)], "linear", flat.clone().to(data.x.dtype))
    w1, w2 = [w for w, _ in ens.layers()]
    d0 = invariant(w1, w2)[0].clone()
    n = int(data.y.shape[0])
    g = torch.Generator().manual_seed(int(seed))
    marks = {round(steps * (k + 1) / records) for k in range(records)}
    rows = []

    def record(step: int) -> None:
        w1, w2 = [w[0] for w, _ in ens.layers()]
        dt = invariant(w1, w2)
        scale = float((w1 @ w1.T).norm() + (w2.T @ w2).norm())
        drift = float((dt - d0).norm())
        rows.append((step, lr * step, drift, drift / scale if scale else float("nan"),
                     float(ens.losses(data.x, data.y, "mse")[0])))

    record(0)
    order, at = None, n
    for step in range(1, steps + 1):
        if batch_size is None:
            _, grad = ens.loss_and_grad(data.x, data.y, "mse")
        else:
            if at + batch_size > n:
                order, at = torch.randperm(n, generator=g), 0
            idx = order[at:at + batch_size]
            at += batch_size
            _, grad = ens.loss_and_grad(data.x[idx], data.y[idx], "mse")
        ens.flat.sub_(grad, alpha=lr)
        if step in marks:
            record(step)
    return pd.DataFrame(rows, columns=["step", "time", "drift", "relative_drift", "loss"])
