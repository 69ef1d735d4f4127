"""lossland: loss-landscape studies of neural networks.

The public API a notebook user imports::

    import lossland
    ds = lossland.prepare(lossland.read_source("embedded"), train_size=2000)
    model = lossland.create_model({"arch": "nin", "width": 0.25}, ds.input_shape, ds.num_classes)
    opt = lossland.make_optimizer(model.parameters(), {"algorithm": "sgd", "lr": 0.1})
    state = lossland.train(model, opt, ds.splits, lossland.TrainSettings(epochs=2))
"""

__version__ = "0.1.0"

from .data import (  # noqa: E402
    DeviceBatches,
    PreparedDataset,
    Split,
    embedded_archive,
    load_prepared,
    prepare,
    read_imagefolder,
    read_python_archive,
    read_source,
    save_prepared,
)
from .evaluate import default_loss, evaluate  # noqa: E402
from .hessian import (  # noqa: E402
    HessianOperator,
    SLQResult,
    TraceEstimate,
    epsilon_sharpness,
    hessian,
    hessian_slq,
    hessian_trace,
    hvp,
    negative_eigenvalue_fraction,
    spectral_density,
    top_eigenvalues,
)
from .landscape import (  # noqa: E402
    PCADirections,
    barycentric_surface,
    bilinear_surface,
    distance_path,
    evaluate_points,
    functional_distance,
    interpolate,
    normalize_direction,
    pca_directions,
    random_direction,
    recompute_bn,
    surface,
)
from .models import build_model, count_parameters, create_model, init_weights  # noqa: E402
from .optim import make_optimizer  # noqa: E402
from .training import TrainSettings, TrainState, train  # noqa: E402

__all__ = [
    "__version__",
    "DeviceBatches", "PreparedDataset", "Split", "embedded_archive", "load_prepared", "prepare",
    "read_imagefolder", "read_python_archive", "read_source", "save_prepared",
    "default_loss", "evaluate",
    "HessianOperator", "SLQResult", "TraceEstimate", "epsilon_sharpness", "hessian", "hessian_slq",
    "hessian_trace", "hvp", "negative_eigenvalue_fraction", "spectral_density", "top_eigenvalues",
    "PCADirections", "barycentric_surface", "bilinear_surface", "distance_path", "evaluate_points",
    "functional_distance", "interpolate", "normalize_direction", "pca_directions", "random_direction",
    "recompute_bn", "surface",
    "build_model", "count_parameters", "create_model", "init_weights",
    "make_optimizer",
    "TrainSettings", "TrainState", "train",
]
