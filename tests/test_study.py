import copy
from pathlib import Path

import pytest
import yaml

from lossland import study
from conftest import ROOT, SCHEMA


def _config(path="config.yaml"):
    return yaml.safe_load((ROOT / path).read_text())


@pytest.fixture(scope="module")
def schema():
    return study.load_schema(SCHEMA)


@pytest.mark.parametrize("path", ["config.yaml", "config/cifar10.yaml", "config/paper.yaml"])
def test_presets_are_valid(path, schema):
    cfg = study.check_config(_config(path), schema)
    runs = study.runs(cfg)
    assert runs and all(r["training"]["epochs"] >= 1 for r in runs.values())


def test_paper_preset_has_the_documents_settings(schema):
    cfg = study.check_config(_config("config/paper.yaml"), schema)
    run = next(iter(study.runs(cfg).values()))
    assert run["training"]["epochs"] == 200 and run["training"]["batch_size"] == 128
    assert set(cfg["optimizer_study"]["models"]) == {"nin", "vgg"}
    assert {"sgd", "sgdm", "rmsprop", "adadelta", "adam"} <= set(cfg["optimizer_study"]["optimizers"])


def test_defaults_are_filled(schema):
    cfg = study.check_config(_config(), schema)
    assert cfg["device"] == "cpu" and cfg["threads"] == 1
    assert cfg["datasets"]["cifar10-small"]["val_size"] == 0
    assert cfg["optimizer_study"]["data_seed"] == 0


def test_run_table_shares_inits_and_batches(schema):
    cfg = study.check_config(_config(), schema)
    runs = study.runs(cfg)
    assert "nin_sgd_init0" in runs and "nin_adam_init1" in runs
    assert len(runs) == len(cfg["optimizer_study"]["optimizers"]) * len(cfg["optimizer_study"]["init_seeds"])
    assert {r["data_seed"] for r in runs.values()} == {0}
    assert study.inits(runs) == {("cifar10-small", "nin", 0), ("cifar10-small", "nin", 1)}
    sgd = runs["nin_sgd_init0"]
    assert sgd["optimizer_spec"] == {"algorithm": "sgd", "lr": 0.1}
    assert sgd["training"]["checkpoint_epochs"] == [1, 2, 3, 4, 5]


def test_changing_one_learning_rate_changes_only_that_optimizers_runs(schema):
    cfg = _config()
    before = study.runs(study.check_config(cfg, schema))
    cfg2 = copy.deepcopy(cfg)
    cfg2["optimizers"]["adam"]["lr"] = 0.005
    after = study.runs(study.check_config(cfg2, schema))
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"nin_adam_init0", "nin_adam_init1"}


def _error(cfg, schema):
    with pytest.raises(study.ConfigError) as info:
        study.check_config(cfg, schema)
    return str(info.value)


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c.update(device="gpu"), "device: 'gpu' is not allowed; allowed values: 'cpu', 'cuda'"),
    (lambda c: c["optimizers"]["adam"].update(algorithm="adamm"),
     "optimizers.adam.algorithm: 'adamm' is not allowed; allowed values: 'sgd', 'adagrad'"),
    (lambda c: c["datasets"]["cifar10-small"].update(source="hdf5"),
     "datasets.cifar10-small.source: 'hdf5' is not allowed; allowed values: 'embedded', 'imagefolder'"),
    (lambda c: c["models"]["nin"].update(arch="resnet"),
     "models.nin.arch: 'resnet' is not allowed; allowed values: 'nin', 'vgg', 'mlp'"),
    (lambda c: c["training"].update(epochs=0), "training.epochs: 0 is less than the minimum of 1"),
    (lambda c: c["training"].update(epochz=3), "training: unknown key(s) 'epochz'; allowed keys: augment, batch_size"),
    (lambda c: c["optimizer_study"].update(optimizers=["sgd", "sgdx"]),
     "optimizer_study.optimizers: optimizer 'sgdx' is not defined; defined optimizers: adadelta, adagrad, adam"),
    (lambda c: c["optimizer_study"].update(dataset="imagenet"),
     "optimizer_study.dataset: dataset 'imagenet' is not defined; defined datasets: cifar10-small"),
    (lambda c: c["optimizers"]["sgd"].update(betas=[0.9, 0.99]),
     "optimizers.sgd: optimizer 'sgd' has no hyper-parameter betas; allowed: lr, momentum"),
    (lambda c: c["models"]["nin"].update(hidden=[10]),
     "models.nin.hidden: not an option of arch 'nin'; allowed keys: arch, batch_norm, depth, dropout, init, width"),
    (lambda c: c["models"]["nin"].update(depth=5), "models.nin.depth: 5 is not allowed for nin; allowed values: 1, 2, 3"),
    (lambda c: c["datasets"]["cifar10-small"].update(source="imagefolder"),
     "datasets.cifar10-small.path: required for source 'imagefolder'"),
    (lambda c: c["training"].update(checkpoint_epochs=[7]),
     "training.checkpoint_epochs: epoch 7 is past the last epoch (5); allowed: 0..5"),
    (lambda c: c["datasets"]["cifar10-small"].update(train_size=0), "datasets.cifar10-small.train_size: 0 is not allowed"),
    (lambda c: c["models"].update({"bad_name": {"arch": "mlp"}}), "models: 'bad_name' does not match"),
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


def test_checkpoint_epochs():
    assert study.checkpoint_epochs({"epochs": 10, "checkpoint_every": 4, "checkpoint_epochs": [1]}) == [1, 4, 8]
    assert study.checkpoint_epochs({"epochs": 10, "checkpoint_every": 0}, extra=[5, 12]) == [5]
