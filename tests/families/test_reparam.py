"""The reparam family (dinh2017): its checks, runs, jobs, files and tables."""

import copy

import pandas as pd
import pytest
import yaml
from conftest import ROOT

from lossland import reparam as engine
from lossland.pipeline import config as C
from lossland.pipeline import families as F
from lossland.pipeline.families import reparam


@pytest.fixture(scope="module")
def default_config():
    return C.check_config(yaml.safe_load((ROOT / "config.yaml").read_text()), C.load_schema())


def _problems(config, edit):
    cfg = copy.deepcopy(config)
    edit(cfg)
    return reparam.check(cfg)


def test_default_config_passes_and_shares_the_bn_run(default_config):
    assert reparam.check(default_config) == []
    runs = F.run_table(default_config)
    own = reparam.section_runs(default_config, runs)
    assert own == ["relu-mlp_sgd-lr0.1_init0", "nin_sgd-lr0.1_init0"]
    # nin/sgd is also the optimizer study's run: one entry in the run table, trained once
    assert list(runs).count("nin_sgd-lr0.1_init0") == 1


def test_transforms_per_model(default_config):
    runs = F.run_table(default_config)
    assert reparam.sweeps(default_config, runs) == [
        ("relu-mlp_sgd-lr0.1_init0", "alpha_scale", "0-1"), ("relu-mlp_sgd-lr0.1_init0", "alpha_scale", "1-2"),
        ("relu-mlp_sgd-lr0.1_init0", "weight_norm", "all"), ("nin_sgd-lr0.1_init0", "bn_scale", "0")]
    files = reparam.job_files(default_config, runs)
    assert files["sweep"][0] == "results/reparam/relu-mlp_sgd-lr0.1_init0/epoch4/alpha_scale_0-1_sweep.parquet"
    assert files["input_examples"][1] == "results/reparam/nin_sgd-lr0.1_init0/epoch4/input_examples.parquet"
    assert reparam.tables(default_config) == list(reparam.TABLES)
    assert {"dinh_alpha_scale", "dinh_reparametrizations"} <= set(F.drawn_figures(default_config))


def test_settings_split_by_job_so_that_edits_rerun_only_their_jobs(default_config):
    sweep, inputs = reparam.job_settings(default_config, "sweep"), reparam.job_settings(default_config, "input")
    assert sweep["alphas"] == pytest.approx([1e-3, 10 ** -1.5, 1.0, 10 ** 1.5, 1000.0])
    assert "settings" in sweep and "settings" not in inputs and "input" in inputs and "input" not in sweep


def test_layer_tags_round_trip():
    for transform, layers in (("alpha_scale", [2, 3]), ("bn_scale", 4), ("weight_norm", None)):
        tag = reparam.layers_tag(transform, layers)
        assert reparam.parse_layers(transform, tag) == layers
    assert reparam.TRANSFORMS == engine.TRANSFORMS


def test_checks_name_the_key_and_the_allowed_values(default_config):
    out = _problems(default_config, lambda c: c["reparam"].update(alpha_scale=[[0, 2]]))
    assert len(out) == 1 and out[0].startswith("reparam.alpha_scale[0]: [0, 2] for model relu-mlp")
    assert out[0].endswith("allowed: [0, 1], [1, 2]")
    out = _problems(default_config, lambda c: c["reparam"].update(bn_scale=[9]))
    assert out[0].startswith("reparam.bn_scale[0]: 9 for model nin (9 Linear/Conv layers): layer index 9 is out")
    assert out[0].endswith("allowed: 0, 1, 2, 3, 4, 5, 6, 7, 8")
    out = _problems(default_config, lambda c: c["reparam"].update(models=["nin"]))
    assert out == ["reparam.alpha_scale: no model of reparam.models is without BatchNorm; allowed: [] or a model "
                   "with batch_norm: false"]
    assert _problems(default_config, lambda c: c["reparam"].update(models=["nin"], alpha_scale=[])) == []
    out = _problems(default_config, lambda c: c["reparam"].update(epoch=3, training={"checkpoint_every": 2}))
    assert out == ["reparam.epoch: epoch 3 is not saved by reparam's runs; allowed: 0, 2, 4 "
                   "(see training.checkpoint_every)"]
    out = _problems(default_config, lambda c: c["reparam"].update(models=["relu-mlp", "resnet"]))
    assert out[0].startswith("reparam.models: model 'resnet' is not defined; allowed (the defined models): ")
    out = _problems(default_config, lambda c: c["reparam"]["settings"].update(trace_probes=1))
    assert out == ["reparam.settings.trace_probes: 1 is too few for deflated; allowed: 2 or more"]


def test_schema_refuses_bad_values(default_config):
    schema = C.load_schema()
    for edit, key in ((lambda r: r.update(input=["blur"]), "reparam.input"),
                      (lambda r: r.update(alpha_scale=[[0]]), "reparam.alpha_scale"),
                      (lambda r: r["settings"].update(ball=0.1), "reparam.settings"),
                      (lambda r: r.update(log10_alpha={"start": -3, "stop": 3}), "reparam.log10_alpha")):
        raw = yaml.safe_load((ROOT / "config.yaml").read_text())
        edit(raw["reparam"])
        with pytest.raises(C.ConfigError, match=key.replace(".", r"\.")):
            C.check_config(raw, schema)


def test_spread_table():
    sweep = pd.DataFrame({
        "run": "r", "model": "m", "transform": "alpha_scale", "layers": "0-1", "scaled": "a, b",
        "alpha": [0.1, 1.0, 10.0], "top_eigenvalue": [100.0, 1.0, 50.0], "trace": [-20.0, 2.0, 4.0],
        "epsilon_sharpness": [1.0, 1.0, 1.0], "ball_sharpness": [float("nan")] * 3, "test_loss": [2.0, 2.0, 2.0],
        "max_output_diff": [1e-7, 0.0, 2e-7], "rel_output_diff": [1e-8, 0.0, 3e-8]})
    out = reparam.spread_table(sweep).set_index("measure")
    assert out.loc["top_eigenvalue", "spread"] == 100.0
    assert out.loc["trace", "spread"] == 10.0 and out.loc["trace", "sign_changes"]
    assert "ball_sharpness" not in out.index
    assert (out["max_output_diff"] == 2e-7).all() and (out["rel_output_diff"] == 3e-8).all()
