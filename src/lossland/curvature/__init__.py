"""Curvature of the mean loss of a model over data: the Hessian operator and what is
computed with it, one concept a module.

* :mod:`.operator`: :class:`HessianOperator` (matrix-free Hessian-vector products,
  the dense Hessian) and the functions of a model built on it (:func:`hvp`,
  :func:`hessian`, :func:`top_eigenvalues`, :func:`hessian_trace`,
  :func:`hessian_slq`, :func:`spectral_density`, :func:`negative_eigenvalue_fraction`);
* :mod:`.lanczos`: Lanczos with full reorthogonalisation on any symmetric mat-vec,
  extreme eigenvalues;
* :mod:`.trace`: stochastic trace estimators (Hutchinson, Krylov-deflated
  Hutchinson, Hutch++) and :class:`TraceEstimate`;
* :mod:`.density`: stochastic Lanczos quadrature and :class:`SLQResult`;
* :mod:`.sharpness`: Keskar et al.'s ε-sharpness;
* :mod:`.convexity`: Li et al.'s convexity map |λ_min / λ_max| (:func:`extreme_eigenvalues`, :func:`convexity_map`);
* :mod:`.entropy`: zhang2018's entropy of a minimum from its exact spectrum (:func:`spectral_entropy`);
* :mod:`.report`: :class:`SpectrumSettings` and :func:`hessian_report`, the tables the
  workflow records at a checkpoint.

The estimators on a mat-vec (:mod:`.lanczos`, :mod:`.trace`, :mod:`.density`) know
no model; the operator uses them; the report uses the operator.
"""

from .convexity import convexity_map, convexity_ratio, extreme_eigenvalues
from .density import SLQResult, gaussian_density, slq
from .entropy import clean_spectrum, exact_spectrum, spectral_entropy, spectrum_summary
from .lanczos import lanczos_eigenvalues, rademacher
from .operator import (
    HessianOperator,
    hessian,
    hessian_slq,
    hessian_trace,
    hvp,
    negative_eigenvalue_fraction,
    spectral_density,
    top_eigenvalues,
)
from .report import SpectrumSettings, hessian_report
from .sharpness import epsilon_sharpness
from .trace import TraceEstimate, deflated_hutchinson, hutchinson, hutchpp

__all__ = [
    "HessianOperator", "hvp", "hessian", "top_eigenvalues", "hessian_trace", "hessian_slq",
    "spectral_density", "negative_eigenvalue_fraction", "epsilon_sharpness",
    "SpectrumSettings", "hessian_report",
    "lanczos_eigenvalues", "rademacher", "hutchinson", "hutchpp", "deflated_hutchinson", "TraceEstimate",
    "extreme_eigenvalues", "convexity_map", "convexity_ratio",
    "slq", "SLQResult", "gaussian_density", "spectral_entropy", "clean_spectrum", "spectrum_summary", "exact_spectrum",
]
