"""lossland.ensemble and lossland.dynamics against autograd on each nn.Module, against plain
torch training loops written from the documented rules, and against mathematics (the
expected gradient-noise variance of a random equal split)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lossland import dynamics
from lossland.ensemble import Ensemble
from lossland.models.mlp import MLP

DT = torch.float64
ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "linear": nn.Identity}


def chain(d: int, hidden=(5, 4), activation: str = "tanh", bias: bool = True, seed: int = 0,
          scale: float = 1.0) -> nn.Module:
    """Flatten, then Linear/activation layers (biases everywhere or nowhere), one output."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten()]
    cin = d
    for h in hidden:
        layers += [nn.Linear(cin, h, bias=bias), ACTS[activation]()]
        cin = h
    layers.append(nn.Linear(cin, 1, bias=bias))
    model = nn.Sequential(*layers).to(DT)
    if scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(scale)
    return model


def module_loss(model: nn.Module, x, y, loss: str, weight_decay: float) -> torch.Tensor:
    """The documented loss, written with torch.nn.functional: bce on one logit, mse = ½ mean (ŷ−y)²,
    plus (weight_decay/2)·‖θ‖²."""
    out = model(x)[:, 0]
    if loss == "bce":
        value = F.binary_cross_entropy_with_logits(out, y.to(out.dtype))
    else:
        value = 0.5 * ((out - y.to(out.dtype)) ** 2).mean()
    return value + 0.5 * weight_decay * sum((p ** 2).sum() for p in model.parameters())


def module_grad(model: nn.Module, x, y, loss: str, weight_decay: float = 0.0):
    value = module_loss(model, x, y, loss, weight_decay)
    grads = torch.autograd.grad(value, list(model.parameters()))
    return value.detach(), torch.cat([g.reshape(-1) for g in grads])


def flat_of(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def data(n: int, shape, loss: str, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g, dtype=DT)
    if loss == "bce":
        y = torch.randint(0, 2, (n,), generator=g).to(DT)
    else:
        y = torch.randn(n, generator=g, dtype=DT)
    return x, y


# --------------------------------------------------------------------------- architecture


def test_zhang2018_net_has_1320_parameters():
    model = MLP(108, 1, hidden=(10, 10, 10), output_bias=False)
    # 108·10 + 10, 10·10 + 10, 10·10 + 10, 10·1 (no output bias)
    assert 108 * 10 + 10 + 2 * (10 * 10 + 10) + 10 == 1320
    assert sum(p.numel() for p in model.parameters()) == 1320
    ens = Ensemble.from_models([model, MLP(108, 1, hidden=(10, 10, 10), output_bias=False)])
    assert ens.num_parameters == 1320
    assert ens.flat.shape == (2, 1320)
    assert ens.activation == "relu"


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "linear"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("loss", ["bce", "mse"])
@pytest.mark.parametrize("inputs", ["shared", "images", "per_member", "per_member_images"])
def test_loss_and_grad_equals_autograd(activation, bias, loss, inputs):
    wd = 0.03
    image = inputs in ("images", "per_member_images")
    shape = (3, 6, 6) if image else (7,)
    d = math.prod(shape)
    models = [chain(d, (5, 4), activation, bias, seed=s) for s in range(3)]
    ens = Ensemble.from_models(models)
    assert ens.activation == activation
    x, y = data(20, shape, loss)
    if inputs in ("shared", "images"):
        value, grad = ens.loss_and_grad(x, y, loss, wd)
        batches = [(x, y)] * len(models)
    else:
        idx = torch.randint(0, 20, (3, 6), generator=torch.Generator().manual_seed(5))
        value, grad = ens.loss_and_grad(x[idx], y[idx], loss, wd)
        batches = [(x[idx[i]], y[idx[i]]) for i in range(3)]
    assert value.shape == (3,) and grad.shape == (3, ens.num_parameters)
    for i, (model, (xb, yb)) in enumerate(zip(models, batches)):
        v, g = module_grad(model, xb, yb, loss, wd)
        torch.testing.assert_close(value[i], v, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(grad[i], g, rtol=1e-10, atol=1e-12)
    # losses() is the same value without the backward pass
    if inputs in ("shared", "images"):
        torch.testing.assert_close(ens.losses(x, y, loss, wd), value, rtol=1e-12, atol=1e-12)


def test_forward_and_weight_products():
    models = [chain(6, (5, 4), "linear", False, seed=s) for s in range(2)]
    ens = Ensemble.from_models(models)
    x, _ = data(9, (6,), "mse")
    out = ens.forward(x)
    for i, m in enumerate(models):
        torch.testing.assert_close(out[i], m(x).detach(), rtol=1e-12, atol=1e-12)
        lin = [layer for layer in m if isinstance(layer, nn.Linear)]
        product = lin[2].weight @ lin[1].weight @ lin[0].weight
        torch.testing.assert_close(ens.weight_products()[i], product.detach(), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- building


def test_load_into_round_trips_with_from_models():
    models = [MLP(12, 1, hidden=(4, 3), activation="sigmoid").to(DT) for _ in range(3)]
    ens = Ensemble.from_models(models)
    fresh = [MLP(12, 1, hidden=(4, 3), activation="sigmoid").to(DT) for _ in range(3)]
    assert not torch.equal(flat_of(fresh[1]), flat_of(models[1]))
    for i, m in enumerate(fresh):
        assert ens.load_into(m, i) is m
        for p, q in zip(m.parameters(), models[i].parameters()):
            assert torch.equal(p, q)
    assert torch.equal(Ensemble.from_models(fresh).flat, ens.flat)
    # flat rows are in parameters() order
    for i, m in enumerate(models):
        assert torch.equal(ens.flat[i], flat_of(m))


@pytest.mark.parametrize("model, named", [
    (MLP(12, 1, hidden=(4,), batch_norm=True), "BatchNorm"),
    (nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32, 1)), "Conv2d"),
])
def test_unsupported_layers_raise_naming_what_is_allowed(model, named):
    with pytest.raises(ValueError, match=named) as info:
        Ensemble.from_models([model])
    message = str(info.value)
    assert "allowed" in message and "Linear" in message and "ReLU" in message


def test_unsupported_parameter_free_activation_raises():
    # a LeakyReLU (no parameters) must not be taken for the identity
    model = nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(), nn.Linear(4, 1))
    with pytest.raises(ValueError, match="LeakyReLU"):
        Ensemble.from_models([model])


def test_mixed_architectures_raise():
    with pytest.raises(ValueError):
        Ensemble.from_models([MLP(5, 1, hidden=(3,)), MLP(5, 1, hidden=(4,))])
    with pytest.raises(ValueError):
        Ensemble.from_models([MLP(5, 1, hidden=(3,)), MLP(5, 1, hidden=(3,), activation="tanh")])


# --------------------------------------------------------------------------- SGD


def torch_sgd(model, x, y, *, lr, epochs, batch_size, seed, loss, weight_decay):
    """Plain minibatch SGD as documented: each epoch one torch.randperm(n) from the member's
    generator (seeded once), batches consecutive slices (the last one may be short)."""
    g = torch.Generator().manual_seed(seed)
    n = len(y)
    for _ in range(epochs):
        order = torch.randperm(n, generator=g)
        for s in range(0, n, batch_size):
            b = order[s:s + batch_size]
            value = module_loss(model, x[b], y[b], loss, weight_decay)
            grads = torch.autograd.grad(value, list(model.parameters()))
            with torch.no_grad():
                for p, gr in zip(model.parameters(), grads):
                    p.sub_(lr * gr)
    return model


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_ensemble_sgd_equals_members_alone_and_a_torch_loop(loss):
    seeds = [11, 12, 13, 14]
    models = [chain(6, (5,), "tanh", True, seed=s) for s in range(4)]
    x, y = data(50, (6,), loss)
    kw = dict(lr=0.1, epochs=3, batch_size=16, loss=loss, weight_decay=0.01)   # 16, 16, 16, 2 per epoch
    ens = Ensemble.from_models(models)
    trace = dynamics.sgd(ens, x, y, seeds=seeds, **kw)
    assert trace.steps == [12] * 4 and trace.diverged == [False] * 4
    for i, s in enumerate(seeds):
        alone = Ensemble.from_models([models[i]])
        dynamics.sgd(alone, x, y, seeds=[s], **kw)
        torch.testing.assert_close(ens.flat[i], alone.flat[0], rtol=1e-12, atol=1e-12)
        ref = torch_sgd(chain(6, (5,), "tanh", True, seed=i), x, y, seed=s, **kw)
        torch.testing.assert_close(ens.flat[i], flat_of(ref), rtol=1e-10, atol=1e-12)
        # the trace's last record is the full-batch loss at the end
        last = [r for r in trace.rows if r[1] == i][-1]
        assert last[0] == 3
        assert last[2] == pytest.approx(float(module_loss(ref, x, y, loss, 0.01).detach()), rel=1e-10)
    # the members really moved, and differently
    assert not torch.allclose(ens.flat, Ensemble.from_models(models).flat)


def test_shuffles_differ_between_seeds():
    model = chain(4, (3,), "tanh", True, seed=0)
    x, y = data(30, (4,), "mse")
    ens = Ensemble.from_models([model, model])
    dynamics.sgd(ens, x, y, lr=0.1, epochs=1, batch_size=5, seeds=[1, 2], loss="mse")
    assert not torch.allclose(ens.flat[0], ens.flat[1])
    ens = Ensemble.from_models([model, model])
    dynamics.sgd(ens, x, y, lr=0.1, epochs=1, batch_size=5, seeds=[3, 3], loss="mse")
    torch.testing.assert_close(ens.flat[0], ens.flat[1], rtol=0, atol=1e-14)


# --------------------------------------------------------------------------- Langevin


def torch_langevin(model, x, y, *, lr, steps, seed, chunks, loss, weight_decay):
    """zhang2018 eqs. 19-21 as documented: per step, a random equal split (torch.randperm from the
    member's generator) into `chunks` minibatches; θ ← θ − lr (mean + √var ⊙ ξ), with the chunk
    gradients' mean and unbiased variance and ξ ~ N(0, I) drawn next from the same generator."""
    g = torch.Generator().manual_seed(seed)
    n = len(y)
    p = sum(q.numel() for q in model.parameters())
    for _ in range(steps):
        parts = torch.randperm(n, generator=g).view(chunks, n // chunks)
        grads = torch.stack([module_grad(model, x[b], y[b], loss, weight_decay)[1] for b in parts])
        xi = torch.randn(p, generator=g).to(DT)
        update = grads.mean(0) + grads.var(0, unbiased=True).sqrt() * xi
        with torch.no_grad():
            at = 0
            for q in model.parameters():
                q.sub_(lr * update[at:at + q.numel()].view_as(q))
                at += q.numel()
    return model


def test_ensemble_langevin_equals_members_alone_and_a_torch_loop():
    seeds = [5, 6, 7, 8]
    models = [chain(6, (5,), "tanh", True, seed=s) for s in range(4)]
    x, y = data(40, (6,), "bce")
    kw = dict(lr=0.05, steps=6, chunks=10, loss="bce", weight_decay=0.01)
    ens = Ensemble.from_models(models)
    trace = dynamics.langevin(ens, x, y, seeds=seeds, **kw)
    assert trace.steps == [6] * 4 and trace.diverged == [False] * 4
    for i, s in enumerate(seeds):
        alone = Ensemble.from_models([models[i]])
        dynamics.langevin(alone, x, y, seeds=[s], **kw)
        torch.testing.assert_close(ens.flat[i], alone.flat[0], rtol=1e-12, atol=1e-12)
        ref = torch_langevin(chain(6, (5,), "tanh", True, seed=i), x, y, seed=s, **kw)
        torch.testing.assert_close(ens.flat[i], flat_of(ref), rtol=1e-9, atol=1e-12)


def test_gradient_noise_variance_is_the_chunk_mean_and_unbiased_variance():
    models = [chain(5, (4,), "sigmoid", True, seed=s) for s in range(3)]
    ens = Ensemble.from_models(models)
    x, y = data(30, (5,), "bce")
    seeds, chunks, wd = [21, 22, 23], 6, 0.02
    mean, var = dynamics.gradient_noise_variance(ens, x, y, chunks=chunks, generator_seeds=seeds, loss="bce",
                                                 weight_decay=wd)
    full = ens.loss_and_grad(x, y, "bce", wd)[1]
    # equal chunks partition the data, so their mean gradient is the full-batch gradient
    torch.testing.assert_close(mean, full, rtol=1e-10, atol=1e-13)
    for i, (model, s) in enumerate(zip(models, seeds)):
        parts = torch.randperm(30, generator=torch.Generator().manual_seed(s)).view(chunks, 5)
        assert sorted(parts.flatten().tolist()) == list(range(30))
        grads = torch.stack([module_grad(model, x[b], y[b], "bce", wd)[1] for b in parts])
        torch.testing.assert_close(mean[i], grads.mean(0), rtol=1e-10, atol=1e-13)
        torch.testing.assert_close(var[i], grads.var(0, unbiased=True), rtol=1e-9, atol=1e-15)
    with pytest.raises(ValueError):
        dynamics.gradient_noise_variance(ens, x, y, chunks=7)


def _langevin_one_step_sample(k: int = 3000):
    """One Langevin step at lr=1 from one start θ0, for k members drawing from seeds 0..k-1."""
    model = chain(4, (3,), "tanh", True, seed=3)
    x, y = data(40, (4,), "bce", seed=4)
    ens = Ensemble.from_models([model] * k)
    start = ens.flat.clone()
    dynamics.langevin(ens, x, y, lr=1.0, steps=1, seeds=range(k), chunks=10, loss="bce")
    update = start - ens.flat                      # = mean + √var ⊙ ξ
    full = module_grad(model, x, y, "bce")[1]      # the deterministic part: the full-batch gradient
    return model, x, y, start, update, full


def test_langevin_noise_has_the_gradient_noise_variance():
    k = 3000
    model, x, y, start, update, full = _langevin_one_step_sample(k)
    noise = update - full
    # the split each member drew in its step is the first draw of its generator: reproduce the
    # variance it used, and standardise
    ens = Ensemble(Ensemble.from_models([model]).shapes, "tanh", start)
    _, var = dynamics.gradient_noise_variance(ens, x, y, chunks=10, generator_seeds=range(k), loss="bce")
    z = noise / var.sqrt()
    # z should be k × P independent standard normals. The sample variance of K standard normals has
    # standard deviation ≈ √(2/K) and the sample mean 1/√K; allow 5 of those per parameter, and
    # 5·√(2/(K·P)) for the variance pooled over all parameters.
    p = z.shape[1]
    assert (z.mean(0).abs() < 5 / math.sqrt(k)).all()
    assert ((z.var(0) - 1).abs() < 5 * math.sqrt(2 / k)).all()
    assert abs(float(z.var()) - 1) < 5 * math.sqrt(2 / (k * p))
    # different parameters get independent noise: correlations of standardised pairs ~ N(0, 1/K)
    c = torch.corrcoef(z[:, :6].T)
    off = c[~torch.eye(6, dtype=torch.bool)]
    assert (off.abs() < 5 / math.sqrt(k)).all()


def test_langevin_noise_variance_matches_per_example_gradients():
    """Independently of how the code splits: for a uniformly random split of N examples into C equal
    chunks of b = N/C, the unbiased variance across chunk-mean gradients has expectation S²/b, S² the
    unbiased variance of the N per-example gradients (sampling without replacement:
    Var(ḡ_c) = (S²/b)(1 − b/N), and E[Σ_c (ḡ_c − ḡ)²/(C−1)] = C/(C−1)·Var(ḡ_c) = S²/b).
    The noise ξ is independent of the split, so E[(update − ∇L)²] = S²/b per parameter."""
    k = 3000
    model, x, y, _, update, full = _langevin_one_step_sample(k)
    per_example = torch.stack([module_grad(model, x[i:i + 1], y[i:i + 1], "bce")[1] for i in range(len(y))])
    torch.testing.assert_close(per_example.mean(0), full, rtol=1e-10, atol=1e-13)
    expected = per_example.var(0, unbiased=True) / (len(y) / 10)
    sq = (update - full) ** 2
    # the sample mean of k squared noises is within 5 standard errors (its sample std / √k)
    se = sq.std(0) / math.sqrt(k)
    assert ((sq.mean(0) - expected).abs() < 5 * se).all(), ((sq.mean(0) - expected) / se)


# --------------------------------------------------------------------------- gradient descent


def torch_gd_until(model, x, y, *, lr, tol, max_steps, loss):
    """Full-batch GD stopping at the first step where every gradient component is below tol."""
    for step in range(max_steps + 1):
        _, g = module_grad(model, x, y, loss)
        if g.abs().max() < tol or step == max_steps:
            return model, step, bool(g.abs().max() < tol)
        with torch.no_grad():
            at = 0
            for q in model.parameters():
                q.sub_(lr * g[at:at + q.numel()].view_as(q))
                at += q.numel()


def test_gradient_descent_members_stop_independently():
    # linear regression (one Linear layer, convex): members started at very different distances
    # from the minimum reach the tolerance after different numbers of steps; the last is cut off
    x, y = data(30, (4,), "mse")
    models = []
    for i, scale in enumerate([1.0, 30.0, 1e4, 1e6]):
        torch.manual_seed(i)
        m = nn.Sequential(nn.Linear(4, 1)).to(DT)
        with torch.no_grad():
            for p in m.parameters():
                p.mul_(scale)
        models.append(m)
    kw = dict(lr=0.5, tol=1e-8, max_steps=95, loss="mse")
    ens = Ensemble.from_models(models)
    trace = dynamics.gradient_descent(ens, x, y, **kw)
    assert trace.diverged == [False] * 4
    for i, m in enumerate(models):
        alone = Ensemble.from_models([m])
        tr = dynamics.gradient_descent(alone, x, y, **kw)
        assert tr.steps[0] == trace.steps[i]
        assert tr.converged[0] == trace.converged[i]
        torch.testing.assert_close(ens.flat[i], alone.flat[0], rtol=1e-12, atol=1e-14)
        ref, steps, converged = torch_gd_until(copy.deepcopy(m), x, y, lr=0.5, tol=1e-8, max_steps=95,
                                               loss="mse")
        assert trace.steps[i] == steps and trace.converged[i] == converged
        torch.testing.assert_close(ens.flat[i], flat_of(ref), rtol=1e-10, atol=1e-13)
    assert len(set(trace.steps)) == 4, trace.steps              # stopped at different steps
    assert trace.converged == [True, True, True, False], trace.converged
    assert trace.steps[3] == 95


# --------------------------------------------------------------------------- divergence


def test_one_diverging_member_is_marked_and_the_others_are_unaffected():
    # a two-layer linear net's curvature grows with the weights' scale: at one lr, the member
    # started 100 times larger diverges, the others train normally
    x, y = data(24, (5,), "mse")
    models = [chain(5, (4,), "linear", False, seed=s, scale=100.0 if s == 2 else 0.5) for s in range(4)]
    seeds = [1, 2, 3, 4]
    kw = dict(lr=0.05, epochs=20, batch_size=8, loss="mse")
    ens = Ensemble.from_models(models)
    trace = dynamics.sgd(ens, x, y, seeds=seeds, **kw)
    assert trace.diverged == [False, False, True, False]
    assert not math.isfinite([r for r in trace.rows if r[1] == 2][-1][2])
    for i in (0, 1, 3):
        alone = Ensemble.from_models([models[i]])
        tr = dynamics.sgd(alone, x, y, seeds=[seeds[i]], **kw)
        assert tr.diverged == [False]
        assert torch.isfinite(ens.flat[i]).all()
        torch.testing.assert_close(ens.flat[i], alone.flat[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["sgd", "langevin", "gradient_descent"])
def test_huge_lr_marks_every_member_diverged_without_raising(method):
    x, y = data(20, (3,), "mse")
    ens = Ensemble.from_models([chain(3, (3,), "linear", True, seed=s) for s in range(3)])
    if method == "sgd":
        trace = dynamics.sgd(ens, x, y, lr=1e6, epochs=30, batch_size=5, seeds=[0, 1, 2], loss="mse")
    elif method == "langevin":
        trace = dynamics.langevin(ens, x, y, lr=1e6, steps=60, seeds=[0, 1, 2], chunks=5, loss="mse")
    else:
        trace = dynamics.gradient_descent(ens, x, y, lr=1e6, steps=60, loss="mse")
    assert trace.diverged == [True, True, True]
