"""The benchmark zoo: models as a user passes them, not as the workflow builds them.

Every model is in PyTorch's default (contiguous, NCHW) memory format, at seed 0,
in eval mode, with its all-zero 1-D parameters (biases, BN shifts) set to small
random values (``loss-landscapes``' filter normalisation divides by their norm).
Two are the workflow's own architectures; three are written here the way a
user writes a model, with nothing that our engines know about:

==========  ==================================================================
``nin-bn``  lossland's NIN at width ¼ with BatchNorm (the workflow's model)
``vgg``     lossland's VGG-11 at width ¼ without BatchNorm
``cnn``     conv–ReLU–max-pool ×3 (16, 32, 64 channels), global average pool,
            linear: 24 k parameters, no BatchNorm (the model of issue 27)
``mlp``     3072 → 512 → 512 → 10 with ReLU, no BatchNorm
``resnet``  a CIFAR ResNet-8 (He et al. basic blocks with BatchNorm and
            identity / 1×1 shortcuts, 16-32-64 channels) written from scratch
==========  ==================================================================

Three more names, not in :data:`ZOO` (the scripts' default model list), are
lossland's own CIFAR ResNets (``arch: resnet``, width 1, BatchNorm, option-A
shortcuts), Li et al. 2018's models:

====================  ==========================================================
``resnet20``          ResNet-20, 0.27 M parameters
``resnet56``          ResNet-56, 0.85 M parameters
``resnet56-noshort``  ResNet-56 with every skip connection removed (``skip: false``)
====================  ==========================================================
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import lossland

ZOO = ("nin-bn", "vgg", "cnn", "mlp", "resnet")
RESNETS = {"resnet20": {"arch": "resnet", "depth": 20}, "resnet56": {"arch": "resnet", "depth": 56},
           "resnet56-noshort": {"arch": "resnet", "depth": 56, "skip": False}}


class PlainCNN(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        return self.fc(x.mean((2, 3)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet8(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.layers = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2))
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn(self.conv(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def build(name: str, input_shape=(3, 32, 32), num_classes: int = 10) -> nn.Module:
    """The zoo's model ``name`` (one of :data:`ZOO` or :data:`RESNETS`), or any ``arch:size`` spec of
    ``lossland.create_model`` (``nin:0.25``, ``vgg:0.5``, ``mlp:256``)."""
    torch.manual_seed(0)
    if name == "nin-bn":
        model = lossland.create_model({"arch": "nin", "width": 0.25}, input_shape, num_classes, seed=0)
    elif name == "vgg":
        model = lossland.create_model({"arch": "vgg", "width": 0.25, "depth": 11, "batch_norm": False},
                                      input_shape, num_classes, seed=0)
    elif name == "cnn":
        model = PlainCNN(num_classes)
    elif name == "mlp":
        model = lossland.create_model({"arch": "mlp", "hidden": [512, 512]}, input_shape, num_classes, seed=0)
    elif name == "resnet":
        model = ResNet8(num_classes)
    elif name in RESNETS:
        model = lossland.create_model(RESNETS[name], input_shape, num_classes, seed=0)
    else:
        from _common import model_spec
        model = lossland.create_model(model_spec(name), input_shape, num_classes, seed=0)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() <= 1 and not p.any():
                p.copy_(0.01 * torch.randn(p.shape, generator=g))
        for m in model.modules():  # BN statistics of a trained-looking network, not the identity
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return model.eval()
