"""lossland: loss-landscape studies of neural networks.

The public API a notebook user imports::

    import lossland
    ds = lossland.prepare(lossland.read_source("embedded"), train_size=2000)
    model = lossland.create_model({"arch": "nin", "width": 0.25}, ds.input_shape, ds.num_classes)
    opt = lossland.make_optimizer(model.parameters(), {"algorithm": "sgd", "lr": 0.1})
    state = lossland.train(model, opt, ds.splits, lossland.TrainSettings(epochs=2))

The names below, and the submodules (``lossland.landscape``, ...), are loaded on
first use (PEP 562), so ``import lossland`` (and ``lossland.io``, ``lossland.plots``)
does not import torch.
"""

from __future__ import annotations

import importlib
import importlib.util

__version__ = "0.1.0"

# public name -> the module that defines it
_SOURCES = {
    **dict.fromkeys(("DataError", "DeviceBatches", "PreparedDataset", "Split", "embedded_archive", "load_prepared",
                     "prepare", "read_imagefolder", "read_python_archive", "read_source", "save_prepared"), "data"),
    **dict.fromkeys(("default_loss", "evaluate"), "evaluation"),
    **dict.fromkeys(("HessianOperator", "SLQResult", "TraceEstimate", "clean_spectrum", "convexity_map",
                     "epsilon_sharpness", "exact_spectrum", "extreme_eigenvalues", "hessian", "hessian_slq",
                     "hessian_trace", "hvp", "negative_eigenvalue_fraction",
                     "spectral_density", "spectral_entropy", "top_eigenvalues"), "curvature"),
    "Ensemble": "ensemble",
    **dict.fromkeys(("Curve", "PCADirections", "barrier", "barycentric_surface", "bilinear_surface", "curve_table",
                     "distance_path", "evaluate_curve", "evaluate_points", "functional_distance", "interpolate",
                     "line_shape", "normalize_direction", "pca_directions", "plane_basis", "plane_coordinates",
                     "random_direction", "recompute_bn", "surface", "train_curve"), "landscape"),
    **dict.fromkeys(("build_model", "count_parameters", "create_model", "init_weights"), "models"),
    "fitting_batch_size": "memory",
    "make_optimizer": "optim",
    **dict.fromkeys(("alpha_scale", "bn_scale", "input_gradient_norms", "input_reparametrization",
                     "input_reparametrization_sweep", "reparametrization_sweep", "weight_normalize"), "reparam"),
    **dict.fromkeys(("TrainSettings", "TrainState", "train"), "training"),
    **dict.fromkeys(("WalkResult", "gradient_angle", "walk"), "walking"),
}

__all__ = [
    "__version__",
    "DataError", "DeviceBatches", "PreparedDataset", "Split", "embedded_archive", "load_prepared", "prepare",
    "read_imagefolder", "read_python_archive", "read_source", "save_prepared",
    "default_loss", "evaluate",
    "HessianOperator", "SLQResult", "TraceEstimate", "clean_spectrum", "convexity_map", "epsilon_sharpness",
    "exact_spectrum", "extreme_eigenvalues",
    "hessian", "hessian_slq", "hessian_trace", "hvp", "negative_eigenvalue_fraction", "spectral_density",
    "spectral_entropy", "top_eigenvalues", "Ensemble",
    "PCADirections", "barycentric_surface", "bilinear_surface", "distance_path", "evaluate_points",
    "functional_distance", "interpolate", "line_shape", "normalize_direction", "pca_directions", "random_direction",
    "recompute_bn", "surface",
    "Curve", "barrier", "curve_table", "evaluate_curve", "plane_basis", "plane_coordinates", "train_curve",
    "build_model", "count_parameters", "create_model", "init_weights",
    "fitting_batch_size", "make_optimizer",
    "alpha_scale", "bn_scale", "input_gradient_norms", "input_reparametrization", "input_reparametrization_sweep",
    "reparametrization_sweep", "weight_normalize",
    "TrainSettings", "TrainState", "train",
    "WalkResult", "gradient_angle", "walk",
]


def __getattr__(name: str):
    source = _SOURCES.get(name)
    if source is not None:
        value = getattr(importlib.import_module(f".{source}", __name__), name)
        globals()[name] = value  # once loaded, a plain attribute
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f".{name}", __name__)  # a submodule: lossland.landscape, ...
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
