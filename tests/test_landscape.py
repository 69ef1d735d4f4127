"""Landscape engine: identities at known points, directions, PCA, BN, engines, loss-landscapes."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

import lossland
from lossland import state
from lossland.evaluation import default_loss, evaluate
from lossland.fold import folded_copy
from lossland.landscape.batches import _materialize
from lossland.landscape.engines import _loss_acc_reducer, _probe
from lossland.landscape.points import _Points


def _model(seed=0, batch_norm=True, arch="nin"):
    spec = {"arch": arch, "width": 0.1, "depth": 2, "batch_norm": batch_norm} if arch == "nin" else \
        {"arch": "mlp", "hidden": [16, 16], "batch_norm": batch_norm}
    return lossland.create_model(spec, (3, 8, 8), 10, seed=seed)


def _perturb_stats(model, seed):
    """Non-trivial BN running statistics, different per model."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(1.0 + 0.2 * torch.rand(m.running_var.shape, generator=g))
            m.num_batches_tracked.fill_(seed + 3)
    return model


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(96, 3, 8, 8, generator=g), torch.randint(0, 10, (96,), generator=g)


@pytest.fixture
def pair():
    a, b = _perturb_stats(_model(0), 0), _perturb_stats(_model(1), 1)
    return a, {k: v.clone() for k, v in a.state_dict().items()}, {k: v.clone() for k, v in b.state_dict().items()}


def _eval_at(model, state, data, **kw):
    m = _model()
    m.load_state_dict(state)
    return evaluate(m, data, **kw)


def _lerp(a, b, t):
    return {k: a[k] + t * (b[k] - a[k]) if a[k].is_floating_point() else a[k] for k in a}


@pytest.mark.parametrize("engine", ["loop", "vmap"])
def test_interpolate_endpoints_equal_evaluate(pair, data, engine):
    model, s, e = pair
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    df = lossland.interpolate(model, s, e, [0.0, 1.0, 0.5, 2.0, -0.5], data, engine=engine, batch_size=40)
    assert list(df.columns) == ["alpha", "loss", "accuracy"]
    for row, point in ((0, s), (1, e), (2, _lerp(s, e, 0.5)), (3, _lerp(s, e, 2.0))):
        ref = _eval_at(model, point, data)
        assert df.loss[row] == pytest.approx(ref["loss"], rel=1e-5, abs=1e-6)
        assert df.accuracy[row] == pytest.approx(ref["accuracy"])
    # the model is left as it was: weights, buffers, mode
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_interpolate_takes_integer_buffers_from_start(pair, data):
    model, s, e = pair
    seen = []
    key = next(k for k in s if k.endswith("num_batches_tracked"))
    hook = model.register_forward_pre_hook(lambda m, inp: seen.append(int(m.state_dict()[key])))
    lossland.interpolate(model, s, e, [1.0], data, engine="loop", fuse=False)
    hook.remove()
    assert seen and set(seen) == {int(s[key])} and int(s[key]) != int(e[key])


def test_bilinear_corners_and_barycentric_vertices(data):
    states = [{k: v.clone() for k, v in _perturb_stats(_model(i), i).state_dict().items()} for i in range(4)]
    model = _model()
    df = lossland.bilinear_surface(model, states, [0.0, 1.0], [0.0, 1.0], data)
    corner = {(0, 0): 0, (1, 0): 1, (0, 1): 2, (1, 1): 3}
    for _, r in df.iterrows():
        ref = _eval_at(model, states[corner[(int(r.x), int(r.y))]], data)
        assert r.loss == pytest.approx(ref["loss"], rel=1e-5)
        assert r.accuracy == pytest.approx(ref["accuracy"])
    # the bilinear plane's centre is the mean of the four corners
    mid = lossland.bilinear_surface(model, states, [0.5], [0.5], data)
    centre = {k: sum(st[k] for st in states) / 4 if v.is_floating_point() else v for k, v in states[0].items()}
    assert mid.loss[0] == pytest.approx(_eval_at(model, centre, data)["loss"], rel=1e-5)

    bary = lossland.barycentric_surface(model, states[0], states[1], states[2], [0, 0.5, 1], [0, 0.5, 1], data,
                                        simplex_only=True)
    assert len(bary) == 6
    assert np.allclose(bary[["w0", "w1", "w2"]].sum(axis=1), 1.0)
    for vertex, (a, b) in enumerate([(0, 0), (1, 0), (0, 1)]):
        r = bary[(bary.x == a) & (bary.y == b)].iloc[0]
        assert r.loss == pytest.approx(_eval_at(model, states[vertex], data)["loss"], rel=1e-5)


def test_surface_is_origin_plus_directions(pair, data):
    model, s, e = pair
    dx, dy = lossland.random_direction(model, seed=0), lossland.random_direction(model, seed=1)
    df = lossland.surface(model, s, dx, dy, [-0.5, 0.0, 0.7], [0.0, 0.3], data)
    assert list(df.columns) == ["x", "y", "loss", "accuracy"] and len(df) == 6
    r = df[(df.x == 0.7) & (df.y == 0.3)].iloc[0]
    # the model's own state does not matter: buffers the directions leave alone come from the origin
    other = _perturb_stats(_model(7), 7)
    for engine in ("loop", "vmap"):
        df2 = lossland.surface(other, s, dx, dy, [0.7], [0.3], data, engine=engine)
        assert df2.loss[0] == pytest.approx(r.loss, rel=1e-5)
    point = {k: v + 0.7 * dx.get(k, 0) + 0.3 * dy.get(k, 0) if v.is_floating_point() else v for k, v in s.items()}
    assert r.loss == pytest.approx(_eval_at(model, point, data)["loss"], rel=1e-5)
    assert df[(df.x == 0) & (df.y == 0)].loss.iloc[0] == pytest.approx(_eval_at(model, s, data)["loss"], rel=1e-5)


def test_distance_path(pair, data):
    model, final, init = pair
    names = [n for n, _ in model.named_parameters()]
    dist = math.sqrt(sum(float((init[k] - final[k]).double().pow(2).sum()) for k in names))
    df = lossland.distance_path(model, final, init, [0.0, dist, 1.5 * dist], data)
    assert list(df.columns) == ["distance", "alpha", "loss", "accuracy"]
    assert df.alpha.tolist() == pytest.approx([0.0, 1.0, 1.5])
    assert df.loss[0] == pytest.approx(_eval_at(model, final, data)["loss"], rel=1e-5)
    assert df.loss[1] == pytest.approx(_eval_at(model, init, data)["loss"], rel=1e-5)


def test_filter_normalisation_norms():
    model = _model(batch_norm=True)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 2.0)
    weights = model.state_dict()
    d = lossland.random_direction(model, "filter", seed=3)
    assert set(d) == {n for n, _ in model.named_parameters()}
    n_filters = 0
    for k, v in d.items():
        w = weights[k]
        if v.dim() <= 1:
            assert torch.count_nonzero(v) == 0, k  # biases and BN: zero with ignore="biasbn"
            continue
        dn = v.reshape(v.shape[0], -1).norm(dim=1)
        wn = w.reshape(w.shape[0], -1).norm(dim=1)
        assert torch.allclose(dn, wn, rtol=1e-5), k
        n_filters += v.shape[0]
    assert n_filters > 0
    keep = lossland.random_direction(model, "filter", seed=3, ignore=None)
    for k, v in keep.items():
        if v.dim() <= 1:
            assert torch.equal(v, weights[k])
    layer = lossland.random_direction(model, "layer", seed=3)
    for k, v in layer.items():
        if v.dim() > 1:
            assert float(v.norm()) == pytest.approx(float(weights[k].norm()), rel=1e-5)
    raw = lossland.random_direction(model, "none", seed=3, ignore=None)
    assert not any(torch.allclose(raw[k], d[k]) for k in d if d[k].dim() > 1)
    # seeded: the same direction twice, a different one for another seed
    assert all(torch.equal(v, lossland.random_direction(model, "filter", seed=3)[k]) for k, v in d.items())
    assert not torch.equal(d["features.0.weight"], lossland.random_direction(model, seed=4)["features.0.weight"])


def test_agrees_with_loss_landscapes_linear_interpolation(data):
    loss_landscapes = pytest.importorskip("loss_landscapes")
    from loss_landscapes.metrics import Loss

    a, b = _model(0, batch_norm=False).eval(), _model(1, batch_norm=False).eval()
    x, y = data
    steps = 6
    theirs = loss_landscapes.linear_interpolation(a, b, Loss(default_loss, x, y), steps=steps, deepcopy_model=True)
    alphas = [(i + 1) / steps for i in range(steps)]
    ours = lossland.interpolate(a, a.state_dict(), b.state_dict(), alphas, data)
    assert np.allclose(ours.loss.to_numpy(), theirs, rtol=1e-5, atol=1e-6)


def test_agrees_with_loss_landscapes_planar_interpolation(data):
    loss_landscapes = pytest.importorskip("loss_landscapes")
    from loss_landscapes.metrics import Loss

    m0, m1, m2 = (_model(i, batch_norm=False).eval() for i in range(3))
    x, y = data
    steps = 4
    theirs = np.array(loss_landscapes.planar_interpolation(m0, m1, m2, Loss(default_loss, x, y), steps=steps,
                                                           deepcopy_model=True))
    s0, s1, s2 = (m.state_dict() for m in (m0, m1, m2))
    d1 = {k: (s1[k] - s0[k]) for k in s0}
    d2 = {k: (s2[k] - s0[k]) for k in s0}
    # loss-landscapes' grid: row i is i steps along the first direction; even rows sit at
    # 1..steps steps along the second, odd rows at 0..steps-1 (its in-place walk)
    for i in range(steps):
        js = np.arange(1, steps + 1) if i % 2 == 0 else np.arange(steps)
        ours = lossland.surface(m0, s0, d1, d2, [i / steps], js / steps, data)
        assert np.allclose(ours.loss.to_numpy(), theirs[i], rtol=1e-5, atol=1e-6), i


def test_functional_distance(pair, data):
    model, s, e = pair
    same = lossland.functional_distance(model, s, s, [0.0, 0.5, 1.0], data)
    assert list(same.columns) == ["alpha", "functional_distance", "disagreement"]
    assert np.allclose(same.functional_distance, 0.0, atol=1e-6) and np.all(same.disagreement == 0)
    df = lossland.functional_distance(model, s, e, [0.0, 1.0], data)
    assert df.functional_distance[0] == pytest.approx(0.0, abs=1e-6) and df.disagreement[0] == 0
    ma, mb = _model(), _model()
    ma.load_state_dict(s), mb.load_state_dict(e)
    ma.eval(), mb.eval()
    with torch.no_grad():
        pa, pb = torch.softmax(ma(data[0]), 1), torch.softmax(mb(data[0]), 1)
    expect = float((pa - pb).pow(2).sum(1).mean().sqrt())
    assert df.functional_distance[1] == pytest.approx(expect, rel=1e-5)
    assert df.disagreement[1] == pytest.approx(float((pa.argmax(1) != pb.argmax(1)).float().mean()))
    assert df.disagreement[1] > 0


@pytest.mark.parametrize("bn", ["stored", "recompute"])
def test_vmap_engine_equals_loop_engine(pair, data, bn):
    model, s, e = pair
    dx, dy = lossland.random_direction(model, seed=0), lossland.random_direction(model, seed=1)
    kw = dict(bn=bn, batch_size=32)
    loop = lossland.surface(model, s, dx, dy, [-1, 0, 0.5], [-0.5, 1], data, engine="loop", **kw)
    vm = lossland.surface(model, s, dx, dy, [-1, 0, 0.5], [-0.5, 1], data, engine="vmap", points_per_batch=4, **kw)
    assert np.allclose(loop.loss, vm.loss, rtol=1e-5, atol=1e-5)
    assert np.allclose(loop.accuracy, vm.accuracy)
    f_loop = lossland.functional_distance(model, s, e, [0.3, 1.2], data, engine="loop")
    f_vm = lossland.functional_distance(model, s, e, [0.3, 1.2], data, engine="vmap")
    assert np.allclose(f_loop.functional_distance, f_vm.functional_distance, rtol=1e-5, atol=1e-6)
    assert np.allclose(f_loop.disagreement, f_vm.disagreement)
    assert _probe(model, _Points(s, [dx], torch.zeros(2, 1, dtype=torch.float64)),
                  _materialize(data, model, 32),
                  _loss_acc_reducer(default_loss), [()] * 3, 2) in ("loop", "vmap")


def test_pca_reproduces_planar_trajectory():
    model = _model()
    final = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    names = [n for n, _ in model.named_parameters()]
    u = {k: torch.randn(final[k].shape, generator=g) for k in names}
    v = {k: torch.randn(final[k].shape, generator=g) for k in names}
    ab = [(3.0, 1.0), (2.0, -1.5), (1.0, 0.5), (0.4, 2.0), (0.0, 0.0)]
    ckpts = [{k: final[k] + a * u[k] + b * v[k] if k in u else final[k] for k in final} for a, b in ab]
    pca = lossland.pca_directions(ckpts)
    assert pca.explained_variance_ratio.sum() == pytest.approx(1.0, abs=1e-6)
    assert pca.explained_variance_ratio[0] >= pca.explained_variance_ratio[1] > 0
    unit = sum(float(pca.dir_x[k].double().pow(2).sum()) for k in pca.dir_x)
    assert unit == pytest.approx(1.0, rel=1e-5)
    assert not any(k.endswith("running_mean") for k in pca.dir_x)
    for i, ck in enumerate(ckpts):
        x, y = pca.coords.x[i], pca.coords.y[i]
        for k in names:
            rebuilt = final[k] + x * pca.dir_x[k] + y * pca.dir_y[k]
            assert torch.allclose(rebuilt, ck[k], atol=1e-4), (i, k)
    assert pca.coords.x.iloc[-1] == pytest.approx(0.0, abs=1e-6)


def test_bn_recompute_gives_train_mode_statistics(pair, data):
    model, s, e = pair
    x, y = data
    # the statistics of the BN inputs, seen by hooks in a train-mode pass over one batch
    seen = {}
    bns = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    hooks = [m.register_forward_pre_hook(lambda m, inp, n=n: seen.__setitem__(n, inp[0].detach()))
             for n, m in bns]
    with torch.no_grad():
        model.train()(x)
    for h in hooks:
        h.remove()
    model.load_state_dict(s)
    lossland.recompute_bn(model, data, batch_size=len(y))
    for n, m in bns:
        act = seen[n]
        assert torch.allclose(m.running_mean, act.mean(dim=(0, 2, 3)), atol=1e-5), n
        assert torch.allclose(m.running_var, act.var(dim=(0, 2, 3), unbiased=True), rtol=1e-4, atol=1e-5), n
        assert m.momentum == pytest.approx(0.1)
    assert model.training
    recomputed = evaluate(model, data)
    stored = _eval_at(model, s, data)
    model.load_state_dict(s)
    df = lossland.interpolate(model, s, e, [0.0], data, bn="recompute", batch_size=len(y))
    assert df.loss[0] == pytest.approx(recomputed["loss"], rel=1e-5)
    assert df.loss[0] != pytest.approx(stored["loss"], rel=1e-3)
    assert torch.equal(model.state_dict()[bns[0][0] + ".running_mean"], s[bns[0][0] + ".running_mean"])


def test_bn_recompute_over_batches_equals_momentum_none(pair, data):
    """Several batches: the equal-weight average of torch's momentum=None."""
    model, s, _ = pair
    x, _ = data
    ref = copy.deepcopy(model)
    ref.load_state_dict(s)
    bns = [m for m in ref.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    with torch.no_grad():
        ref.train()
        for chunk in x.split(len(x) // 3):
            ref(chunk)
    model.load_state_dict(s)
    lossland.recompute_bn(model, data, batch_size=len(x) // 3)
    got = dict(model.named_buffers())
    for k, v in ref.named_buffers():
        if "running" in k:
            assert torch.allclose(got[k], v, rtol=1e-5, atol=1e-6), k
            assert not torch.allclose(got[k], s[k]), k


def test_bad_arguments(pair, data):
    model, s, e = pair
    with pytest.raises(ValueError, match="engine"):
        lossland.interpolate(model, s, e, [0.0], data, engine="fast")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        lossland.interpolate(model, s, e, [0.0], data, engine="graph")
    with pytest.raises(ValueError, match="bn"):
        lossland.interpolate(model, s, e, [0.0], data, bn="train")
    with pytest.raises(ValueError, match="normalization"):
        lossland.random_direction(model, "weird")
    with pytest.raises(KeyError):
        lossland.interpolate(model, {"x": torch.zeros(1)}, e, [0.0], data)


@pytest.mark.parametrize("arch", ["nin", "mlp"])
def test_folded_batchnorm_equals_model(pair, data, arch):
    model, s, e = pair
    if arch == "mlp":
        model = _perturb_stats(_model(0, arch="mlp"), 0)
        s = {k: v.clone() for k, v in model.state_dict().items()}
        e = {k: v.clone() for k, v in _perturb_stats(_model(1, arch="mlp"), 1).state_dict().items()}
    folded = folded_copy(model)
    n_bn = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert folded is not None and len(folded.pairs) == n_bn > 0
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in folded.module.modules())
    if arch == "nin":  # every conv+ReLU fused on the CPU
        assert folded.relus == sum(isinstance(m, torch.nn.ReLU) for m in model.modules()) > 0
    alphas = [0.0, 0.4, 1.0, 1.3]
    for bn in ("stored", "recompute"):
        on = lossland.interpolate(model, s, e, alphas, data, engine="loop", bn=bn)
        off = lossland.interpolate(model, s, e, alphas, data, engine="loop", bn=bn, fuse=False)
        assert np.allclose(on.loss, off.loss, rtol=1e-5, atol=1e-6), bn
        assert np.allclose(on.accuracy, off.accuracy), bn


@pytest.mark.parametrize("arch", ["nin", "mlp"])
def test_plane_with_constant_batchnorm_uses_the_linear_fold(data, arch):
    """Random directions leave every BN entry at the origin: the folded weights are then
    linear in the coefficients (folded once), and equal the model's own at every point."""
    model = _perturb_stats(_model(0, arch=arch), 0)
    origin = {k: v.clone() for k, v in model.state_dict().items()}
    dx, dy = lossland.random_direction(model, seed=1), lossland.random_direction(model, seed=2)
    folded = folded_copy(model)
    assert folded.linear_fold(origin, [dx, dy]) is not None
    xs = [-1.0, 0.3, 1.0]
    on = lossland.surface(model, origin, dx, dy, xs, xs, data, engine="loop")
    off = lossland.surface(model, origin, dx, dy, xs, xs, data, engine="loop", fuse=False)
    assert np.allclose(on.loss, off.loss, rtol=1e-5, atol=1e-6)
    assert np.allclose(on.accuracy, off.accuracy)
    assert on.loss.std() > 0.01  # the points differ
    # a direction that moves a BN scale: the fold is not linear, refolded at every point
    bn_weight = next(k for k in origin if k.endswith("weight") and origin[k].dim() == 1)
    dz = dict(dy, **{bn_weight: torch.ones_like(origin[bn_weight])})
    assert folded.linear_fold(origin, [dx, dz]) is None
    on = lossland.surface(model, origin, dx, dz, xs, xs, data, engine="loop")
    off = lossland.surface(model, origin, dx, dz, xs, xs, data, engine="loop", fuse=False)
    assert np.allclose(on.loss, off.loss, rtol=1e-5, atol=1e-6)


def test_folded_copy_is_cached_until_the_structure_changes(pair, data):
    model, s, e = pair
    folded = folded_copy(model)
    assert folded_copy(model) is folded
    bn_name, bn = next((n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.eps = 0.5  # a setting, not a value: a new copy, folded with the new eps
    refolded = folded_copy(model)
    assert refolded is not folded and refolded.eps[bn_name] == 0.5
    on = lossland.interpolate(model, s, e, [0.0, 0.7], data, engine="loop")
    off = lossland.interpolate(model, s, e, [0.0, 0.7], data, engine="loop", fuse=False)
    assert np.allclose(on.loss, off.loss, rtol=1e-5, atol=1e-6)


def test_fused_conv_relu_without_batchnorm(data):
    a, b = _model(0, batch_norm=False), _model(1, batch_norm=False)
    folded = folded_copy(a)
    assert folded is not None and not folded.pairs and folded.relus > 0
    s, e = a.state_dict(), b.state_dict()
    on = lossland.interpolate(a, s, e, [0.0, 0.5, 1.0], data, engine="loop")
    off = lossland.interpolate(a, s, e, [0.0, 0.5, 1.0], data, engine="loop", fuse=False)
    assert np.allclose(on.loss, off.loss, rtol=1e-5, atol=1e-6)
    assert on.loss[2] == pytest.approx(evaluate(b, data)["loss"], rel=1e-5)


@pytest.mark.parametrize("bias,affine", [(False, True), (True, True), (True, False)])
def test_fold_is_torch_fusion_arithmetic(bias, affine):
    """The one fold formula is torch.nn.utils.fusion's, to the bit: the landscape engines'
    folded copy gives the numbers it always gave."""
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    from lossland.fold import fold

    torch.manual_seed(0)
    conv, bn = torch.nn.Conv2d(3, 4, 3, bias=bias), torch.nn.BatchNorm2d(4, eps=1e-3, affine=affine)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.3, 3.0)
        if affine:
            bn.weight.normal_(1.0, 0.3)
            bn.bias.normal_()
    args = (conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
    with torch.no_grad():
        w, b = fold(*args)
        tw, tb = fuse_conv_bn_weights(*args)
    assert torch.equal(w, tw) and torch.equal(b, tb)


def test_state_arithmetic(pair):
    model, s, e = pair
    names = state.float_param_names(model, s)
    assert names == [n for n, _ in model.named_parameters()] == state.trainable_names(model)
    d = state.diff(e, s)
    assert set(d) == {k for k, v in s.items() if v.is_floating_point()}  # no integer buffers
    exact = math.sqrt(sum(float((e[k].double() - s[k].double()).pow(2).sum()) for k in names))
    assert state.distance(e, s, names) == exact  # float64, summed in the order of the names
    assert state.norm(d, names) == pytest.approx(exact, rel=1e-6)
    assert state.distance(e, s, []) == state.norm(d, []) == 0.0
    flat = state.flatten(s[k] for k in names)
    assert flat.numel() == sum(s[k].numel() for k in names)
    back = state.unflatten(flat, s, names)
    assert list(back) == names and all(torch.equal(back[k], s[k]) for k in names)
    copy_ = state.copy_as(s, s)
    assert all(torch.equal(copy_[k], s[k]) and copy_[k].data_ptr() != s[k].data_ptr() for k in s)
    assert set(state.direction_as(s, s)) == set(d)
    with pytest.raises(KeyError, match="missing"):
        state.copy_as({k: v for k, v in s.items() if k != names[0]}, s)
    with pytest.raises(KeyError, match="lacks"):
        state.direction_as({"nope": torch.zeros(1)}, s)


# --------------------------------------------------------------------------- layout and chunks chosen for the model


class _UserCNN(torch.nn.Module):
    """A model as users write it: contiguous weights, functional ReLUs in the three
    spellings, max-pooling, no BatchNorm."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.c2 = torch.nn.Conv2d(6, 8, 3, padding=1)
        self.c3 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.nn.functional.relu(self.c1(x)), 2)
        x = torch.relu(self.c2(x))
        x = self.c3(x).relu()
        return self.fc(x.mean((2, 3)))


def test_layout_and_chunk_are_chosen_for_the_model(data):
    from lossland.evaluation import inputs_channels_last
    from lossland.landscape.batches import default_chunk_size

    cnn, mlp = _UserCNN(), _model(0, arch="mlp")
    cl_cnn = copy.deepcopy(cnn).to(memory_format=torch.channels_last)
    assert inputs_channels_last(cnn) and inputs_channels_last(cl_cnn) and not inputs_channels_last(mlp)
    x = _materialize(data, cnn, None)[0][0]
    assert x.is_contiguous(memory_format=torch.channels_last) and x.shape[0] == 96  # one chunk of ≤ 128
    assert default_chunk_size(cnn, torch.device("cpu")) == 128
    assert default_chunk_size(mlp, torch.device("cpu")) == 1024
    assert default_chunk_size(cnn, torch.device("cuda")) == 4096
    # the model passed in keeps its own format
    assert cnn.c1.weight.is_contiguous() and not cnn.c1.weight.is_contiguous(memory_format=torch.channels_last)


def test_functional_relus_are_fused_and_the_surface_is_the_models(data):
    cnn = _UserCNN()
    folded = folded_copy(cnn)
    assert folded is not None and not folded.pairs and folded.relus == 3
    with torch.no_grad():
        folded.update(cnn.state_dict())
        x = data[0].contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(folded.module(x), cnn(data[0]), rtol=1e-5, atol=1e-6)
    origin = {k: v.clone() for k, v in cnn.state_dict().items()}
    dx, dy = lossland.random_direction(cnn, seed=0), lossland.random_direction(cnn, seed=1)
    xs = [-1.0, 0.0, 1.0]
    got = lossland.surface(cnn, origin, dx, dy, xs, xs, data)  # channels-last chunks, fused copy
    # the reference: the model itself, contiguous, at each point, one batch
    for (a, b), loss, acc in zip([(a, b) for a in xs for b in xs], got.loss, got.accuracy):
        m = copy.deepcopy(cnn)
        m.load_state_dict({k: origin[k] + a * dx.get(k, 0) + b * dy.get(k, 0) for k in origin})
        ref = evaluate(m, data, batch_size=None)
        assert loss == pytest.approx(ref["loss"], rel=1e-5) and acc == pytest.approx(ref["accuracy"])
    assert cnn.c1.weight.is_contiguous()
