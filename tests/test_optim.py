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
