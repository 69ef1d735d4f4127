import pytest
import torch

from lossland.optim import ALGORITHMS, hyper_parameters, learning_rate, make_optimizer


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_every_algorithm_builds_and_steps(algorithm):
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = make_optimizer([w], {"algorithm": algorithm, "lr": 0.1})
    assert isinstance(opt, ALGORITHMS[algorithm])
    (w ** 2).sum().backward()
    before = w.detach().clone()
    opt.step()
    assert (w.detach().abs() < before.abs()).all()  # a step toward the minimum at 0


def test_sgd_momentum_step_is_the_textbook_update():
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = make_optimizer([w], {"algorithm": "sgd", "lr": 0.1, "momentum": 0.9})
    for _ in range(2):
        opt.zero_grad()
        (0.5 * w ** 2).sum().backward()
        opt.step()
    # v1 = g0 = 1, w1 = 0.9; v2 = 0.9*1 + 0.9 = 1.8, w2 = 0.9 - 0.18 = 0.72
    assert torch.allclose(w.detach(), torch.tensor([0.72]))


def test_config_lists_become_tuples_and_unknown_keys_are_named():
    w = torch.nn.Parameter(torch.zeros(1))
    opt = make_optimizer([w], {"algorithm": "adam", "lr": 1e-3, "betas": [0.8, 0.9]})
    assert opt.param_groups[0]["betas"] == (0.8, 0.9)
    with pytest.raises(ValueError, match=r"no hyper-parameter momentum; allowed: lr, betas"):
        make_optimizer([w], {"algorithm": "adam", "momentum": 0.9})
    with pytest.raises(ValueError, match="allowed: sgd, adagrad"):
        make_optimizer([w], {"algorithm": "lbfgs"})


def test_learning_rate_defaults():
    assert learning_rate({"algorithm": "adadelta"}) == 1.0
    assert learning_rate({"algorithm": "sgd", "lr": 0.2}) == 0.2
    assert "momentum" in hyper_parameters("sgd") and "foreach" not in hyper_parameters("sgd")


# --- RK2 (im2016 appendix A.3) -------------------------------------------------------

from lossland.optim import RK2, RK2_METHODS  # noqa: E402


def _rk2_steps(theta0, grad, spec, steps=1):
    """Run ``steps`` steps of the optimizer of ``spec`` on a loss whose gradient is ``grad(θ)``."""
    w = torch.nn.Parameter(theta0.clone())
    opt = make_optimizer([w], spec)

    def closure():
        opt.zero_grad()
        g = grad(w.detach())
        # a loss whose gradient at w is exactly g(w): <w, g(w)> with g treated as constant
        loss = (w * g).sum()
        loss.backward()
        return loss

    for _ in range(steps):
        if getattr(opt, "needs_closure", False):
            opt.step(closure)
        else:
            closure()
            opt.step()
    return w.detach()


@pytest.mark.parametrize("method", sorted(RK2_METHODS))
def test_rk2_step_on_a_quadratic_is_the_closed_form(method):
    A = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    theta = torch.tensor([1.0, -1.0], dtype=torch.float64)
    h = 0.1
    got = _rk2_steps(theta, lambda t: A @ t, {"algorithm": "rk2", "method": method, "base": "sgd", "lr": h})
    # every explicit RK2 method integrates the linear flow θ' = −Aθ as (I − hA + h²A²/2)θ
    want = (torch.eye(2, dtype=torch.float64) - h * A + h * h / 2 * A @ A) @ theta
    assert torch.allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("method", sorted(RK2_METHODS))
def test_rk2_gradient_is_a1_k1_plus_a2_k2_on_a_nonlinear_loss(method):
    a1, a2, q = RK2_METHODS[method]
    theta = torch.tensor([1.5, -0.7], dtype=torch.float64)
    h = 0.05
    grad = lambda t: t ** 3  # noqa: E731  (loss Σθ⁴/4)
    k1 = grad(theta)
    k2 = grad(theta - q * h * k1)
    want = theta - h * (a1 * k1 + a2 * k2)
    got = _rk2_steps(theta, grad, {"algorithm": "rk2", "method": method, "base": "sgd", "lr": h})
    assert torch.allclose(got, want, atol=1e-12)


def test_rk2_feeds_adam_the_rk2_gradient():
    theta = torch.tensor([1.5, -0.7, 0.3], dtype=torch.float64)
    h = 0.01
    grad = lambda t: t ** 3 + t  # noqa: E731
    got = _rk2_steps(theta, grad, {"algorithm": "rk2", "method": "heun", "base": "adam", "lr": h}, steps=3)
    # reference: torch's Adam fed the Heun gradient by hand
    w = torch.nn.Parameter(theta.clone())
    adam = torch.optim.Adam([w], lr=h)
    for _ in range(3):
        t = w.detach()
        k1 = grad(t)
        k2 = grad(t - h * k1)
        w.grad = 0.5 * (k1 + k2)
        adam.step()
    assert torch.allclose(got, w.detach(), atol=1e-12)


def _flow_error(spec_for_h, n_steps):
    """Error at T=1 of integrating θ' = −Aθ with ``n_steps`` optimizer steps of size 1/n."""
    A = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    theta0 = torch.tensor([1.0, 1.0], dtype=torch.float64)
    exact = torch.linalg.matrix_exp(-A) @ theta0
    got = _rk2_steps(theta0, lambda t: A @ t, spec_for_h(1.0 / n_steps), steps=n_steps)
    return float(torch.linalg.norm(got - exact))


@pytest.mark.parametrize("method", sorted(RK2_METHODS))
def test_rk2_is_second_order_where_sgd_is_first_order(method):
    import math

    rk2 = [_flow_error(lambda h: {"algorithm": "rk2", "method": method, "base": "sgd", "lr": h}, n)
           for n in (40, 80, 160)]
    sgd = [_flow_error(lambda h: {"algorithm": "sgd", "lr": h}, n) for n in (40, 80, 160)]
    rk2_order = [math.log2(a / b) for a, b in zip(rk2, rk2[1:])]
    sgd_order = [math.log2(a / b) for a, b in zip(sgd, sgd[1:])]
    assert all(abs(o - 2.0) < 0.1 for o in rk2_order), rk2_order   # error ∝ h²
    assert all(abs(o - 1.0) < 0.1 for o in sgd_order), sgd_order   # error ∝ h
    assert rk2[-1] < sgd[-1] / 50


def test_rk2_spec_checks_and_state_dict_round_trip():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="unknown RK2 method 'rk4'; allowed: midpoint, heun, ralston"):
        make_optimizer([w], {"algorithm": "rk2", "method": "rk4"})
    with pytest.raises(ValueError, match="has no hyper-parameter momentum"):
        make_optimizer([w], {"algorithm": "rk2", "base": "adam", "momentum": 0.9})
    opt = make_optimizer([w], {"algorithm": "rk2", "method": "ralston", "base": "adam", "lr": 0.1, "betas": [0.8, 0.9]})
    assert isinstance(opt, RK2) and opt.param_groups[0]["betas"] == (0.8, 0.9)
    with pytest.raises(ValueError, match="needs a closure"):
        opt.step(None)

    def closure():
        opt.zero_grad()
        loss = (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    state = opt.state_dict()
    w2 = torch.nn.Parameter(w.detach().clone())
    opt2 = make_optimizer([w2], {"algorithm": "rk2", "method": "ralston", "base": "adam", "lr": 0.1, "betas": [0.8, 0.9]})
    opt2.load_state_dict(state)
    assert opt2.state[w2]["step"] == 1
    assert learning_rate({"algorithm": "rk2", "base": "adadelta"}) == 1.0
