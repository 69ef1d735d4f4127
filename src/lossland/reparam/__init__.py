"""Reparametrisations that keep a network's function (Dinh et al. 2017, "Sharp minima can
generalize for deep nets"), and what they do to its sharpness.

* :mod:`.homogeneous`: :func:`alpha_scale` (two layers with positively homogeneous
  operations between them, checked on the ``torch.fx`` graph) and :func:`bn_scale` (a
  layer that feeds a BatchNorm), each with the Hessian blocks it rescales;
* :mod:`.weight_norm`: :func:`weight_normalize`, ``w = g·v/‖v‖`` with ``v`` at any scale;
* :mod:`.inputs`: :class:`ReparametrizedInput` (the same prediction function on inputs
  ``u = T(x − μ)``), standardisation, whitening, :func:`input_gradient_norms`;
* :mod:`.sweep`: :func:`reparametrization_sweep` (sharpness measures against ``α`` with
  their predictions from the Hessian's blocks) and :func:`input_reparametrization_sweep`.

Every transform returns a new model and leaves the one passed in unchanged.
"""

from .homogeneous import (
    HOMOGENEOUS_MODULES,
    ReparamError,
    alpha_scale,
    alpha_scale_blocks,
    bn_layers,
    bn_scale,
    bn_scale_blocks,
    check_alpha_pair,
    check_bn_layer,
    homogeneous_pairs,
    layer_names,
)
from .inputs import (
    ReparametrizedInput,
    input_gradient_norms,
    input_reparametrization,
    scaling,
    standardization,
    whitening,
)
from .sweep import (
    INPUT_TRANSFORMS,
    TRANSFORMS,
    SweepSettings,
    input_reparametrization_sweep,
    named_transform,
    reparametrization_sweep,
)
from .weight_norm import weight_norm_blocks, weight_normalize

__all__ = [
    "HOMOGENEOUS_MODULES", "ReparamError", "alpha_scale", "alpha_scale_blocks", "bn_layers", "bn_scale",
    "bn_scale_blocks", "check_alpha_pair", "check_bn_layer", "homogeneous_pairs", "layer_names",
    "ReparametrizedInput", "input_gradient_norms", "input_reparametrization", "scaling", "standardization",
    "whitening", "INPUT_TRANSFORMS", "TRANSFORMS", "SweepSettings", "named_transform",
    "input_reparametrization_sweep", "reparametrization_sweep", "weight_norm_blocks", "weight_normalize",
]
