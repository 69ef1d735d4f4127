import math

import pytest
import torch
from torch import nn

import lossland
from lossland import io
from lossland.data import Split
from lossland.training import TrainSettings, TrainState, snapshot, train


def _blobs(n=256, seed=0):
    """Two Gaussian blobs in 3×2×2 'images': linearly separable."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 3, 2, 2, generator=g) * 0.5 + (y.float() * 2 - 1)[:, None, None, None]
    return Split(x, y)


def _mlp(seed=0, outputs=2):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, outputs))


def test_a_tiny_model_learns():
    splits = {"train": _blobs(), "test": _blobs(seed=1)}
    model = _mlp()
    opt = lossland.make_optimizer(model.parameters(), {"algorithm": "sgd", "lr": 0.2})
    state = train(model, opt, splits, TrainSettings(epochs=5, batch_size=32), progress=False)
    first, last = state.records[0], state.records[-1]
    assert [r["epoch"] for r in state.records] == list(range(6))
    assert last["train_loss"] < 0.2 * first["train_loss"]
    assert last["test_acc"] > 0.95
    assert first["dist_from_init"] == 0 and last["dist_from_init"] > 0
    assert not state.diverged and not any(r["diverged"] for r in state.records)
    assert all(r["lr"] == 0.2 for r in state.records)


def test_a_cnn_learns_on_real_images(tiny_dataset):
    model = lossland.create_model({"arch": "nin", "width": 0.125, "depth": 2}, tiny_dataset.input_shape,
                                  tiny_dataset.num_classes, seed=0)
    opt = lossland.make_optimizer(model.parameters(), {"algorithm": "adam", "lr": 0.01})
    state = train(model, opt, tiny_dataset.splits, TrainSettings(epochs=4, batch_size=32), progress=False)
    assert state.records[-1]["train_loss"] < state.records[0]["train_loss"] - 0.2


class BatchRecorder(nn.Module):
    """Wraps a model and records every training batch it sees."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.append(x.detach().clone())
        return self.inner(x)


def test_every_optimizer_sees_identical_batches_in_identical_order(tiny_dataset):
    seen = {}
    for spec in ({"algorithm": "sgd", "lr": 0.1}, {"algorithm": "adam", "lr": 1e-3},
                 {"algorithm": "adadelta"}):
        model = BatchRecorder(lossland.create_model({"arch": "mlp", "hidden": [8]}, tiny_dataset.input_shape,
                                                    tiny_dataset.num_classes, seed=0))
        opt = lossland.make_optimizer(model.parameters(), spec)
        train(model, opt, tiny_dataset.splits, TrainSettings(epochs=2, batch_size=64, augment=True, data_seed=5),
              progress=False)
        seen[spec["algorithm"]] = model.seen
    ref = seen.pop("sgd")
    assert len(ref) == 2 * 4
    for other in seen.values():
        assert len(other) == len(ref)
        assert all(torch.equal(a, b) for a, b in zip(ref, other))
    # another data seed gives other batches
    model = BatchRecorder(lossland.create_model({"arch": "mlp", "hidden": [8]}, tiny_dataset.input_shape, 10, seed=0))
    train(model, lossland.make_optimizer(model.parameters(), {"algorithm": "sgd", "lr": 0.1}), tiny_dataset.splits,
          TrainSettings(epochs=1, batch_size=64, augment=True, data_seed=6), progress=False)
    assert not torch.equal(model.seen[0], ref[0])


def _train_nin(dataset, epochs, resume=None, stop_after=None):
    model = lossland.create_model({"arch": "nin", "width": 0.125, "depth": 2, "dropout": 0.3},
                                  dataset.input_shape, dataset.num_classes, seed=1)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    opt = lossland.make_optimizer(model.parameters(), {"algorithm": "adam", "lr": 3e-3})
    saved = {}

    def on_epoch(state, model, optimizer):
        saved[state.epoch] = snapshot(state, model, optimizer)
        if stop_after is not None and state.epoch == stop_after:
            raise KeyboardInterrupt

    settings = TrainSettings(epochs=epochs, batch_size=50, augment=True, data_seed=2)
    try:
        state = train(model, opt, dataset.splits, settings, init_state=init, resume=resume, on_epoch=on_epoch,
                      progress=False)
    except KeyboardInterrupt:
        state = None
    return model, state, saved


def test_resume_equals_uninterrupted(tiny_dataset, tmp_path):
    straight_model, straight, _ = _train_nin(tiny_dataset, 3)
    _, interrupted, saved = _train_nin(tiny_dataset, 3, stop_after=1)
    assert interrupted is None
    # round trip through a safetensors state tree, as the resume file does
    io.save_state_tree(saved[1].to_dict(), tmp_path / "resume.safetensors")
    resume = TrainState.from_dict(io.load_state_tree(tmp_path / "resume.safetensors"))
    resumed_model, resumed, _ = _train_nin(tiny_dataset, 3, resume=resume)
    sd_a, sd_b = straight_model.state_dict(), resumed_model.state_dict()
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    import pandas as pd

    frame = lambda rows: pd.DataFrame(rows).drop(columns="wall_time")  # noqa: E731
    pd.testing.assert_frame_equal(frame(resumed.records), frame(straight.records), check_exact=True)


def test_divergence_is_recorded_and_stops_the_run():
    splits = {"train": _blobs(), "test": _blobs(seed=1)}
    model = _mlp()
    opt = lossland.make_optimizer(model.parameters(), {"algorithm": "sgd", "lr": 1e6})
    state = train(model, opt, splits, TrainSettings(epochs=20, batch_size=32), progress=False)
    assert state.diverged
    assert state.epoch < 20
    assert state.records[-1]["diverged"] and not any(r["diverged"] for r in state.records[:-1])
    assert not math.isfinite(state.records[-1]["train_loss"])


def test_binary_head_uses_bce():
    splits = {"train": _blobs(), "test": _blobs(seed=1)}
    model = _mlp(outputs=1)
    opt = lossland.make_optimizer(model.parameters(), {"algorithm": "sgd", "lr": 0.5})
    state = train(model, opt, splits, TrainSettings(epochs=3, batch_size=32), progress=False)
    assert state.records[0]["train_loss"] == pytest.approx(math.log(2), abs=0.3)
    assert state.records[-1]["test_acc"] > 0.95
