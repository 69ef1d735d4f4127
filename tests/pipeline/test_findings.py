"""The findings: each family's claims measured on tables, with verdicts (lossland.pipeline.findings)."""

import math

import numpy as np
import pandas as pd
import pytest
from tiny import TINY

from lossland.pipeline import config as C
from lossland.pipeline import findings as FD
from lossland.pipeline.families import hessian, im2016, landscape, reparam


@pytest.fixture(scope="module")
def config():
    return C.check_config(TINY)


def _by_name(module, name):
    return next(f for f in module.FINDINGS if f.name == name)


def test_helpers_follow_their_definitions():
    mean, low, high = FD.bootstrap_mean([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and 1.0 <= low < mean < high <= 4.0
    assert math.isnan(FD.bootstrap_mean([3.0])[1]) and FD.bootstrap_mean([3.0])[0] == 3.0
    assert FD.first_crossing([0, 1, 2], [0.0, 1.0, 3.0], 2.0) == pytest.approx(1.5)
    assert math.isnan(FD.first_crossing([0, 1], [0.0, 1.0], 5.0))
    assert FD.barrier([1.0, 2.5, 1.5]) == pytest.approx(1.0)
    assert FD.barrier([1.0, 0.5, 1.5]) == pytest.approx(-1.0)
    assert FD.within_factor(0.3, 0.16) and not FD.within_factor(0.4, 0.16)
    with pytest.raises(ValueError, match="allowed"):
        FD.Measured(1.0, "maybe")


def _final_final(distances, disagreements):
    rows = []
    for k, (d, q) in enumerate(zip(distances, disagreements)):
        for alpha in (0.0, 0.5, 1.0):
            rows.append({"run_a": f"a{k}", "run_b": f"b{k}", "split": "test", "alpha": alpha,
                         "functional_distance": d * alpha, "disagreement": q * alpha})
    return pd.DataFrame(rows)


def test_functional_distance_and_disagreement_against_the_papers_values(config):
    tables = {"landscape_final_final": _final_final([0.1, 0.2, 0.3], [0.5, 0.6, 0.7])}
    dist = _by_name(landscape, "functional_distance").measure(tables, config)
    assert dist.value == pytest.approx(0.2) and dist.verdict == FD.REPRODUCED and dist.low < 0.2 < dist.high
    dis = _by_name(landscape, "label_disagreement").measure(tables, config)
    assert dis.value == pytest.approx(0.6) and dis.verdict == FD.NOT_REPRODUCED


def _distance_line(run, optimizer, loss):
    d = np.linspace(0, 2, len(loss))
    return pd.DataFrame({"run": run, "optimizer": optimizer, "seed": 0, "split": "train", "distance": d,
                         "alpha": d, "loss": loss})


def test_basin_width_is_where_the_loss_first_rises_by_half_a_nat(config):
    # the level final + 0.5 = 1.5 is reached at distance 0.25 by sgd, 0.75 by adam
    sgd = _distance_line("s", "sgd", [1.0, 2.0, 2.0, 3.0, 4.0])
    adam = _distance_line("a", "adam", [1.0, 1.0, 2.0, 3.0, 4.0])
    widths = landscape.basin_widths(pd.concat([sgd, adam]), 0.5)
    assert widths[("s", "sgd", 0)] == pytest.approx(0.25) and widths[("a", "adam", 0)] == pytest.approx(0.75)
    result = _by_name(landscape, "adam_wider_basins").measure(
        {"landscape_distance": pd.concat([sgd, adam])}, config)
    assert result.value == pytest.approx(0.5) and result.verdict == FD.REPRODUCED


def test_switching_needs_a_barrier_on_every_line(config):
    rows = [{"split": "train", "start_label": "sgd only", "end_label": end, "alpha": a, "loss": loss}
            for end, losses in (("S1-A3", [1.0, 1.5, 1.2]), ("S2-A2", [1.0, 0.9, 1.1]))
            for a, loss in zip((0.0, 0.5, 1.0), losses)]
    result = _by_name(landscape, "switching_moves").measure({"landscape_switching": pd.DataFrame(rows)}, config)
    assert result.value == pytest.approx(0.9 - 1.1) and result.verdict == FD.NOT_REPRODUCED


def _metrics(rows):
    return pd.DataFrame([{"epoch": 2, "diverged": False, **r} for r in rows])


def test_distinct_minima_compares_optimizers_with_restarts(config):
    rows = [{"run": f"{o}{s}", "model": "mlp", "optimizer": o, "dist_from_init": base + 0.1 * s}
            for o, base in (("sgd", 1.0), ("adam", 5.0)) for s in (0, 1)]
    result = _by_name(im2016, "distinct_minima").measure({"optimizer_study_chosen_metrics": _metrics(rows)}, config)
    # between: std of the means 1.05 and 5.05 = 2.83; within: 0.0707 -> 40
    assert result.value == pytest.approx(4.0 / np.sqrt(2) / (0.1 / np.sqrt(2))) and result.verdict == FD.REPRODUCED
    one_seed = _metrics([r for r in rows if r["run"].endswith("0")])
    assert _by_name(im2016, "distinct_minima").measure(
        {"optimizer_study_chosen_metrics": one_seed}, config).verdict == FD.NOT_RUN


def test_batchnorm_init_dependence_from_the_configs_models(config):
    cfg = dict(config, models={"bn1": {"batch_norm": True}, "bn2": {"batch_norm": True},
                               "no1": {"batch_norm": False}, "no2": {"batch_norm": False}})
    rows = [{"run": m, "model": m, "train_loss": loss} for m, loss in
            (("bn1", 1.0), ("bn2", 1.1), ("no1", 1.0), ("no2", float("nan")))]
    result = _by_name(im2016, "bn_init_dependence").measure({"init_study_chosen_metrics": _metrics(rows)}, cfg)
    assert result.value == math.inf and result.verdict == FD.REPRODUCED     # a diverged run: infinite spread


def test_spectrum_bulk_and_negative_fraction(config):
    lam = np.linspace(-1, 100, 1011)
    rho = np.where(np.abs(lam) <= 2.0, 1.0, 0.0) + np.where(np.abs(lam - 90) <= 0.5, 0.01, 0.0)
    density = pd.DataFrame({"run": "r", "epoch": 4, "eigenvalue": lam, "density": rho})
    summary = pd.DataFrame({"run": "r", "epoch": [0, 4], "top_eigenvalue": [90.0, 90.0],
                            "negative_fraction": [0.2, 0.05]})
    tables = {"hessian_density": density, "hessian_summary": summary}
    bulk = _by_name(hessian, "bulk_near_zero").measure(tables, config)
    assert bulk.value == pytest.approx(3.0 / 3.01, abs=0.01) and bulk.verdict == FD.REPRODUCED
    neg = _by_name(hessian, "negative_fraction_falls").measure(tables, config)
    assert neg.value == pytest.approx(-0.15) and neg.verdict == FD.REPRODUCED


def test_sharpness_orders_of_magnitude(config):
    spread = pd.DataFrame({"transform": "alpha_scale", "measure": "top_eigenvalue", "min": [1.0, 10.0],
                           "max": [1e5, 1e3], "rel_output_diff": [1e-7, 1e-6]})
    result = _by_name(reparam, "sharpness_not_function").measure({"reparam_spread": spread}, config)
    assert result.value == pytest.approx(2.0) and result.verdict == FD.REPRODUCED


def test_missing_tables_are_not_run_and_every_row_has_the_contract_columns(config):
    frame = FD.evaluate(config, {})
    assert list(frame.columns) == FD.COLUMNS
    assert len(frame) == len(FD.registered()) and set(frame["verdict"]) == {FD.NOT_RUN}
    assert frame["detail"].str.contains("does not produce").all()
    html = FD.findings_html(frame)
    assert html.count("<tr>") == len(frame) + 1 and "not run at this scale" in html
    overview = FD.overview_rst(config, frame)
    assert "``optimizer_study``" in overview and "zhang2018" in overview


def test_every_finding_names_tables_and_a_section_of_the_registry(config):
    from lossland.pipeline import families as F

    names = [f.name for _, f in FD.registered()]
    assert len(names) == len(set(names))
    produced = set(F.tables(config))
    sections = {s for family in F.FAMILIES for s in family.SECTIONS}
    for family, finding in FD.registered():
        assert set(finding.tables) <= produced, finding.name
        assert finding.section in sections, finding.name
        assert finding.claim and finding.rule and finding.quantity and finding.paper


def test_a_line_that_never_rises_or_diverges_has_an_infinite_or_cut_width():
    flat = _distance_line("f", "adam", [1.0, 1.1, 1.2, 1.3, 1.4])
    diverged = _distance_line("d", "sgd", [1.0, 1.2, float("nan"), 9.0, 9.0])
    widths = landscape.basin_widths(pd.concat([flat, diverged]), 0.5)
    assert widths[("f", "adam", 0)] == math.inf and widths[("d", "sgd", 0)] == pytest.approx(0.5)


def test_the_findings_table_records_its_provenance(tmp_path, config):
    from lossland import io

    source = tmp_path / "reparam_spread.parquet"
    io.write_parquet(pd.DataFrame({"transform": ["alpha_scale"], "measure": ["top_eigenvalue"], "min": [1.0],
                                   "max": [1e4], "rel_output_diff": [1e-7]}), source)
    out = tmp_path / "findings.parquet"
    FD.write(config, {"reparam_spread": str(source)}, out, tmp_path / "findings.html", tmp_path / "overview.rst")
    record = io.read_provenance(out)
    assert len(record["config_hash"]) == 16 and record["params"]["tables"] == {"reparam_spread": str(source)}
    frame = pd.read_parquet(out).set_index("finding")
    assert frame.loc["sharpness_not_function", "verdict"] == FD.REPRODUCED
    assert (tmp_path / "overview.rst").read_text().startswith("What this run covered")
