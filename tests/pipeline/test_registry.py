"""The family registry: every family is complete, and everything that concerns all families loops over it."""

import importlib
import types

import pytest
import yaml
from conftest import ROOT

from lossland.pipeline import config as C
from lossland.pipeline import families as F
from lossland.pipeline import paths
from lossland.pipeline.family import Figure
from lossland.plots import figure_function

INTERFACE = ("NAME", "SECTIONS", "RUN_SECTIONS", "CATEGORY", "FIGURES", "WILDCARDS", "check", "runs", "tables")


@pytest.fixture(scope="module")
def default_config():
    return C.check_config(yaml.safe_load((ROOT / "config.yaml").read_text()), C.load_schema())


@pytest.mark.parametrize("family", F.FAMILIES, ids=lambda f: f.NAME)
def test_every_family_has_every_part(family):
    for name in INTERFACE:
        assert hasattr(family, name), f"{family.NAME} lacks {name}"
    assert set(family.RUN_SECTIONS) <= set(family.SECTIONS)
    assert (ROOT / "workflow" / "rules" / f"{family.NAME}.smk").exists()
    fragment = yaml.safe_load((ROOT / "workflow" / "schemas" / f"{family.NAME}.schema.yaml").read_text())
    assert set(fragment["properties"]) == set(family.SECTIONS)
    assert importlib.import_module(f"lossland.plots.{family.NAME}")
    for name, fig in family.FIGURES.items():
        assert isinstance(fig, Figure)
        assert callable(figure_function(fig.function)), name
        assert fig.function.split(".")[0] == family.NAME, f"{name} is drawn outside its family's plots module"
        caption = ROOT / "workflow" / "report" / family.NAME / (fig.caption or f"{name}.rst")
        assert caption.exists() and caption.read_text().strip(), caption


def test_names_sections_and_figures_are_unique():
    names = [f.NAME for f in F.FAMILIES]
    assert len(set(names)) == len(names)
    assert len(set(F.sections())) == len(F.sections())
    assert sum(len(f.FIGURES) for f in F.FAMILIES) == len(F.figures())


def test_every_caption_belongs_to_a_figure():
    captions = {p.relative_to(ROOT / "workflow" / "report").as_posix()
                for p in (ROOT / "workflow" / "report").glob("*/*.rst")}
    used = {f"{fam.NAME}/{fig.caption or name + '.rst'}" for name, (fam, fig) in F.figures().items()}
    assert captions - used == {"im2016/lr_selection.rst"}  # the selection table's caption (a table, not a figure)


def test_the_merged_schema_has_every_section():
    assert set(F.sections()) <= set(C.load_schema()["properties"])


def test_default_targets(default_config):
    targets = F.targets(default_config)
    runs = F.run_table(default_config)
    assert [t for t in targets if t.endswith("metrics.parquet") and "/runs/" in t] == [
        paths.run_metrics(r) for r in runs]
    figures = {t.rsplit("/", 1)[1][:-4] for t in targets if t.startswith(f"{paths.RESULTS}/figures/")}
    assert figures == set(F.figures())  # the default study draws every figure
    assert paths.table("lr_selection") in targets and paths.table("hessian_summary") in targets


def test_a_figure_is_drawn_only_when_its_tables_are(default_config):
    cfg = dict(default_config, landscape=dict(default_config["landscape"], kinds=["init_final"]))
    cfg["landscape"]["switching"] = {"enabled": False}
    drawn = set(F.drawn_figures(cfg))
    assert {"fig2_init_final", "fig10_beyond_final"} <= drawn
    assert not drawn & {"fig3_bilinear", "fig5_interpolation", "pca_plane", "fig7_switching_interpolation"}


def test_figure_kwargs_fix_the_optimizer_colours(default_config):
    kwargs = F.figure_kwargs(default_config, "fig7_switching")
    assert kwargs["optimizers"] == list(default_config["optimizers"])
    assert kwargs["switches"] == default_config["switch_study"]["switches"]


def test_wildcard_constraints_are_merged():
    assert F.wildcard_constraints()["study"] == "optimizer_study|rk2_study|init_study|switch_study"


def test_adding_a_family_is_one_line_in_the_registry(monkeypatch, default_config):
    """A new family appended to FAMILIES takes part in the check, the run table, the targets and the figures."""
    toy = types.SimpleNamespace(
        NAME="toy", SECTIONS=("toy",), RUN_SECTIONS=(), CATEGORY="Toy", WILDCARDS={"toykind": "a|b"},
        FIGURES={"toy_figure": Figure("toy.draw", ("toy_table",))},
        check=lambda config: ["toy.size: too big; allowed: 1 to 3"] if (config.get("toy") or {}).get("size", 0) > 3
        else [],
        runs=lambda config: [],
        tables=lambda config: ["toy_table"] if config.get("toy") else [],
    )
    monkeypatch.setattr(F, "FAMILIES", (*F.FAMILIES, toy))
    with_toy = dict(default_config, toy={"size": 2})
    assert F.check(with_toy) == []
    assert F.check(dict(default_config, toy={"size": 9})) == ["toy.size: too big; allowed: 1 to 3"]
    assert paths.figure("toy_figure") in F.targets(with_toy) and paths.table("toy_table") in F.targets(with_toy)
    assert paths.figure("toy_figure") not in F.targets(default_config)
    assert "toy_figure" in F.figures() and F.wildcard_constraints()["toykind"] == "a|b"
    assert "toy.schema.yaml" in F.schema_fragments() and "toy" in F.sections()


def test_a_figure_name_defined_twice_is_refused(monkeypatch):
    twin = types.SimpleNamespace(NAME="twin", FIGURES={"fig4_optimizer_accuracy": Figure("twin.f", ("t",))})
    monkeypatch.setattr(F, "FAMILIES", (*F.FAMILIES, twin))
    with pytest.raises(ValueError, match="fig4_optimizer_accuracy.*im2016 and twin"):
        F.figures()


def test_the_pipeline_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys; import lossland.pipeline.families, lossland.pipeline.config, lossland.pipeline.jobs, "
            "lossland.pipeline.tables; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
