"""Checks that need a CUDA device (skipped without one): the same batches as on the
CPU, and the same tables from the same config on the same device."""

import pandas as pd
import pytest
import torch

from lossland import data
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
    from lossland.pipeline import runner
    from lossland.pipeline.runs import TRAINING_DEFAULTS
    from lossland.runtime import configure

    device = torch.device("cuda")
    configure(device)
    spec = {
        "run": "nin_sgdm_init0", "study": "optimizer_study", "dataset": "tiny", "model": "nin",
        "model_spec": {"arch": "nin", "width": 0.25, "dropout": 0.2},
        "optimizer": "sgdm", "optimizer_spec": {"algorithm": "sgd", "lr": 0.05, "momentum": 0.9},
        "init_seed": 0, "data_seed": 0,
        "training": dict(TRAINING_DEFAULTS, epochs=2, batch_size=64, augment=True, checkpoint_epochs=[1]),
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


def _host_syncs_in_one_epoch(n: int, algorithm: str) -> int:
    """Synchronising CUDA calls (torch's sync debug mode) while training one epoch on ``n`` images."""
    import warnings

    from lossland.optim import make_optimizer
    from lossland.training import TrainSettings, train

    torch.manual_seed(0)
    x, y = torch.randn(n, 3, 32, 32, device="cuda"), torch.randint(0, 10, (n,), device="cuda")
    split = data.Split(x, y)
    model = create_model({"arch": "nin", "width": 0.25, "dropout": 0.2}, (3, 32, 32), 10, seed=0).cuda()
    optimizer = make_optimizer(model.parameters(), {"algorithm": algorithm, "lr": 0.01})
    settings = TrainSettings(epochs=1, batch_size=64, augment=True, eval_batch_size=4096)
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train(model, optimizer, {"train": split}, settings, progress=False)
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    return sum("synchroniz" in str(w.message) for w in caught)


@pytest.mark.parametrize("algorithm", ["sgd", "adam"])
def test_training_steps_make_no_host_round_trips(algorithm):
    """The hot loop keeps everything on the device: 16 steps sync as often as 4 do (the
    per-epoch evaluation and bookkeeping sync a fixed number of times)."""
    few, many = _host_syncs_in_one_epoch(256, algorithm), _host_syncs_in_one_epoch(1024, algorithm)
    assert many == few, f"{many - few} more synchronisations for 12 more steps"


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


@pytest.mark.parametrize("bn", ["stored", "recompute"])
def test_landscape_engines_agree_on_cuda(embedded_raw, bn):
    import numpy as np

    import lossland

    ds = data.prepare(embedded_raw, train_size=256, test_size=10)
    model = create_model({"arch": "nin", "width": 0.25}, ds.input_shape, ds.num_classes, seed=0).cuda()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    end = {k: (v + 0.01 * torch.randn_like(v)) if v.is_floating_point() else v for k, v in start.items()}
    xy = (ds["train"].x.cuda(), ds["train"].y.cuda())
    alphas = np.linspace(-0.5, 1.5, 26)  # auto chooses the graph from 25 points on
    opts = dict(bn=bn, batch_size=100)  # three batches, the last one short
    loop = lossland.interpolate(model, start, end, alphas, xy, engine="loop", **opts)
    for engine in ("vmap", "graph", "auto"):
        other = lossland.interpolate(model, start, end, alphas, xy, engine=engine, **opts)
        assert np.allclose(loop["loss"], other["loss"], rtol=1e-5, atol=1e-6), engine
        assert np.allclose(loop["accuracy"], other["accuracy"]), engine
    assert torch.equal(model.state_dict()["features.0.weight"], start["features.0.weight"])
    # the per-input extras of the functional distance, replayed with the graph
    fd_loop = lossland.functional_distance(model, start, end, alphas, xy, engine="loop", **opts)
    fd_graph = lossland.functional_distance(model, start, end, alphas, xy, engine="graph", **opts)
    assert np.allclose(fd_loop["functional_distance"], fd_graph["functional_distance"], atol=1e-6)
    assert fd_graph["functional_distance"].iloc[0] > 0
    # a random plane: BN constant, so the loop and the graph write the folded copy directly
    dx, dy = lossland.random_direction(model, seed=1), lossland.random_direction(model, seed=2)
    xs = np.linspace(-1, 1, 5)
    plain = lossland.surface(model, start, dx, dy, xs, xs, xy, engine="loop", fuse=False, **opts)
    for engine in ("loop", "graph"):
        other = lossland.surface(model, start, dx, dy, xs, xs, xy, engine=engine, **opts)
        assert np.allclose(plain["loss"], other["loss"], rtol=1e-5, atol=1e-6), engine


class _ReadsBack(torch.nn.Module):
    """A model that reads a value back to the host in its forward: not capturable."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(12, 3)

    def forward(self, x):
        h = self.lin(x.flatten(1))
        return h * 2 if h.abs().max().item() > 1e6 else h


def test_landscape_graph_falls_back_for_a_model_that_syncs():
    import numpy as np

    import lossland

    model = _ReadsBack().cuda()
    x, y = torch.randn(64, 3, 2, 2, device="cuda"), torch.randint(0, 3, (64,), device="cuda")
    start = {k: v.clone() for k, v in model.state_dict().items()}
    end = {k: v + 0.1 for k, v in start.items()}
    alphas = np.linspace(0, 1, 30)  # enough points for auto to choose the graph
    loop = lossland.interpolate(model, start, end, alphas, (x, y), engine="loop")
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed"):
        auto = lossland.interpolate(model, start, end, alphas, (x, y))
    assert np.allclose(loop["loss"], auto["loss"], rtol=1e-6)
    with pytest.raises(RuntimeError):
        lossland.interpolate(model, start, end, alphas, (x, y), engine="graph")


def test_ensemble_dynamics_on_cuda_follow_the_cpu():
    """zhang2018's ensembles: the same seeds give the same SGD and Langevin paths on the GPU as on
    the CPU (to float32 rounding), the generators staying on the CPU."""
    from lossland import dynamics
    from lossland.ensemble import Ensemble
    from lossland.models.mlp import MLP

    torch.manual_seed(0)
    nets = [MLP(108, 1, hidden=(10, 10, 10), output_bias=False) for _ in range(8)]
    x, y = torch.randn(100, 108), (torch.rand(100) > 0.5).float()
    out = {}
    for device in ("cpu", "cuda"):
        ens = Ensemble.from_models(nets)
        ens.flat = ens.flat.to(device)
        dynamics.sgd(ens, x.to(device), y.to(device), lr=0.1, epochs=3, batch_size=20, seeds=range(8))
        dynamics.langevin(ens, x.to(device), y.to(device), lr=0.05, steps=5, seeds=range(8), chunks=5)
        out[device] = ens.flat.cpu()
    torch.testing.assert_close(out["cuda"], out["cpu"], rtol=1e-4, atol=1e-5)


def test_resnet_convexity_map_on_cuda_follows_the_cpu():
    """Li et al.'s map on a ResNet with and without skips: the same eigenvalues on CUDA (float64)."""
    import lossland

    x, y = torch.randn(24, 3, 8, 8, dtype=torch.float64), torch.randint(0, 10, (24,))
    for skip in (True, False):
        model = create_model({"arch": "resnet", "depth": 8, "width": 0.25, "skip": skip}, (3, 8, 8), 10,
                             seed=0).double().eval()
        dx, dy = (lossland.random_direction(model, seed=s) for s in (1, 2))
        cpu = lossland.convexity_map(model, model.state_dict(), dx, dy, [0.0, 0.5], [0.5], (x, y), tol=1e-10,
                                     max_iter=80)
        model.cuda()
        gpu = lossland.convexity_map(model, model.state_dict(), {k: v.cuda() for k, v in dx.items()},
                                     {k: v.cuda() for k, v in dy.items()}, [0.0, 0.5], [0.5], (x.cuda(), y.cuda()),
                                     tol=1e-10, max_iter=80)
        cols = ["top_eigenvalue", "bottom_eigenvalue", "convexity_ratio"]
        assert (gpu[cols] - cpu[cols]).abs().max().max() <= 1e-6 * cpu[cols].abs().max().max(), skip
