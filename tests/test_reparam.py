"""lossland.reparam against mathematics: identical functions, Hessians that transform as
θ = Dθ' demands (dense, float64), the predicted growth, the refusals, input gradients."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

import lossland
from lossland.curvature import HessianOperator, epsilon_sharpness, hessian
from lossland.models import MLP, NIN, VGG
from lossland.reparam import (
    ReparamError,
    ReparametrizedInput,
    SweepSettings,
    alpha_scale,
    alpha_scale_blocks,
    bn_scale,
    homogeneous_pairs,
    input_gradient_norms,
    input_reparametrization_sweep,
    layer_names,
    named_transform,
    reparametrization_sweep,
    standardization,
    weight_norm_blocks,
    weight_normalize,
    whitening,
)

ALPHAS = (1e-3, 1e-2, 0.5, 3.0, 1e2, 1e3)


def _data(shape=(3, 8, 8), n=24, classes=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g, dtype=dtype), torch.randint(0, classes, (n,), generator=g)


def _double(model):
    torch.manual_seed(0)
    return model.double().eval()


def _models():
    plain_cnn = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 8, 3),
                              nn.LeakyReLU(0.1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    return {
        "mlp": _double(MLP(192, 3, hidden=(12, 10))),
        "nin": _double(NIN(3, 3, width=0.05, depth=2, batch_norm=False)),
        "vgg": _double(VGG(3, 3, width=0.05, depth=11, batch_norm=False)),
        "sequential": _double(plain_cnn),
    }


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", ["mlp", "nin", "vgg", "sequential"])
def test_alpha_scale_keeps_the_function_and_the_input_model(name):
    model = _models()[name]
    x, _ = _data(shape=(3, 32, 32), n=6) if name == "vgg" else _data()
    before, state = model(x), _state(model)
    pairs = homogeneous_pairs(model)
    assert pairs, name
    for layers in (pairs[0], pairs[-1]):
        for alpha in ALPHAS:
            scaled = alpha_scale(model, alpha, layers)
            torch.testing.assert_close(scaled(x), before, rtol=1e-10, atol=1e-12)
            first = scaled.get_submodule(layer_names(model)[layers[0]]).weight
            orig = model.get_submodule(layer_names(model)[layers[0]]).weight
            torch.testing.assert_close(first, orig * alpha)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_pairs_of_the_workflow_models():
    # every consecutive pair of a ReLU MLP; NIN without BN has its pooling in between (allowed)
    assert homogeneous_pairs(_models()["mlp"]) == [(0, 1), (1, 2)]
    nin = _models()["nin"]
    assert homogeneous_pairs(nin) == [(k, k + 1) for k in range(len(layer_names(nin)) - 1)]
    # with BatchNorm no pair qualifies (BN lies between every two layers)
    assert homogeneous_pairs(NIN(3, 3, width=0.05, depth=2, batch_norm=True).eval()) == []


def _dense(model, data):
    return hessian(model, data).double()


def _flat_scales(model, blocks, alpha):
    """The diagonal D of θ = D θ' (θ: original, θ': reparametrised) for alpha-scaled blocks."""
    d = []
    for name, p in model.named_parameters():
        power = next((pw for names, pw in blocks.values() if name in names), 0)
        d.append(torch.full((p.numel(),), float(alpha) ** (power // 2) if power else 1.0, dtype=torch.float64))
    return torch.cat(d)


def test_alpha_scale_hessian_is_D_H_D_dense():
    """L'(θ') = L(Dθ') with D = 1/α on layer i, α on layer j: H' = D H D, every block."""
    torch.manual_seed(1)
    model = MLP(12, 3, hidden=(5,)).double().eval()
    data = (torch.randn(30, 12, dtype=torch.float64), torch.randint(0, 3, (30,)))
    h = _dense(model, data)
    blocks = alpha_scale_blocks(model, (0, 1))
    for alpha in (1e-2, 0.3, 7.0, 1e3):
        d = _flat_scales(model, blocks, alpha)  # θ = Dθ': D = 1/α on i, α on j
        h_scaled = _dense(alpha_scale(model, alpha, (0, 1)), data)
        expected = d[:, None] * h * d[None, :]
        torch.testing.assert_close(h_scaled, expected, rtol=1e-8, atol=1e-10 * float(expected.abs().max()))


def test_top_eigenvalue_grows_like_alpha_squared():
    torch.manual_seed(2)
    model = MLP(12, 3, hidden=(6,)).double().eval()
    data = (torch.randn(40, 12, dtype=torch.float64), torch.randint(0, 3, (40,)))
    h = _dense(model, data)
    names = [n for n, _ in model.named_parameters()]
    sizes = [p.numel() for p in model.parameters()]
    starts = np.cumsum([0] + sizes)
    j = slice(starts[names.index("net.3.weight")], starts[names.index("net.3.weight") + 1])
    i = slice(starts[names.index("net.1.weight")], starts[names.index("net.1.bias") + 1])
    lam_j = float(torch.linalg.eigvalsh(h[j, j])[-1])
    lam_i = float(torch.linalg.eigvalsh(h[i, i])[-1])
    for alpha in (1e2, 1e3):
        top = float(torch.linalg.eigvalsh(_dense(alpha_scale(model, alpha, (0, 1)), data))[-1])
        assert top >= alpha ** 2 * lam_j * (1 - 1e-9)  # interlacing bound
        assert top / alpha ** 2 == pytest.approx(lam_j, rel=5e-3)
    top = float(torch.linalg.eigvalsh(_dense(alpha_scale(model, 1e-3, (0, 1)), data))[-1])
    assert top * 1e-6 == pytest.approx(lam_i, rel=5e-3)


def test_sweep_predictions_hold_exactly_with_exact_traces():
    torch.manual_seed(3)
    model = MLP(12, 3, hidden=(6,)).double().eval()
    data = (torch.randn(40, 12, dtype=torch.float64), torch.randint(0, 3, (40,)))
    transform, blocks = named_transform(model, "alpha_scale", (0, 1))
    out = reparametrization_sweep(model, transform, [1e-2, 1.0, 1e2], data, data, blocks=blocks,
                                  settings=SweepSettings(trace_method="exact", tol=1e-10, max_iter=200))
    sweep = out["sweep"]
    assert set(out["blocks"]["block"]) == {"net.1", "net.3.weight", "rest"}
    np.testing.assert_allclose(sweep["trace"], sweep["predicted_trace"], rtol=1e-8)
    assert (sweep["top_eigenvalue"] >= sweep["top_eigenvalue_bound"] * (1 - 1e-6)).all()
    assert sweep["max_output_diff"].max() < 1e-12
    assert sweep["test_loss"].nunique() <= 3 and np.ptp(sweep["test_loss"]) < 1e-12
    assert sweep["top_eigenvalue"].max() / sweep["top_eigenvalue"].min() > 1e3


def test_refusals_name_what_is_in_the_way():
    seq = nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ReparamError, match=r"1 \(Sigmoid\) is not positively homogeneous"):
        alpha_scale(seq, 2.0, (0, 1))
    assert homogeneous_pairs(seq) == [(1, 2)]
    tanh = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    with pytest.raises(ReparamError, match="Tanh"):
        alpha_scale(tanh, 2.0)
    bn = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ReparamError, match="BatchNorm1d"):
        alpha_scale(bn, 2.0)
    drop = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 2))
    with pytest.raises(ReparamError, match=r"2 \(Dropout\) is in train mode"):
        alpha_scale(drop, 2.0)
    alpha_scale(drop.eval(), 2.0)  # eval mode: dropout is the identity
    with pytest.raises(ReparamError, match="lies between|not positively homogeneous"):
        alpha_scale(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)), 2.0, (0, 2))
    with pytest.raises(ReparamError, match="first must come before"):
        alpha_scale(seq, 2.0, (2, 1))
    with pytest.raises(ReparamError, match="out of range"):
        alpha_scale(seq, 2.0, (0, 7))
    with pytest.raises(ValueError, match="alpha must be > 0"):
        alpha_scale(seq, -1.0, (1, 2))

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x):
            h = self.a(x)
            return self.b(torch.relu(h)) + h

    with pytest.raises(ReparamError, match="read by 2 operations"):
        alpha_scale(Residual(), 2.0)


def _bn_model():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4, eps=1e-3), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).double()
    model.train()
    x, _ = _data()
    with torch.no_grad():
        for _ in range(3):
            model(x)  # running statistics away from their defaults
    return model.eval()


def test_bn_scale_keeps_the_function_in_both_modes_and_scales_its_block():
    model = _bn_model()
    x, y = _data()
    h = _dense(model, (x, y))
    n0 = model[0].weight.numel()
    for alpha in (1e-3, 0.2, 5.0, 1e3):
        scaled = bn_scale(model, alpha, 0)
        torch.testing.assert_close(scaled(x), model(x), rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(copy.deepcopy(scaled).train()(x), copy.deepcopy(model).train()(x),
                                   rtol=1e-9, atol=1e-12)
        assert scaled[1].eps == pytest.approx(1e-3 * alpha ** 2)
        hs = _dense(scaled, (x, y))
        torch.testing.assert_close(hs[:n0, :n0], h[:n0, :n0] / alpha ** 2, rtol=1e-7,
                                   atol=1e-10 * float(h.abs().max()) / alpha ** 2)
        torch.testing.assert_close(hs[n0:, n0:], h[n0:, n0:], rtol=1e-7, atol=1e-10 * float(h.abs().max()))
    assert model[1].eps == 1e-3
    with pytest.raises(ReparamError, match="not by a BatchNorm; layers that feed a BatchNorm: 0"):
        bn_scale(model, 2.0, 1)


def test_weight_norm_keeps_the_function_and_scales_the_v_block():
    torch.manual_seed(5)
    model = MLP(12, 3, hidden=(5,)).double().eval()
    data = (torch.randn(30, 12, dtype=torch.float64), torch.randint(0, 3, (30,)))
    ref = weight_normalize(model, 1.0)
    torch.testing.assert_close(ref(data[0]), model(data[0]), rtol=1e-10, atol=1e-12)
    names = [n for n, _ in ref.named_parameters()]
    assert "net.1.parametrizations.weight.original1" in names
    v_names = weight_norm_blocks(ref)["v"][0]
    mask = torch.cat([torch.full((p.numel(),), n in v_names) for n, p in ref.named_parameters()])
    h = _dense(ref, data)
    for c in (1e-2, 3.0, 1e2):
        wn = weight_normalize(model, c)
        torch.testing.assert_close(wn(data[0]), model(data[0]), rtol=1e-9, atol=1e-12)
        hc = _dense(wn, data)
        d = torch.where(mask, 1 / torch.tensor(c, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
        torch.testing.assert_close(hc, d[:, None] * h * d[None, :], rtol=1e-7, atol=1e-10 * float(h.abs().max()))
    assert not any("parametrizations" in n for n, _ in model.named_parameters())


def test_input_reparametrization_keeps_predictions_and_moves_gradients_by_T():
    torch.manual_seed(6)
    model = MLP(12, 3, hidden=(8,)).double().eval()
    x = torch.randn(20, 12, dtype=torch.float64)
    t = torch.randn(12, 12, dtype=torch.float64) + 4 * torch.eye(12, dtype=torch.float64)
    mean = torch.randn(12, dtype=torch.float64)
    g = ReparametrizedInput(model, t, mean)
    u = g.encode(x)
    torch.testing.assert_close(g(u), model(x), rtol=1e-9, atol=1e-11)
    # ∇_u g = T^{-T} ∇_x f for the same (predicted-class) output
    xg = x.clone().requires_grad_(True)
    out = model(xg)
    k = out.argmax(1, keepdim=True)
    (gx,) = torch.autograd.grad(out.gather(1, k).sum(), xg)
    expected = (gx @ torch.linalg.inv(t)).norm(dim=1)
    torch.testing.assert_close(input_gradient_norms(g, u), expected, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(input_gradient_norms(model, x), gx.norm(dim=1), rtol=1e-12, atol=0)


def test_whitening_and_standardization_fit_their_data():
    torch.manual_seed(7)
    x = torch.randn(400, 2, 2, 2, dtype=torch.float64) * torch.tensor([1.0, 3.0]).view(1, 2, 1, 1) + 2
    matrix, mean, inverse = whitening(x, eps=0.0)
    u = (x.reshape(400, -1) - mean.reshape(-1)) @ matrix.T
    torch.testing.assert_close(torch.cov(u.T), torch.eye(8, dtype=torch.float64), rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(matrix @ inverse, torch.eye(8, dtype=torch.float64), rtol=1e-8, atol=1e-8)
    # fewer examples than features: the regularised ZCA is still an exact inverse pair
    few = torch.randn(5, 2, 2, 2, dtype=torch.float64)
    matrix, mean, inverse = whitening(few, eps=0.1)
    torch.testing.assert_close(matrix @ inverse, torch.eye(8, dtype=torch.float64), rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(matrix, matrix.T)
    centred = few.reshape(5, -1) - few.reshape(5, -1).mean(0)
    cov = centred.T @ centred / 4
    regularised = cov + 0.1 * torch.trace(cov) / 8 * torch.eye(8, dtype=torch.float64)
    torch.testing.assert_close(matrix @ regularised @ matrix, torch.eye(8, dtype=torch.float64), rtol=1e-8, atol=1e-8)
    with pytest.raises(ValueError, match="needs eps > 0"):
        whitening(few, eps=0.0)
    diag, mean, inv = standardization(x)
    u = (x.reshape(400, -1) - mean.reshape(-1)) * diag
    torch.testing.assert_close(u.std(0), torch.ones(8, dtype=torch.float64), rtol=1e-6, atol=1e-6)


def test_input_sweep_scales_gradients_by_one_over_c():
    torch.manual_seed(8)
    model = MLP(48, 3, hidden=(8,)).double().eval()
    x = torch.randn(30, 3, 4, 4, dtype=torch.float64)
    out = input_reparametrization_sweep(model, x, x, [0.1, 10.0])
    rows = out["input"].set_index(["transform", "alpha"])
    assert rows.loc[("scale", 10.0), "mean_grad_norm"] == pytest.approx(rows.loc[("identity", 1.0),
                                                                               "mean_grad_norm"] / 10)
    assert rows.loc[("scale", 0.1), "ratio_min"] == pytest.approx(10.0)
    assert out["input"]["max_output_diff"].max() < 1e-10
    assert set(out["examples"]["transform"]) == {"identity", "standardize", "whiten"}
    assert -1 <= rows.loc[("whiten", 1.0), "rank_correlation"] <= 1


def test_ball_sharpness_one_unit_step_is_the_loss_along_the_gradient():
    torch.manual_seed(9)
    model = nn.Linear(5, 1).double()
    x, y = torch.randn(20, 5, dtype=torch.float64), torch.randn(20, dtype=torch.float64)

    def mse(out, target):
        return ((out[:, 0] - target) ** 2).mean()

    eps = 0.05
    op = HessianOperator(model, (x, y), mse)
    base, g = op.loss_and_grad()
    along, _ = op.loss_and_grad(eps * g / g.norm())
    sharp = epsilon_sharpness(model, (x, y), eps, mse, steps=1, step_size=1.0, region="ball")
    assert sharp == pytest.approx((along - base) / (1 + base) * 100, rel=1e-10)
    assert epsilon_sharpness(model, (x, y), 0.0, mse, region="ball") == 0.0
    with pytest.raises(ValueError, match="region must be one of box, ball"):
        epsilon_sharpness(model, (x, y), eps, mse, region="cube")


def test_public_names():
    assert lossland.alpha_scale is alpha_scale and lossland.weight_normalize is weight_normalize
    assert lossland.reparametrization_sweep is reparametrization_sweep
