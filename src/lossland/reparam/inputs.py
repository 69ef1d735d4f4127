"""Input reparametrisation (Dinh et al. 2017, §5.2): the same prediction function on a
preprocessed input, with a different input gradient.

With an invertible affine preprocessing ``u = T(x − μ)`` (feature standardisation,
whitening, a change of units), the model ``g(u) = f(T⁻¹u + μ)`` predicts exactly what
``f`` predicts on the corresponding ``x``, while its input gradient is
``∇_u g = T⁻ᵀ ∇_x f``: the size of the gradient at each example — a proposed measure of
how well a function generalises — and even the ranking of examples by it depend on the
arbitrary choice of input space.
"""

from __future__ import annotations

import torch
from torch import nn

from ..evaluation import eval_mode, model_device

__all__ = ["ReparametrizedInput", "input_reparametrization", "scaling", "standardization", "whitening",
           "input_gradient_norms"]


class ReparametrizedInput(nn.Module):
    """``g(u) = model(T⁻¹ u + μ)`` for inputs ``u = T(x − μ)`` (:meth:`encode`).

    ``matrix`` is ``T`` on the flattened input: a ``D × D`` matrix, or a vector of ``D``
    entries for a diagonal ``T`` (``D`` = the number of input features); ``inverse`` is
    ``T⁻¹`` when already known (else computed in float64); ``mean`` is ``μ`` (any shape
    that broadcasts to one input).
    """

    def __init__(self, model: nn.Module, matrix: torch.Tensor, mean: torch.Tensor | None = None,
                 inverse: torch.Tensor | None = None) -> None:
        super().__init__()
        self.model = model
        matrix = torch.as_tensor(matrix)
        if matrix.dim() == 1:
            if (matrix == 0).any():
                raise ValueError("a diagonal input transform needs nonzero entries (it must be invertible)")
            inv = 1 / matrix.double() if inverse is None else inverse
        elif matrix.dim() == 2 and matrix.shape[0] == matrix.shape[1]:
            inv = torch.linalg.inv(matrix.double()) if inverse is None else inverse
        else:
            raise ValueError(f"matrix must be D x D or a vector of D entries, got shape {tuple(matrix.shape)}")
        dtype = next((p.dtype for p in model.parameters()), torch.float32)
        self.register_buffer("matrix", matrix.to(dtype))
        self.register_buffer("inverse", torch.as_tensor(inv).to(dtype))
        self.register_buffer("mean", torch.zeros(()) if mean is None else torch.as_tensor(mean).to(dtype))

    def _apply_matrix(self, m: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        flat = z.reshape(z.shape[0], -1)
        if flat.shape[1] != m.shape[-1]:
            raise ValueError(f"inputs have {flat.shape[1]} features, the transform {m.shape[-1]}")
        out = flat * m if m.dim() == 1 else flat @ m.T
        return out.reshape(z.shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``u = T(x − μ)``: the inputs of this model that correspond to ``model``'s ``x``."""
        return self._apply_matrix(self.matrix, x - self.mean)

    def decode(self, u: torch.Tensor) -> torch.Tensor:
        return self._apply_matrix(self.inverse, u) + self.mean

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.model(self.decode(u))


def input_reparametrization(model: nn.Module, matrix: torch.Tensor, mean: torch.Tensor | None = None,
                            inverse: torch.Tensor | None = None) -> ReparametrizedInput:
    """:class:`ReparametrizedInput` of ``model`` (which is shared, not copied)."""
    return ReparametrizedInput(model, matrix, mean, inverse)


def scaling(x: torch.Tensor, c: float) -> tuple[torch.Tensor, None, torch.Tensor]:
    """``u = c·x``: ``(T as a diagonal, μ = None, T⁻¹)``."""
    d = x[0].numel()
    diag = torch.full((d,), float(c), dtype=torch.float64)
    return diag, None, 1 / diag


def standardization(x: torch.Tensor, eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Feature standardisation ``u = (x − μ)/σ`` per input feature (pixel and channel), from
    the statistics of ``x``: ``(T as a diagonal, μ, T⁻¹)``."""
    flat = x.reshape(x.shape[0], -1).double()
    mean = flat.mean(0)
    diag = 1 / (flat.std(0) + eps)
    return diag, mean.reshape(x.shape[1:]), 1 / diag


def whitening(x: torch.Tensor, eps: float = 1e-2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ZCA whitening ``u = (Σ + ε·m·I)^{-1/2}(x − μ)`` from the covariance ``Σ`` of the flattened
    ``x`` (float64; ``m`` = its mean eigenvalue): ``(T, μ, T⁻¹)``. ``eps`` keeps ``T``
    invertible when there are fewer examples than features. The eigenvectors come from the
    thin SVD of the centred data, so the cost grows with ``N·D²``, not ``D³``."""
    flat = x.reshape(x.shape[0], -1).double()
    n, d = flat.shape
    mean = flat.mean(0)
    _, sing, vt = torch.linalg.svd(flat - mean, full_matrices=False)  # Σ = V diag(s²/(n−1)) Vᵀ
    vals = sing ** 2 / max(n - 1, 1)
    floor = eps * float(vals.sum()) / d  # ε × the mean of all d eigenvalues (the rest are 0)
    vecs = vt.T  # d × min(n, d)
    if vecs.shape[1] < d and floor <= 0:
        raise ValueError(f"whitening {n} examples of {d} features needs eps > 0 (the covariance is singular)")
    if (vals + floor).min() <= 0:
        raise ValueError("whitening needs eps > 0: the covariance has a zero eigenvalue")
    # T = c·I + V diag(1/√(λ+floor) − c) Vᵀ, c = 1/√floor on the complement of the data's span (if any)
    c, ic = (floor ** -0.5, floor ** 0.5) if vecs.shape[1] < d else (0.0, 0.0)
    matrix = (vecs * ((vals + floor).rsqrt() - c)) @ vecs.T
    inverse = (vecs * ((vals + floor).sqrt() - ic)) @ vecs.T
    matrix.diagonal().add_(c)
    inverse.diagonal().add_(ic)
    return matrix, mean.reshape(x.shape[1:]), inverse


def input_gradient_norms(model: nn.Module, x: torch.Tensor, batch_size: int = 500, *,
                         return_outputs: bool = False):
    """Per example, ``‖∇_x f_k(x)‖₂`` of the predicted class's output ``f_k`` (the logit of
    a one-output binary model), in eval mode: the gradient of the prediction function.
    With ``return_outputs`` also the outputs ``f(x)`` (from the same forward)."""
    device = model_device(model)
    norms, outputs = [], []
    with eval_mode(model), torch.enable_grad():
        for s in range(0, x.shape[0], batch_size):
            xb = x[s:s + batch_size].to(device).detach().requires_grad_(True)
            logits = model(xb)
            picked = logits[:, 0] if logits.shape[1] == 1 else logits.gather(1, logits.argmax(1, keepdim=True))[:, 0]
            (g,) = torch.autograd.grad(picked.sum(), xb)
            norms.append(g.reshape(g.shape[0], -1).norm(dim=1).detach())
            outputs.append(logits.detach())
    return (torch.cat(norms), torch.cat(outputs)) if return_outputs else torch.cat(norms)
