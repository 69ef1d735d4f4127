"""The public API: the names of ``lossland``, loaded lazily, ``import lossland`` free of
torch, and the README's library examples running as written."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lossland

README = Path(__file__).resolve().parents[1] / "README.md"

PUBLIC = [
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


def test_public_names_are_the_objects_of_their_defining_modules():
    assert lossland.__all__ == PUBLIC and lossland.__version__ == "0.1.0"
    assert set(PUBLIC) <= set(dir(lossland))
    for name in PUBLIC[1:]:
        obj = getattr(lossland, name)
        home = importlib.import_module(obj.__module__)
        assert home.__name__.startswith("lossland.") and getattr(home, name) is obj, name
        assert getattr(importlib.import_module(home.__name__.rsplit(".", 1)[0]), name) is obj, name
        namespace: dict = {}
        exec(f"from lossland import {name}", namespace)
        assert namespace[name] is obj
    # a submodule loaded after the names does not shadow one (lossland.evaluate is the function)
    importlib.import_module("lossland.evaluation")
    assert callable(lossland.evaluate) and lossland.evaluate.__module__ == "lossland.evaluation"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lossland.nope  # noqa: B018
    assert lossland.landscape is importlib.import_module("lossland.landscape")  # submodules load on use


def test_import_lossland_leaves_torch_unloaded():
    code = ("import sys, lossland, lossland.io\n"
            "assert 'torch' not in sys.modules and 'safetensors' not in sys.modules\n"
            "versions = lossland.io.provenance({'a': 1})['versions']\n"
            "assert 'torch' not in sys.modules\n"
            "print(versions['torch'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    import torch

    import lossland.io

    assert out.strip() == str(torch.__version__)
    assert lossland.io.provenance()["versions"]["torch"] == str(torch.__version__)  # with torch loaded
    assert json.loads(json.dumps(lossland.io.provenance()))["versions"]["torch"] == torch.__version__


def _library_blocks() -> list[str]:
    text = README.read_text()
    section = text[text.index("\n## The library\n"):text.index("\n## Benchmarks\n")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_library_examples_run(monkeypatch):
    """The README's "The library" examples, in order, in one namespace (sizes kept small there)."""
    blocks = _library_blocks()
    assert len(blocks) >= 4
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md (library block {i + 1})", "exec"), namespace)
    assert namespace["state"].records[-1]["epoch"] == 2
    assert len(namespace["lam"]) == 5 and namespace["tr"].estimate == namespace["tr"].estimate
    assert len(namespace["plane"]) == 121 and len(namespace["line"]) == 26
    assert len(namespace["spectrum"]) == 1320 and namespace["entropy"] == namespace["entropy"]  # finite, not NaN
    assert abs(namespace["fd"]["functional_distance"].iloc[0]) < 1e-5  # the reference itself
    sweep = namespace["sweep"]
    assert sweep["max_output_diff"].max() < 1e-4 and sweep["top_eigenvalue"].iloc[-1] > 1e4 * sweep["top_eigenvalue"].iloc[1]
