"""Checks that need a CUDA device (skipped without one): the same batches as on the
CPU, and the same tables from the same config on the same device."""

import pandas as pd
import pytest
import torch

from lossland import data, runner, study
from lossland.models import create_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_batches_on_cuda_equal_batches_on_cpu():
    x = torch.randn(300, 3, 32, 32)
    y = torch.arange(300)
    cpu = data.DeviceBatches(x, y, 64, seed=3, augment=True)
    gpu = data.DeviceBatches(x.cuda(), y.cuda(), 64, seed=3, augment=True)
    for (xa, ya), (xb, yb) in zip(cpu.epoch(2), gpu.epoch(2)):
        assert torch.equal(ya, yb.cpu()) and torch.equal(xa, xb.cpu())


def _run(dataset, root):
    from lossland.runtime import configure

    device = torch.device("cuda")
    configure(device)
    spec = {
        "run": "nin_sgdm_init0", "study": "optimizer_study", "dataset": "tiny", "model": "nin",
        "model_spec": {"arch": "nin", "width": 0.25, "dropout": 0.2},
        "optimizer": "sgdm", "optimizer_spec": {"algorithm": "sgd", "lr": 0.05, "momentum": 0.9},
        "init_seed": 0, "data_seed": 0,
        "training": dict(study.TRAINING_DEFAULTS, epochs=2, batch_size=64, augment=True, checkpoint_epochs=[1]),
    }
    init = create_model(spec["model_spec"], dataset.input_shape, dataset.num_classes, seed=0).state_dict()
    runner.execute_run(spec, dataset.to(device), init, device=device, progress=False,
                       metrics_path=root / "m.parquet", final_path=root / "f.safetensors",
                       checkpoints_dir=root / "ck")
    return pd.read_parquet(root / "m.parquet").drop(columns="wall_time")


def test_same_config_same_table_on_cuda(embedded_raw, tmp_path):
    ds = data.prepare(embedded_raw, train_size=512, test_size=256)
    a = _run(ds, tmp_path / "a")
    b = _run(ds, tmp_path / "b")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a["train_loss"].iloc[-1] < a["train_loss"].iloc[0]


def test_hessian_on_cuda_equals_cpu():
    import lossland

    torch.manual_seed(0)
    model = create_model({"arch": "mlp", "hidden": [8], "activation": "tanh"}, (3, 2, 2), 3, seed=0).double()
    x, y = torch.randn(64, 3, 2, 2, dtype=torch.float64), torch.randint(0, 3, (64,))
    h_cpu = lossland.hessian(model, (x, y))
    h_gpu = lossland.hessian(model.cuda(), (x.cuda(), y.cuda())).cpu()
    assert torch.allclose(h_cpu, h_gpu, atol=1e-10)
    top = lossland.top_eigenvalues(model, (x.cuda(), y.cuda()), k=2, tol=1e-10, max_iter=300).cpu()
    assert torch.allclose(top, torch.linalg.eigvalsh(h_cpu).flip(0)[:2], rtol=1e-6)


def test_landscape_engines_agree_on_cuda(embedded_raw):
    import numpy as np

    import lossland

    ds = data.prepare(embedded_raw, train_size=256, test_size=10)
    model = create_model({"arch": "nin", "width": 0.25}, ds.input_shape, ds.num_classes, seed=0).cuda()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    end = {k: (v + 0.01 * torch.randn_like(v)) if v.is_floating_point() else v for k, v in start.items()}
    xy = (ds["train"].x.cuda(), ds["train"].y.cuda())
    alphas = np.linspace(0, 1, 5)
    loop = lossland.interpolate(model, start, end, alphas, xy, engine="loop")
    vmap = lossland.interpolate(model, start, end, alphas, xy, engine="vmap")
    auto = lossland.interpolate(model, start, end, alphas, xy)
    assert np.allclose(loop["loss"], vmap["loss"], atol=1e-5) and np.allclose(loop["loss"], auto["loss"], atol=1e-5)
