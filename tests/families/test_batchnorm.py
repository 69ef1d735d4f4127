"""The batchnorm family (im2016 Table 2 / Fig 8): its config check, runs shared with the other studies,
one line job against direct evaluation, the summary on lines of known shape, and the findings on
hand-made summaries."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from tiny import config_problems as _problems

import lossland
from lossland.models import has_batch_norm
from lossland.pipeline import findings as FD
from lossland.pipeline.families import batchnorm as bn


def test_runs_cover_every_model_optimizer_and_seed_and_share_the_other_studies(config):
    from lossland.pipeline.families import run_table

    specs = bn.section_specs(config)
    assert len(specs) == 2 * 2 * 2 + 1 * 2 * 2
    assert {"mlp_sgd-lr0.1_init0", "mlp_adam-lr0.01_init0", "mlp-bn_sgd-lr0.1_init1",
            "lstm_adam-lr0.01_init1"} <= {s["run"] for s in specs}
    table = run_table(config)
    assert all(s["run"] in table for s in specs)
    # the optimizer study's run is the same run (one training), whichever section asked first
    assert table["mlp_sgd-lr0.1_init0"]["dataset"] == "tiny"
    lstm = [s for s in specs if s["model"] == "lstm"]
    assert {s["training"]["batch_size"] for s in lstm} == {20}
    assert {s["data_seed"] for s in specs} == {0}
    assert set(bn.groups(config)) == {(a, m, s) for a, ms in (("mlp", ("mlp-bn", "mlp")), ("lstm", ("lstm",)))
                                      for m in ms for s in (0, 1)}


def test_batch_norm_flags():
    assert has_batch_norm({"arch": "nin"}) and not has_batch_norm({"arch": "nin", "batch_norm": False})
    assert not has_batch_norm({"arch": "mlp"}) and has_batch_norm({"arch": "mlp", "batch_norm": True})
    assert not has_batch_norm({"arch": "lstm"})


def test_valid_config_passes_and_defaults_fill_in(config):
    assert bn.check(config) == []
    cfg = config["bn_study"]
    assert cfg["splits"] == ["train"] and cfg["bn"] == "stored" and cfg["bump_tolerance"] == 0.01
    assert bn.tables(config) == list(bn.TABLES)


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c["bn_study"]["architectures"]["mlp"].update(models=["mlp", "mlp-n1"]),
     "bn_study.architectures.mlp.models: mlp, mlp-n1; allowed: one model, or two of which exactly one has BatchNorm"),
    (lambda c: c["bn_study"]["architectures"]["lstm"].update(dataset="tiny"),
     "bn_study.architectures.lstm.models: lstm (arch lstm) does not fit data set tiny"),
    (lambda c: c["bn_study"]["architectures"]["mlp"].update(dataset="text"),
     "bn_study.architectures.mlp.models: mlp-bn (arch mlp) does not fit data set text"),
    (lambda c: c["bn_study"].update(optimizers=["sgd"]),
     "bn_study.architectures.mlp.optimizers: final→final lines need two or more optimizers"),
    (lambda c: c["bn_study"]["architectures"]["lstm"].update(optimizers=["sgd", "nadam"]),
     "bn_study.architectures.lstm.optimizers: optimizer 'nadam' is not defined"),
    (lambda c: c["bn_study"]["architectures"]["mlp"].update(models=["mlp-bn", "mlpx"]),
     "bn_study.architectures.mlp.models: model 'mlpx' is not defined"),
    (lambda c: c["datasets"]["text"].update(image_size=8),
     "datasets.text.image_size: not read by source 'ptb-embedded'"),
    (lambda c: c["datasets"]["tiny"].update(vocab_size=50),
     "datasets.tiny.vocab_size: not read by source 'embedded'"),
    (lambda c: c["models"]["lstm"].update(hidden=[8]),
     "models.lstm.hidden: [8]; allowed for lstm: one integer"),
    (lambda c: c["models"]["lstm"].update(width=2),
     "models.lstm.width: not an option of arch 'lstm'"),
])
def test_bad_configs_get_one_line_naming_the_key(schema, edit, expected):
    problems = _problems(edit, schema)
    assert any(p.startswith(expected) for p in problems), problems


# --------------------------------------------------------------------------- one job


def _tiny_pair():
    torch.manual_seed(0)
    model = lossland.build_model({"arch": "mlp", "hidden": [6], "batch_norm": True}, (3, 4, 4), 3)
    x, y = torch.randn(40, 3, 4, 4), torch.randint(0, 3, (40,))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    finals = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model.train()
        for m in model.modules():  # different weights and BN statistics per "optimizer"
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        with torch.no_grad():
            model(torch.randn(40, 3, 4, 4) * seed)
        finals.append({k: v.clone() for k, v in model.state_dict().items()})
    return model, init, finals, (x, y)


def test_line_job_ends_are_the_models_at_init_and_final(tmp_path):
    model, init, finals, data = _tiny_pair()
    p = {"ids": {"architecture": "mlp", "dataset": "d", "model": "m", "batch_norm": True, "seed": 0},
         "runs": [{"run": "m_sgd", "optimizer": "sgd", "epoch": 2}, {"run": "m_adam", "optimizer": "adam", "epoch": 2}],
         "splits": ["train"], "bn": "stored", "init_final": {"start": 0, "stop": 1, "num": 3},
         "final_final": {"start": 0, "stop": 1, "num": 5}}
    table = bn.evaluate_lines(model, init, finals, {"train": data}, p)
    assert list(table.columns[:12]) == ["kind", "architecture", "dataset", "model", "batch_norm", "seed", "start",
                                        "end", "start_optimizer", "end_optimizer", "alpha", "split"]
    assert table.groupby(["kind", "start", "end"]).size().to_dict() == {
        ("final_final", "m_sgd", "m_adam"): 5, ("init_final", "init", "m_adam"): 3, ("init_final", "init", "m_sgd"): 3}

    def loss_at(state):
        model.load_state_dict(state)
        return lossland.evaluate(model, data)["loss"]

    rows = table.set_index(["kind", "end", "alpha"])["loss"]
    assert rows[("init_final", "m_sgd", 0.0)] == pytest.approx(loss_at(init), rel=1e-5)
    assert rows[("init_final", "m_sgd", 1.0)] == pytest.approx(loss_at(finals[0]), rel=1e-5)
    assert rows[("final_final", "m_adam", 0.0)] == pytest.approx(loss_at(finals[0]), rel=1e-5)
    assert rows[("final_final", "m_adam", 1.0)] == pytest.approx(loss_at(finals[1]), rel=1e-5)
    assert not table["diverged"].any()
    broken = [finals[0], {k: v * math.nan if v.is_floating_point() else v for k, v in finals[1].items()}]
    flagged = bn.evaluate_lines(model, init, broken, {"train": data}, p)
    assert flagged.groupby("end")["diverged"].all().to_dict() == {"m_adam": True, "m_sgd": False}


# --------------------------------------------------------------------------- the summary


ALPHA = np.linspace(0, 1, 21)


def _lines(arch, model, batch_norm, seed, pairs):
    """final→final rows of ``pairs`` = [(start, end, loss along ALPHA)]."""
    rows = []
    for start, end, loss in pairs:
        for a, v in zip(ALPHA, loss):
            rows.append(dict(kind="final_final", architecture=arch, dataset="d", model=model, batch_norm=batch_norm,
                             seed=seed, start=start, end=end, start_optimizer=start, end_optimizer=end, alpha=a,
                             split="train", loss=v, accuracy=0.5, diverged=False))
    return rows


def _metrics(arch, model, batch_norm, finals):
    """last-epoch rows of runs ``finals`` = {(optimizer, seed): train loss}."""
    return [dict(run=f"{model}_{o}_init{s}", architecture=arch, batch_norm=batch_norm, model=model, dataset="d",
                 optimizer=o, seed=s, epoch=4, train_loss=v, test_acc=0.4, diverged=not math.isfinite(v))
            for (o, s), v in finals.items()]


def test_summary_spread_and_shape_of_known_lines():
    one = 1 + np.sin(np.pi * ALPHA)          # one barrier of height 1 above both ends
    three = 1 + 0.5 * np.sin(5 * np.pi * ALPHA)   # three bumps, barrier 0.5
    lines = pd.DataFrame(_lines("a", "a-bn", True, 0, [("s", "m", one)]) + _lines("a", "a-bn", True, 1, [("s", "m", one)])
                         + _lines("a", "a-nobn", False, 0, [("s", "m", three)])
                         + _lines("a", "a-nobn", False, 1, [("s", "m", one)]))
    metrics = pd.DataFrame(
        _metrics("a", "a-bn", True, {("s", 0): 1.0, ("s", 1): 1.2, ("m", 0): 1.0, ("m", 1): 1.0})
        + _metrics("a", "a-nobn", False, {("s", 0): 1.0, ("s", 1): 2.0, ("m", 0): 1.5, ("m", 1): math.nan}))
    summary = bn.summary_table(metrics, lines).set_index("model")
    assert summary.loc["a-bn", "final_loss_spread"] == pytest.approx((0.2 + 0.0) / 2)
    assert summary.loc["a-nobn", "final_loss_spread"] == math.inf   # a diverged run: infinitely worse
    assert summary.loc["a-nobn", "diverged_runs"] == 1 and summary.loc["a-nobn", "inits"] == 2
    assert summary.loc["a-bn", "local_maxima_mean"] == 1 and summary.loc["a-bn", "unimodal_share"] == 1
    assert summary.loc["a-nobn", "local_maxima_mean"] == 2 and summary.loc["a-nobn", "unimodal_share"] == 0.5
    assert summary.loc["a-bn", "barrier_mean"] == pytest.approx(1.0)
    assert summary.loc["a-nobn", "barrier_mean"] == pytest.approx(0.75)
    assert summary.loc["a-bn", "pair_lines"] == 2
    assert math.isnan(summary.loc["a-bn", "final_test_perplexity_mean"])
    assert summary.loc["a-bn", "final_loss_mean"] == pytest.approx(1.05)


def test_a_line_flagged_diverged_has_no_shape_even_with_finite_losses():
    # BatchNorm statistics recomputed over a diverged run's NaN buffers can give finite losses
    one = 1 + np.sin(np.pi * ALPHA)
    lines = pd.DataFrame(_lines("a", "a-bn", True, 0, [("s", "m", one)]) + _lines("a", "a-bn", True, 0, [("s", "x", one)]))
    lines.loc[lines["end"] == "x", "diverged"] = True
    metrics = pd.DataFrame(_metrics("a", "a-bn", True, {("s", 0): 1.0, ("m", 0): 1.0, ("x", 0): 1.0}))
    summary = bn.summary_table(metrics, lines).set_index("model")
    assert summary.loc["a-bn", "pair_lines"] == 2 and summary.loc["a-bn", "local_maxima_mean"] == 1
    lines["diverged"] = True
    summary = bn.summary_table(metrics, lines).set_index("model")
    assert summary[["local_maxima_mean", "unimodal_share", "barrier_mean"]].isna().all(axis=None)


def _summary(rows):
    cols = ["architecture", "model", "batch_norm", "inits", "pair_lines", "final_loss_spread", "local_maxima_mean",
            "barrier_width_mean"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows])


def test_findings_read_the_with_and_without_pairs():
    dep = {f.name: f for f in bn.FINDINGS}
    summary = _summary([("nin", "nin", True, 2, 6, 0.1, 1.0, 0.3), ("nin", "nin-nobn", False, 2, 6, 0.5, 1.5, 0.4),
                        ("vgg", "vgg", True, 2, 6, 0.2, 1.0, 0.2), ("vgg", "vgg-nobn", False, 2, 6, 0.3, 2.0, 0.5),
                        ("lstm", "lstm", False, 2, 6, 0.9, 3.0, 0.5)])
    m = dep["bn_minimum_depends_on_init"].measure({"bn_study_summary": summary}, {})
    assert m.verdict == FD.REPRODUCED and m.value == pytest.approx(0.1)   # the smaller gap: VGG's
    m = dep["bn_final_final_unimodal"].measure({"bn_study_summary": summary}, {})
    assert m.verdict == FD.REPRODUCED and m.value == pytest.approx(0.5)
    summary.loc[summary["model"] == "vgg-nobn", "final_loss_spread"] = 0.1
    m = dep["bn_minimum_depends_on_init"].measure({"bn_study_summary": summary}, {})
    assert m.verdict == FD.NOT_REPRODUCED and m.value == pytest.approx(-0.1)
    only_lstm = summary[summary["architecture"] == "lstm"]
    assert dep["bn_minimum_depends_on_init"].measure({"bn_study_summary": only_lstm}, {}).verdict == FD.NOT_RUN
    one_seed = summary.assign(inits=1)
    assert dep["bn_minimum_depends_on_init"].measure({"bn_study_summary": one_seed}, {}).verdict == FD.NOT_RUN
    diverged = summary.copy()
    diverged.loc[diverged["model"] == "nin-nobn", "local_maxima_mean"] = math.nan
    assert dep["bn_final_final_unimodal"].measure({"bn_study_summary": diverged}, {}).verdict == FD.NOT_REPRODUCED
