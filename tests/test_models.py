import math

import pytest
import torch
from torch import nn

from lossland import models


def _count(model, kind):
    return sum(isinstance(m, kind) for m in model.modules())


@pytest.mark.parametrize("spec", [
    {"arch": "nin"},
    {"arch": "nin", "width": 0.25, "depth": 2, "batch_norm": False, "dropout": 0.5},
    {"arch": "vgg", "width": 0.125, "depth": 11},
    {"arch": "vgg", "width": 0.125, "depth": 16, "batch_norm": False, "dropout": 0.5, "conv_dropout": 0.4},
    {"arch": "mlp", "hidden": [32, 16]},
])
def test_output_shapes(spec):
    model = models.create_model(spec, (3, 32, 32), 10, seed=0)
    out = model.eval()(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 10)
    assert torch.isfinite(out).all()


def test_nin_structure_follows_cifar_torch():
    full = models.build_model({"arch": "nin"}, (3, 32, 32), 10)
    convs = [m for m in full.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [192, 160, 96, 192, 192, 192, 192, 192, 10]
    assert [c.kernel_size[0] for c in convs] == [5, 1, 1, 5, 1, 1, 3, 1, 1]
    assert _count(full, nn.BatchNorm2d) == 9
    narrow = models.build_model({"arch": "nin", "width": 0.25, "batch_norm": False}, (3, 32, 32), 10)
    convs = [m for m in narrow.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [48, 40, 24, 48, 48, 48, 48, 48, 10]
    assert _count(narrow, nn.BatchNorm2d) == 0 and all(c.bias is not None for c in convs)


def test_vgg16_structure_follows_vgg_bn_drop():
    vgg = models.build_model({"arch": "vgg", "depth": 16, "dropout": 0.5, "conv_dropout": 0.4}, (3, 32, 32), 10)
    convs = [m for m in vgg.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 and convs[-1].out_channels == 512
    assert _count(vgg, nn.MaxPool2d) == 5
    # conv dropout inside blocks (not before a pool) + 2 in the classifier, as vgg_bn_drop.lua
    assert _count(vgg, nn.Dropout) == 8 + 2
    # 14.99M parameters with BN (cifar.torch's vgg_bn_drop has ~15M)
    assert 14.9e6 < models.count_parameters(vgg) < 15.1e6


def test_zhang2018_mlp_has_1320_parameters():
    spec = {"arch": "mlp", "hidden": [10, 10, 10], "activation": "sigmoid", "output_bias": False, "binary": True}
    model = models.create_model(spec, (3, 6, 6), 2)
    assert models.count_parameters(model) == 1320
    assert model(torch.randn(5, 3, 6, 6)).shape == (5, 1)
    with pytest.raises(ValueError, match="2 classes"):
        models.build_model(spec, (3, 6, 6), 10)


def test_bad_arch_and_depth():
    with pytest.raises(ValueError, match="allowed: nin, vgg, mlp"):
        models.build_model({"arch": "resnet"}, (3, 32, 32), 10)
    with pytest.raises(ValueError, match="NIN depth"):
        models.build_model({"arch": "nin", "depth": 4}, (3, 32, 32), 10)
    with pytest.raises(ValueError, match="VGG depth"):
        models.build_model({"arch": "vgg", "depth": 12}, (3, 32, 32), 10)


def test_same_seed_same_weights_other_seed_other_weights():
    spec = {"arch": "nin", "width": 0.125}
    a = models.create_model(spec, (3, 32, 32), 10, seed=3).state_dict()
    b = models.create_model(spec, (3, 32, 32), 10, seed=3).state_dict()
    c = models.create_model(spec, (3, 32, 32), 10, seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point() and a[k].numel() > 1)


def test_seeded_init_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    models.create_model({"arch": "mlp", "hidden": [8]}, (3, 4, 4), 10, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_normal_init_draws_every_weight_and_bias_from_the_distribution():
    spec = {"arch": "nin", "width": 0.5, "batch_norm": True, "init": {"scheme": "normal", "mean": -1.0, "std": 1.0}}
    model = models.create_model(spec, (3, 32, 32), 10, seed=0)
    values = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, nn.Conv2d)])
    assert abs(values.mean().item() + 1.0) < 0.02 and abs(values.std().item() - 1.0) < 0.02
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.equal(bn.weight, torch.ones_like(bn.weight)) for bn in bns)
    spec["init"] = {"scheme": "normal", "mean": -10.0, "std": 0.01}
    model = models.create_model(spec, (3, 32, 32), 10, seed=0)
    values = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, nn.Conv2d)])
    assert abs(values.mean().item() + 10.0) < 1e-3 and abs(values.std().item() - 0.01) < 1e-3


def test_kaiming_and_glorot_scales():
    relu = models.create_model({"arch": "mlp", "hidden": [512, 512]}, (3, 16, 16), 10, seed=0)
    w = relu.net[3].weight  # second hidden layer: fan_in 512
    assert abs(w.std().item() - math.sqrt(2 / 512)) < 0.003
    assert all(torch.count_nonzero(m.bias) == 0 for m in relu.modules() if isinstance(m, nn.Linear))
    sig = models.create_model({"arch": "mlp", "hidden": [512, 512], "activation": "sigmoid"}, (3, 16, 16), 10, seed=0)
    w = sig.net[3].weight  # Glorot uniform: bound sqrt(6 / (fan_in + fan_out))
    assert w.abs().max().item() <= math.sqrt(6 / 1024) + 1e-6
    assert abs(w.std().item() - math.sqrt(2 / 1024)) < 0.002
    with pytest.raises(ValueError, match="allowed: default, kaiming"):
        models.init_weights(relu, "xavier")
