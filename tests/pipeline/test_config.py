"""The config check of the whole registry: the merged schema, defaults, one message per problem."""


import pytest
import yaml
from conftest import ROOT

from lossland.pipeline import config as C
from lossland.pipeline import families as F


def _config(path="config.yaml"):
    return yaml.safe_load((ROOT / path).read_text())


@pytest.fixture(scope="module")
def schema():
    return C.load_schema()


@pytest.mark.parametrize("path", ["config.yaml", "config/cifar10.yaml", "config/paper.yaml"])
def test_presets_are_valid(path, schema):
    cfg = C.check_config(_config(path), schema)
    runs = F.run_table(cfg)
    assert runs and all(r["training"]["epochs"] >= 1 for r in runs.values())


def test_paper_preset_has_the_documents_settings(schema):
    cfg = C.check_config(_config("config/paper.yaml"), schema)
    run = next(iter(F.run_table(cfg).values()))
    assert run["training"]["epochs"] == 200 and run["training"]["batch_size"] == 128
    assert set(cfg["optimizer_study"]["models"]) == {"nin", "vgg"}
    assert {"sgd", "sgdm", "rmsprop", "adadelta", "adam"} <= set(cfg["optimizer_study"]["optimizers"])
    assert cfg["optimizer_study"]["lr_grids"]["sgd"] == [0.2, 0.1, 0.05, 0.01]
    assert cfg["optimizer_study"]["lr_grids"]["adam"] == [0.002, 0.001, 0.0005, 0.0001]
    assert cfg["rk2_study"]["lr_grids"]["heun-sgd"] == [0.4, 0.2, 0.1, 0.02]   # doubled for RK2
    runs = F.run_table(cfg)
    assert "vgg_S50-A150_init0" in runs and runs["vgg_S50-A150_init0"]["prefix_run"] == "vgg_sgd-lr0.1_init0"
    assert {50, 100, 150} <= set(runs["vgg_sgd-lr0.1_init0"]["training"]["checkpoint_epochs"])


def test_defaults_are_filled(schema):
    cfg = C.check_config(_config(), schema)
    assert cfg["device"] == "cpu" and cfg["threads"] == 1
    assert cfg["datasets"]["cifar10-small"]["subset_seed"] == 0
    assert cfg["optimizer_study"]["data_seed"] == 0
    assert cfg["optimizer_study"]["selection"] == {"metric": "val_acc"}
    assert cfg["switch_study"]["at"] == [0.25, 0.5, 0.75]


def _error(cfg, schema):
    with pytest.raises(C.ConfigError) as info:
        C.check_config(cfg, schema)
    return str(info.value)


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c.update(device="gpu"), "device: 'gpu' is not allowed; allowed values: 'cpu', 'cuda'"),
    (lambda c: c["optimizers"]["adam"].update(algorithm="adamm"),
     "optimizers.adam.algorithm: 'adamm' is not allowed; allowed values: 'sgd', 'adagrad'"),
    (lambda c: c["datasets"]["cifar10-small"].update(source="hdf5"),
     "datasets.cifar10-small.source: 'hdf5' is not allowed; allowed values: 'embedded', 'imagefolder'"),
    (lambda c: c["models"]["nin"].update(arch="densenet"),
     "models.nin.arch: 'densenet' is not allowed; allowed values: 'nin', 'vgg', 'resnet', 'mlp'"),
    (lambda c: c["training"].update(epochs=0), "training.epochs: 0 is less than the minimum of 1"),
    (lambda c: c["training"].update(epochz=3), "training: unknown key(s) 'epochz'; allowed keys: augment, batch_size"),
    (lambda c: c["optimizer_study"].update(optimizers=["sgd", "sgdx"]),
     "optimizer_study.optimizers: optimizer 'sgdx' is not defined; allowed (the defined optimizers): adadelta, adagrad, adam"),
    (lambda c: c["optimizer_study"].update(dataset="imagenet"),
     "optimizer_study.dataset: dataset 'imagenet' is not defined; allowed (the defined datasets): cifar10-planes, cifar10-small"),
    (lambda c: c["optimizers"]["sgd"].update(betas=[0.9, 0.99]),
     "optimizers.sgd: optimizer 'sgd' has no hyper-parameter betas; allowed: lr, momentum"),
    (lambda c: c["models"]["nin"].update(hidden=[10]),
     "models.nin.hidden: not an option of arch 'nin'; allowed keys: arch, batch_norm, depth, dropout, init, width"),
    (lambda c: c["models"]["nin"].update(depth=5), "models.nin.depth: 5 is not allowed for nin; allowed values: 1, 2, 3"),
    (lambda c: c["datasets"]["cifar10-small"].update(source="imagefolder"),
     "datasets.cifar10-small.path: required for source 'imagefolder'"),
    (lambda c: c["training"].update(checkpoint_epochs=[7]),
     "training.checkpoint_epochs: epoch 7 is past the last epoch (4) of optimizer_study; allowed: 0..4"),
    (lambda c: c["switch_study"].update(switches=[["sgd", "rk4"]]),
     "switch_study.switches[0]: optimizer 'rk4' is not defined; allowed (the defined optimizers): adadelta"),
    (lambda c: c["switch_study"].update(codes={}),
     "switch_study.codes: optimizers adadelta, adam share the code 'A' in variant names"),
    (lambda c: c["switch_study"].update(at=[0.1]),
     "switch_study.at: a switch at epoch 0 of 4 is outside training; allowed: fractions giving epochs 1..3"),
    (lambda c: c["optimizer_study"]["lr_grids"].update(adadeltaa=[1.0]),
     "optimizer_study.lr_grids.adadeltaa: 'adadeltaa' is not one of the study's optimizers"),
    (lambda c: c["datasets"]["cifar10-small"].update(val_size=0),
     "datasets.cifar10-small.val_size: optimizer_study.lr_grids chooses learning rates on a validation split"),
    (lambda c: c["optimizers"]["heun-sgd"].update(method="rk4"),
     "optimizers.heun-sgd.method: 'rk4' is not allowed; allowed values: 'midpoint', 'heun', 'ralston'"),
    (lambda c: c["optimizer_study"]["selection"].update(metric="test_acc") if "selection" in c["optimizer_study"]
     else c["optimizer_study"].update(selection={"metric": "test_acc"}),
     "optimizer_study.selection.metric: 'test_acc' is not allowed; allowed values: 'val_acc', 'val_loss'"),
    (lambda c: c["hessian"].update(epochs=[0, 7]),
     "hessian.epochs: epoch 7 is not saved by optimizer_study; allowed: 0, 1, 2, 3, 4"),
    (lambda c: c["hessian"].update(optimizers=["lbfgs"]),
     "hessian.optimizers: 'lbfgs' is not one of optimizer_study's optimizers; allowed: sgd, sgdm"),
    (lambda c: c["hessian"].update(study="zhang_study"),
     "hessian.study: 'zhang_study' is not allowed; allowed values: 'optimizer_study'"),
    (lambda c: c["hessian"]["settings"].update(trace_method="lanczos"),
     "hessian.settings.trace_method: 'lanczos' is not allowed; allowed values: 'deflated', 'hutchinson', 'hutch++', 'exact'"),
    (lambda c: c["hessian"]["settings"].update(trace_method="hutch++", trace_probes=2),
     "hessian.settings.trace_probes: 2 is too few for hutch++; allowed: 3 or more"),
    (lambda c: c["hessian"]["settings"].update(trace_method="exact", trace_tol=0.01),
     "hessian.settings.trace_tol: not used by trace_method exact; allowed: null, or trace_method deflated or hutchinson"),
    (lambda c: [c.pop(k) for k in ("optimizer_study", "rk2_study", "init_study", "switch_study", "hessian", "reparam",
                                   "landscape", "curves", "walk", "entropy", "deep_linear", "batch_size",
                                   "architecture", "bn_study")],
     "no section that trains runs is configured; allowed: optimizer_study, rk2_study, init_study, switch_study, reparam, "
     "entropy, deep_linear, batch_size, architecture, bn_study"),
    (lambda c: c["datasets"]["cifar10-small"].update(train_size=0), "datasets.cifar10-small.train_size: 0 is not allowed"),
    (lambda c: c["models"].update({"bad_name": {"arch": "mlp"}}), "models: 'bad_name' does not match"),
    (lambda c: c["landscape"].update(optimizers=["sgd", "rk4"]),
     "landscape.optimizers: 'rk4' is not one of optimizer_study's optimizers; allowed: sgd, sgdm, adagrad"),
    (lambda c: c["landscape"].update(bilinear_optimizers=["sgd", "adam", "adagrad"]),
     "landscape.bilinear_optimizers: the bilinear plane needs exactly 4 optimizers, got 3"),
    (lambda c: c["landscape"].update(study="rk2_study", bilinear_optimizers=["sgd", "adam", "heun-adam", "sgd-x2"],
                                     optimizers=["sgd"], init_seeds=[3]),
     "landscape.init_seeds: 3 is not one of rk2_study's init_seeds; allowed: 0"),
    (lambda c: c["landscape"].update(bn="none"),
     "landscape.bn: 'none' is not allowed; allowed values: 'stored', 'recompute'"),
    (lambda c: c["landscape"].update(kinds=["pca", "contour"]),
     "landscape.kinds[1]: 'contour' is not allowed; allowed values: 'init_final', 'final_final'"),
    (lambda c: c["landscape"]["switching"].update(switches=[["sgd", "rmsprop"]]),
     "landscape.switching.switches: ['sgd', 'rmsprop'] is not one of switch_study.switches"),
    (lambda c: c.pop("switch_study"),
     "landscape.switching.enabled: needs switch_study; allowed: false, or configure switch_study"),
    (lambda c: c["landscape"]["pca"].update(epochs=[0, 4, 7]),
     "landscape.pca.epochs: epoch 7 is not saved by optimizer_study; allowed: 0, 1, 2, 3, 4"),
])
def test_bad_configs_get_one_message_naming_key_and_allowed_values(edit, expected, schema):
    cfg = _config()
    edit(cfg)
    message = _error(cfg, schema)
    assert message.startswith("invalid config:")
    assert expected in message, message


def test_all_problems_are_reported_together(schema):
    cfg = _config()
    cfg["device"] = "tpu"
    cfg["optimizers"]["sgd"]["algorithm"] = "newton"
    message = _error(cfg, schema)
    assert "device:" in message and "optimizers.sgd.algorithm:" in message
