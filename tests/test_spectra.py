import numpy as np
import pytest
import torch

import lossland
from lossland.curvature import SpectrumSettings, hessian_report


def test_hessian_report_agrees_with_the_dense_hessian():
    torch.manual_seed(0)
    model = lossland.create_model({"arch": "mlp", "hidden": [6], "activation": "tanh"}, (3, 2, 2), 3, seed=0).double()
    x, y = torch.randn(40, 3, 2, 2, dtype=torch.float64), torch.randint(0, 3, (40,))
    settings = SpectrumSettings(k=2, tol=1e-10, max_iter=200, trace_method="exact", density_probes=4, negative_threshold=0.0,
                                density_steps=30, sharpness_epsilon=1e-3)
    tables = hessian_report(model, (x, y), settings)
    h = lossland.hessian(model, (x, y))
    eig = torch.linalg.eigvalsh(h).numpy()
    e = tables["eigenvalues"]
    top = e[e["which"] == "largest"].sort_values("index")["eigenvalue"].to_numpy()
    bottom = e[e["which"] == "smallest"].sort_values("index")["eigenvalue"].to_numpy()
    assert np.allclose(top, eig[::-1][:2], rtol=1e-6) and np.allclose(bottom, eig[:2], rtol=1e-6, atol=1e-9)
    s = tables["summary"].iloc[0]
    assert s["trace"] == pytest.approx(float(eig.sum()), rel=1e-8)
    assert s["top_eigenvalue"] == pytest.approx(eig[-1]) and s["n_params"] == h.shape[0]
    assert s["negative_fraction"] == pytest.approx((eig < 0).mean(), abs=0.15)
    assert s["epsilon_sharpness"] >= 0 and s["n_samples"] == 40
    d = tables["density"]
    assert np.trapezoid(d["density"], d["eigenvalue"]) == pytest.approx(1.0, rel=1e-3)


def test_settings_from_config_name_unknown_keys():
    assert SpectrumSettings.from_config({"k": 3}).k == 3
    with pytest.raises(ValueError, match="unknown SpectrumSettings key.*probes; allowed"):
        SpectrumSettings.from_config({"probes": 3})

