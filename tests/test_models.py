import copy
import math

import pytest
import torch
import torch.nn.functional as F
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
    {"arch": "resnet", "depth": 8, "width": 0.5},
    {"arch": "resnet", "depth": 14, "width": 0.25, "batch_norm": False, "skip": False},
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
    with pytest.raises(ValueError, match="allowed: nin, vgg, resnet, mlp"):
        models.build_model({"arch": "densenet"}, (3, 32, 32), 10)
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


# --------------------------------------------------------------------------- CIFAR ResNets


def _resnet(seed=0, **spec):
    return models.create_model({"arch": "resnet", **spec}, (3, 32, 32), 10, seed=seed)


def _trained_looking(model, seed=0):
    """Non-trivial BN statistics and shifts, so that eval-mode comparisons mean something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))
    return model.eval()


@pytest.mark.parametrize("depth, expected", [(20, 269_722), (56, 853_018), (110, 1_727_962)])
def test_resnet_parameter_counts(depth, expected):
    # He et al.'s option-A CIFAR ResNets (parameter-free shortcuts): 0.27 M, 0.85 M, 1.7 M; the
    # same counts as akamaster/pytorch_resnet_cifar10. (272,474 for ResNet-20 is the option-B
    # count, with 1x1 conv + BN projections at the two stage changes: 2,752 more parameters.)
    model = models.build_model({"arch": "resnet", "depth": depth}, (3, 32, 32), 10)
    assert models.count_parameters(model) == expected
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == depth - 1
    names = [n for n, _ in model.named_parameters()]
    assert names[:4] == ["stem.conv.weight", "stem.bn.weight", "stem.bn.bias", "stage1.0.conv1.weight"]
    assert names[-2:] == ["fc.weight", "fc.bias"]


def test_resnet_structure_and_options():
    model = models.build_model({"arch": "resnet", "depth": 14, "width": 0.5}, (1, 28, 28), 7)
    convs = {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    assert [m.out_channels for m in convs.values()] == [8] + [8] * 4 + [16] * 4 + [32] * 4
    assert [n for n, m in convs.items() if m.stride == (2, 2)] == ["stage2.0.conv1", "stage3.0.conv1"]
    assert all(m.bias is None for m in convs.values())
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 7)
    plain = models.build_model({"arch": "resnet", "depth": 8, "batch_norm": False}, (3, 32, 32), 10)
    assert _count(plain, nn.modules.batchnorm._BatchNorm) == 0
    assert all(m.bias is not None for m in plain.modules() if isinstance(m, nn.Conv2d))
    # the default init is Kaiming (the net has nn.ReLU modules): conv weights with std sqrt(2 / fan_in)
    net = _resnet(depth=20)
    w = net.stage3[1].conv2.weight
    assert abs(w.std().item() - math.sqrt(2 / (64 * 9))) < 0.003
    kaiming = _resnet(depth=20, init={"scheme": "kaiming"})
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), kaiming.state_dict().values()))
    for scheme in models.INIT_SCHEMES:
        models.init_weights(net, scheme)
        assert all(torch.isfinite(p).all() for p in net.parameters())


@pytest.mark.parametrize("depth", [0, 7, 9, 21, 51, 56.0])
def test_resnet_bad_depth_raises(depth):
    with pytest.raises(ValueError, match=r"ResNet depth must be 6n\+2.*8, 14, 20"):
        models.build_model({"arch": "resnet", "depth": depth}, (3, 32, 32), 10)


def test_resnet_bad_depth_is_a_config_problem():
    from lossland.pipeline.config import cross_check, validate_schema

    config = {"datasets": {"d": {"source": "embedded"}}, "optimizers": {"sgd": {"algorithm": "sgd", "lr": 0.1}},
              "models": {"r": {"arch": "resnet", "depth": 21}, "ok": {"arch": "resnet", "depth": 56, "skip": False},
                         "n": {"arch": "nin", "skip": False}}}
    problems = cross_check(validate_schema(config))
    assert "models.r.depth: 21 is not allowed for resnet; allowed values: 6n+2 for n >= 1 " \
           "(8, 14, 20, 32, 44, 56, 110, ...)" in problems
    assert any(p.startswith("models.n.skip: not an option of arch 'nin'") for p in problems)
    assert not any(p.startswith("models.ok") for p in problems)


def _manual_forward(model, x, add):
    """ResNet's eval-mode forward written out with torch.nn.functional, reading only the
    state dict: the option-A shortcut added after each block's second BN where ``add``."""
    sd = model.state_dict()

    def conv(h, name, stride=1):
        return F.conv2d(h, sd[f"{name}.weight"], sd.get(f"{name}.bias"), stride, 1)

    def bn(h, name):
        return F.batch_norm(h, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"],
                            sd[f"{name}.bias"], False, 0.0, 1e-5)

    h = F.relu(bn(conv(x, "stem.conv"), "stem.bn"))
    for s in (1, 2, 3):
        n = sum(1 for k in sd if k.startswith(f"stage{s}.") and k.endswith("conv1.weight"))
        for i in range(n):
            p = f"stage{s}.{i}"
            stride = 2 if s > 1 and i == 0 else 1
            out = F.relu(bn(conv(h, f"{p}.conv1", stride), f"{p}.bn1"))
            out = bn(conv(out, f"{p}.conv2"), f"{p}.bn2")
            if add:
                short = h[:, :, ::stride, ::stride]
                extra = out.shape[1] - short.shape[1]
                if extra:
                    short = torch.cat([short, short.new_zeros(short.shape[0], extra, *short.shape[2:])], 1)
                out = out + short
            h = F.relu(out)
    return F.linear(h.mean((2, 3)), sd["fc.weight"], sd["fc.bias"])


def test_resnet_skip_and_noshort_differ_only_by_the_additions():
    skip = _trained_looking(_resnet(seed=5, depth=14, width=0.5))
    noshort = _trained_looking(_resnet(seed=5, depth=14, width=0.5, skip=False))
    a, b = skip.state_dict(), noshort.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        out_skip, out_noshort = skip(x), noshort(x)
        torch.testing.assert_close(out_skip, _manual_forward(skip, x, add=True), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(out_noshort, _manual_forward(skip, x, add=False), rtol=1e-4, atol=1e-5)
    assert (out_skip - out_noshort).abs().max() > 1e-2


@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("train", [True, False])
def test_resnet_hessian_vector_products(skip, train):
    """Double backward through the net (BN in batch or running statistics), via
    torch.func.functional_call: H v is finite, non-zero and symmetric (u·Hv = v·Hu)."""
    model = _trained_looking(_resnet(seed=1, depth=8, width=0.5, skip=skip)).train(train)
    params = {k: p.detach() for k, p in model.named_parameters()}
    buffers = {k: b.clone() for k, b in model.named_buffers()}
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    g = torch.Generator().manual_seed(0)
    u, v = ({k: torch.randn(p.shape, generator=g) for k, p in params.items()} for _ in range(2))

    def hvp(vec):
        ps = {k: p.clone().requires_grad_(True) for k, p in params.items()}
        out = torch.func.functional_call(model, {**ps, **{k: b.clone() for k, b in buffers.items()}}, (x,))
        grads = torch.autograd.grad(F.cross_entropy(out, y), list(ps.values()), create_graph=True)
        dot = sum((gr * vec[k]).sum() for gr, k in zip(grads, ps))
        return dict(zip(ps, torch.autograd.grad(dot, list(ps.values()))))

    hu, hv = hvp(u), hvp(v)
    assert all(torch.isfinite(t).all() for t in hv.values()) and any(t.abs().sum() > 0 for t in hv.values())
    u_hv = sum((u[k] * hv[k]).sum() for k in u)
    v_hu = sum((v[k] * hu[k]).sum() for k in v)
    assert torch.isclose(u_hv, v_hu, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("skip", [True, False])
def test_resnet_channels_last_matches_contiguous(skip):
    model = _trained_looking(_resnet(seed=2, depth=8, width=0.5, skip=skip))
    x = torch.randn(4, 3, 32, 32)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = model(x)
        torch.testing.assert_close(model(x_cl), ref, rtol=1e-4, atol=1e-5)
        model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
        torch.testing.assert_close(model_cl(x_cl), ref, rtol=1e-4, atol=1e-5)
        # and the landscape engines' BN-folded (and on the CPU ReLU-fused) copy computes the same
        from lossland.fold import folded_copy

        folded = folded_copy(model)
        assert folded is not None and len(folded.pairs) == 1 + 2 * 3
        folded.update(model.state_dict())
        torch.testing.assert_close(folded.module(x_cl), ref, rtol=1e-4, atol=1e-4)
