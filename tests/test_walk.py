"""A walk with SGD (lossland.walking): gradient angles, segment losses and bouncing checked
against a quadratic's closed form, against direct evaluation on a small network, and the
minibatch order."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import lossland
from lossland.data import DeviceBatches
from lossland.evaluation import evaluate
from lossland.walking import interior_minimum, late_mean_angle

KAPPA = 10.0
A = np.array([1.0, KAPPA])
THETA0 = np.array([1.0, 1.0])


class Quadratic(nn.Module):
    """``f(θ) = ½ θᵀ diag(a) θ``, the same value for every sample (the data set only the count)."""

    def __init__(self, a=A, theta0=THETA0) -> None:
        super().__init__()
        self.register_buffer("a", torch.tensor(a, dtype=torch.float64))
        self.theta = nn.Parameter(torch.tensor(theta0, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (0.5 * (self.a * self.theta ** 2).sum()).expand(x.shape[0], 1)


def value(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return out.mean()


def quad_data(n: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(n, 1, dtype=torch.float64), torch.arange(n)


def gd_iterates(lr: float, steps: int) -> np.ndarray:
    """θ_k = (1 − lr·a_i)^k θ_0,i per axis, k = 0 … steps: (steps + 1, 2)."""
    k = np.arange(steps + 1)[:, None]
    return (1 - lr * A) ** k * THETA0


def angle(u: np.ndarray, v: np.ndarray) -> float:
    return math.degrees(math.acos(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))))


def quad_walk(lr: float, steps: int = 8, **kw) -> lossland.WalkResult:
    return lossland.walk(Quadratic(), quad_data(), steps=steps, batch_size=10, lr=lr, full_batch=True,
                         loss_fn=value, **kw)


def test_gradient_angle_on_hand_vectors():
    ga = lossland.gradient_angle
    assert ga(torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0])) == pytest.approx(0.0, abs=1e-12)
    assert ga(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 3.0])) == pytest.approx(90.0, abs=1e-12)
    assert ga(torch.tensor([1.0, 2.0]), torch.tensor([-1.0, -2.0])) == pytest.approx(180.0, abs=1e-12)
    assert ga(np.array([1.0, 0.0]), np.array([1.0, 1.0])) == pytest.approx(45.0, abs=1e-12)
    assert ga(torch.eye(2), torch.tensor([-1.0, 0.0, 0.0, -1.0])) == pytest.approx(180.0, abs=1e-12)  # flattened
    # accurate next to 180°, where acos of the cosine rounds to exactly 180
    assert ga(torch.tensor([1.0, 0.0], dtype=torch.float64),
              torch.tensor([-1.0, 1e-9], dtype=torch.float64)) == pytest.approx(180 - math.degrees(1e-9), abs=1e-13)
    assert math.isnan(ga(torch.zeros(3), torch.ones(3)))


@pytest.mark.parametrize("lr, late_angle", [(1.9 / KAPPA, (160.0, 180.0)), (0.01 / KAPPA, (0.0, 1.0))])
def test_quadratic_gd_gradient_angles_match_the_closed_form(lr, late_angle):
    """g_k = A θ_k with θ_k = (1 − lr·a)^k θ_0: near lr = 2/κ the stiff component flips each
    step (consecutive gradients almost opposite), at a tiny lr they are almost parallel."""
    steps = 8
    res = quad_walk(lr, steps)
    df = res.steps
    grads = gd_iterates(lr, steps)[:-1] * A
    expected = [math.nan] + [angle(grads[k - 1], grads[k]) for k in range(1, steps)]
    assert math.isnan(df["grad_angle"].iloc[0])
    np.testing.assert_allclose(df["grad_angle"].to_numpy()[1:], expected[1:], rtol=0, atol=1e-8)
    np.testing.assert_allclose(df["grad_norm"], np.linalg.norm(grads, axis=1), rtol=1e-12)
    np.testing.assert_allclose(df["step_length"], lr * np.linalg.norm(grads, axis=1), rtol=1e-12)
    lo, hi = late_angle
    assert lo < late_mean_angle(df) < hi and lo < late_mean_angle(res, fraction=0.25) < hi
    assert (df["method"] == "gd").all() and (df["batch_size"] == 10).all() and (df["epoch"] == df["step"] + 1).all()


@pytest.mark.parametrize("lr, bounces", [(1.9 / KAPPA, True), (0.01 / KAPPA, False)])
def test_quadratic_segments_follow_the_closed_form_and_bounce_near_two_over_kappa(lr, bounces):
    """f(θ_k − t·lr·g_k) = ½ Σ_i a_i θ_{k,i}² (1 − t·lr·a_i)², a parabola in t with its minimum at
    t* = gᵀg / (lr·gᵀAg): inside (0, 1) near lr = 2/κ (the iterate crosses the valley floor),
    past 1 at a tiny lr (the segment descends all the way)."""
    steps = 6
    res = quad_walk(lr, steps, segment_points=5)
    seg = res.segments
    theta = gd_iterates(lr, steps)
    ts = np.linspace(0, 1, 5)
    for split in ("batch", "full"):
        got = seg[seg["split"] == split].sort_values(["step", "t"])
        np.testing.assert_allclose(got["t"].to_numpy(), np.tile(ts, steps))
        expected = [0.5 * np.sum(A * theta[k] ** 2 * (1 - t * lr * A) ** 2) for k in range(steps) for t in ts]
        np.testing.assert_allclose(got["loss"].to_numpy(), expected, rtol=1e-12)
    g = theta[:-1] * A
    t_star = np.sum(g * g, 1) / (lr * np.sum(g * A * g, 1))
    assert ((t_star < 1) == bounces).all()
    assert (res.steps["interior_minimum_full"] == bounces).all()
    assert (res.steps["interior_minimum_batch"] == bounces).all()


def test_quadratic_momentum_and_weight_decay_follow_the_heavy_ball_recursion():
    """torch SGD: d = g + λθ, v ← μv + d (v = d at the first step), θ ← θ − lr·v; grad_norm is ‖g‖
    (the loss gradient, before weight decay and momentum)."""
    lr, mu, wd, steps = 0.05, 0.9, 0.1, 6
    df = lossland.walk(Quadratic(), quad_data(), steps=steps, batch_size=5, lr=lr, momentum=mu,
                       weight_decay=wd, loss_fn=value).steps
    theta, v = THETA0.copy(), None
    norms, lengths, grads = [], [], []
    for _ in range(steps):
        g = A * theta
        d = g + wd * theta
        v = d if v is None else mu * v + d
        norms.append(np.linalg.norm(g))
        lengths.append(lr * np.linalg.norm(v))
        grads.append(g)
        theta = theta - lr * v
    np.testing.assert_allclose(df["grad_norm"], norms, rtol=1e-12)
    np.testing.assert_allclose(df["step_length"], lengths, rtol=1e-12)
    np.testing.assert_allclose(df["grad_angle"].to_numpy()[1:], [angle(grads[k - 1], grads[k]) for k in range(1, steps)],
                               atol=1e-6)


def _recorded_batches(**kw) -> tuple[list[torch.Tensor], lossland.WalkResult]:
    """The targets (sample indices) of every training-step forward (evaluations run without grad)."""
    seen = []

    def loss_fn(out, y):
        if torch.is_grad_enabled():
            seen.append(y.clone())
        return out.mean()

    res = lossland.walk(Quadratic(), quad_data(10), lr=0.01, loss_fn=loss_fn, **kw)
    return seen, res


def test_minibatches_are_seeded_reshuffled_each_pass_and_full_batch_sees_all_data():
    seen, res = _recorded_batches(steps=7, batch_size=3, seed=5)
    assert [len(b) for b in seen] == [3] * 7
    # 3 full batches a pass (the 10th sample dropped), each pass a permutation of its own
    assert res.steps["epoch"].tolist() == [1, 1, 1, 2, 2, 2, 3]
    passes = [torch.cat(seen[0:3]), torch.cat(seen[3:6])]
    assert all(len(set(p.tolist())) == 9 for p in passes)
    assert not torch.equal(passes[0], passes[1])
    x, y = quad_data(10)
    order = DeviceBatches(x, y, 3, 5, drop_last=True)
    for e, p in enumerate(passes, start=1):
        assert torch.equal(p, torch.cat([yb for _, yb in order.epoch(e)]))
    again, res2 = _recorded_batches(steps=7, batch_size=3, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(seen, again))
    pd.testing.assert_frame_equal(res.segments, res2.segments)
    other, _ = _recorded_batches(steps=7, batch_size=3, seed=6)
    assert not all(torch.equal(a, b) for a, b in zip(seen, other))

    full, res = _recorded_batches(steps=3, batch_size=3, full_batch=True)
    assert len(full) == 3 and all(torch.equal(b, torch.arange(10)) for b in full)
    assert (res.steps["batch_size"] == 10).all() and (res.segments["method"] == "gd").all()


# ------------------------------------------------------------------- a small network


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU(),
                         nn.Dropout(0.2), nn.Linear(16, 5))


@pytest.fixture(scope="module")
def net_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(100, 3, 2, 2, generator=g)
    return x, (x.flatten(1)[:, :5].argmax(1) + torch.randint(0, 2, (100,), generator=g)) % 5


@pytest.fixture(scope="module")
def start(net_data):
    """A briefly trained network with non-trivial BN statistics: the walk's θ_0."""
    model = _net()
    lossland.walk(model, net_data, steps=6, batch_size=20, lr=0.2)
    return model


KW = dict(batch_size=32, lr=0.3, momentum=0.9, seed=1)


def _walked(start, data, steps, **kw) -> tuple[nn.Module, lossland.WalkResult]:
    model = copy.deepcopy(start)
    return model, lossland.walk(model, data, steps=steps, **{**KW, **kw})


def _lerp(a, b, t):
    return {k: a[k] + t * (b[k] - a[k]) if a[k].is_floating_point() else a[k] for k in a}


def test_segment_losses_equal_direct_evaluation(start, net_data):
    """Segment losses at (step k, t) are the eval-mode losses at θ_k + t(θ_{k+1} − θ_k) (BN
    statistics interpolated alike) on the step's minibatch and on the full data. 100 samples in
    batches of 32: 3 steps a pass, so step 4 is the second batch of pass 2."""
    _, res = _walked(start, net_data, 6)
    x, y = net_data
    order = DeviceBatches(x, y, 32, KW["seed"], drop_last=True)
    for k, t, epoch, index in ((1, 0.5, 1, 1), (4, 0.25, 2, 1)):
        theta_k = _walked(start, net_data, k)[0].state_dict()
        theta_next = _walked(start, net_data, k + 1)[0].state_dict()
        probe = copy.deepcopy(start)
        probe.load_state_dict(_lerp(theta_k, theta_next, t))
        batch = list(order.epoch(epoch))[index]
        for split, data in (("full", net_data), ("batch", batch)):
            row = res.segments.query("step == @k and t == @t and split == @split")
            assert len(row) == 1
            assert row["loss"].item() == pytest.approx(evaluate(probe, data)["loss"], rel=1e-5)
        assert res.steps.loc[k, "epoch"] == epoch


def test_consecutive_segments_share_their_end_points_and_the_model_ends_at_the_last(start, net_data):
    model, res = _walked(start, net_data, 5, progress=True)
    full = res.segments[res.segments["split"] == "full"]
    ends = full[full["t"] == 1.0].sort_values("step")["loss"].to_numpy()
    starts = full[full["t"] == 0.0].sort_values("step")["loss"].to_numpy()
    np.testing.assert_allclose(starts[1:], ends[:-1], rtol=1e-5)
    np.testing.assert_allclose(res.steps["loss_full_start"], starts, rtol=0)
    assert evaluate(model, net_data)["loss"] == pytest.approx(ends[-1], rel=1e-5)
    assert model.training  # modes as they were (the fixture's network is in train mode)
    batch0 = res.segments.query("split == 'batch' and t == 0").sort_values("step")["loss"]
    np.testing.assert_allclose(res.steps["loss_batch_start"], batch0, rtol=0)
    # the interior-minimum flags are the segments' own
    for split in ("batch", "full"):
        curves = res.segments[res.segments["split"] == split].sort_values(["step", "t"]).groupby("step")["loss"]
        assert res.steps[f"interior_minimum_{split}"].tolist() == [interior_minimum(c) for _, c in curves]


def test_walk_is_reproducible_with_its_seed_and_leaves_the_global_rng_alone(start, net_data):
    """Dropout masks come from ``seed``, not from the global RNG's state (which differs here)."""
    torch.manual_seed(123)
    rng = torch.random.get_rng_state()
    _, a = _walked(start, net_data, 4)
    assert torch.equal(torch.random.get_rng_state(), rng)
    torch.manual_seed(456)
    _, b = _walked(start, net_data, 4)
    pd.testing.assert_frame_equal(a.segments, b.segments)
    pd.testing.assert_frame_equal(a.steps, b.steps)
    _, c = _walked(start, net_data, 4, seed=2)
    assert not np.allclose(a.steps["loss_batch_start"], c.steps["loss_batch_start"])


def test_full_batch_walk_on_a_network_and_the_long_table(start, net_data):
    model = copy.deepcopy(start).eval()
    res = lossland.walk(model, net_data, steps=3, batch_size=32, lr=0.3, full_batch=True, segment_points=3)
    seg = res.segments
    np.testing.assert_array_equal(seg[seg["split"] == "batch"]["loss"].to_numpy(),
                                  seg[seg["split"] == "full"]["loss"].to_numpy())
    assert (res.steps["batch_size"] == 100).all() and not model.training
    assert res.steps.columns.tolist() == [
        "step", "epoch", "method", "batch_size", "lr", "grad_norm", "grad_angle", "step_length",
        "loss_batch_start", "loss_full_start", "interior_minimum_batch", "interior_minimum_full"]
    assert seg.columns.tolist() == ["step", "epoch", "method", "batch_size", "lr", "t", "split", "loss", "accuracy"]
    wide = res.wide()
    assert len(wide) == 3 * 3 and wide[["step", "t"]].drop_duplicates().shape[0] == 9
    assert wide.columns[:8].tolist() == ["step", "epoch", "method", "batch_size", "lr", "t",
                                         "segment_loss_batch", "segment_loss_full"]
    np.testing.assert_allclose(wide["segment_loss_full"], seg[seg["split"] == "full"]["loss"])
    assert (wide["grad_norm"].to_numpy() == np.repeat(res.steps["grad_norm"].to_numpy(), 3)).all()
    # a separate full_data is evaluated on its own
    other = (net_data[0][:40], net_data[1][:40])
    res = lossland.walk(copy.deepcopy(start), net_data, steps=1, batch_size=32, lr=0.3, full_batch=True,
                        full_data=other, segment_points=2)
    assert res.steps["loss_full_start"].item() == pytest.approx(evaluate(start, other)["loss"], rel=1e-5)
    assert res.steps["loss_batch_start"].item() == pytest.approx(evaluate(start, net_data)["loss"], rel=1e-5)


def test_interior_minimum_and_late_mean_angle_on_hand_values():
    assert interior_minimum([1.0, 0.5, 1.2])
    assert not interior_minimum([1.0, 0.9, 0.8])  # monotone
    assert not interior_minimum([1.0, 1.0 - 1e-9, 1.0])  # within the tolerance
    assert not interior_minimum([1.0, 2.0]) and not interior_minimum([1.0, math.nan, 2.0])
    df = pd.DataFrame({"step": range(5), "grad_angle": [math.nan, 10.0, 20.0, 170.0, 180.0]})
    assert late_mean_angle(df) == pytest.approx((20 + 170 + 180) / 3)  # the last ⌈2.5⌉ steps
    assert late_mean_angle(df, fraction=0.4) == pytest.approx(175.0)
    assert late_mean_angle(df, fraction=1.0) == pytest.approx(95.0)  # NaN skipped
    with pytest.raises(ValueError):
        late_mean_angle(df, fraction=0)
