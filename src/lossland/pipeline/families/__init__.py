"""The family registry: the one place that lists the experiment families.

Everything that concerns all families loops over :data:`FAMILIES`: the config
cross-check (:func:`check`), the run table (:func:`run_table`), ``rule all``'s
targets (:func:`targets`), the wildcard constraints, the schema fragments and the
figure rules (:func:`figures`, :func:`figure_kwargs`). Adding a family is one
line here (see ``docs/architecture.md``).
"""

from __future__ import annotations

from typing import Any

from .. import paths, runs
from ..family import Config, Family, Figure
from . import batchnorm, connectivity, entropy, hessian, im2016, landscape, reparam, sharpness

#: every family, in the order its rules are included and its checks run
FAMILIES: tuple[Family, ...] = (im2016, hessian, landscape, reparam, connectivity, entropy, sharpness, batchnorm)

__all__ = ["FAMILIES", "Family", "Figure", "check", "figure_kwargs", "figures", "present_sections", "run_table",
           "sections", "targets", "wildcard_constraints"]


def by_name(name: str) -> Family:
    for family in FAMILIES:
        if family.NAME == name:
            return family
    raise KeyError(f"unknown family {name!r}; allowed: {', '.join(f.NAME for f in FAMILIES)}")


def sections(trains: bool = False) -> list[str]:
    """Every family's config sections (with ``trains``: those that train runs)."""
    return [s for f in FAMILIES for s in (f.RUN_SECTIONS if trains else f.SECTIONS)]


def present_sections(config: Config, trains: bool = False) -> list[str]:
    return [s for s in sections(trains) if config.get(s)]


def check(config: Config) -> list[str]:
    """Every family's problems with ``config``, then the run table's (one line each)."""
    problems = []
    if not present_sections(config, trains=True):
        problems.append(f"<top level>: no section that trains runs is configured; allowed: "
                        f"{', '.join(sections(trains=True))}")
    for family in FAMILIES:
        problems += family.check(config)
    if not problems:
        try:
            run_table(config)
        except runs.RunConflict as exc:
            problems.append(str(exc))
    return problems


def run_table(config: Config) -> dict[str, dict[str, Any]]:
    """``{run name: run spec}`` of every run any family asks for (see :func:`lossland.pipeline.runs.merge`)."""
    return runs.merge(pair for family in FAMILIES for pair in family.runs(config))


def figures() -> dict[str, tuple[Family, Figure]]:
    """Every figure of every family: ``{figure name: (family, figure)}`` (names are unique)."""
    out: dict[str, tuple[Family, Figure]] = {}
    for family in FAMILIES:
        for name, fig in family.FIGURES.items():
            if name in out:
                raise ValueError(f"figure {name!r} is defined by {out[name][0].NAME} and {family.NAME}")
            out[name] = (family, fig)
    return out


def figure_kwargs(config: Config, name: str) -> dict[str, Any]:
    """The keyword arguments of figure ``name``'s plot function for ``config``."""
    _, fig = figures()[name]
    kwargs = {"optimizers": list(config["optimizers"])}
    if fig.kwargs is not None:
        kwargs.update(fig.kwargs(config))
    return kwargs


def figure_section(name: str) -> str:
    """The config section whose scale figure ``name``'s caption states."""
    family, fig = figures()[name]
    return fig.section or family.SECTIONS[0]


def caption_template(name: str) -> str:
    """The path of figure ``name``'s caption template, relative to ``workflow/report/``."""
    family, fig = figures()[name]
    return f"{family.NAME}/{fig.caption or name + '.rst'}"


def tables(config: Config) -> list[str]:
    return [t for family in FAMILIES for t in family.tables(config)]


def drawn_figures(config: Config, produced: list[str] | None = None) -> list[str]:
    """The figures ``config`` draws: those whose tables it produces (``produced``: :func:`tables`)."""
    produced = set(tables(config) if produced is None else produced)
    return [name for name, (_, fig) in figures().items() if set(fig.tables) <= produced]


def targets(config: Config) -> list[str]:
    """``rule all``'s inputs: every run's metrics, every produced table, every drawn figure and
    the findings (their table, the report's findings page and overview)."""
    produced = tables(config)
    return ([paths.run_metrics(r) for r in run_table(config)]
            + [paths.table(t) for t in produced]
            + [paths.figure(f) for f in drawn_figures(config, produced)]
            + [paths.table("findings"), paths.report_page("findings", "html"), paths.report_page("overview")])


def wildcard_constraints() -> dict[str, str]:
    """The families' shared wildcard constraints, merged (a wildcard constrained twice must agree)."""
    out: dict[str, str] = {}
    for family in FAMILIES:
        for key, regex in family.WILDCARDS.items():
            if out.setdefault(key, regex) != regex:
                raise ValueError(f"wildcard {key!r} is constrained differently by {family.NAME}")
    return out


def schema_fragments() -> list[str]:
    """The schema fragment of every family (``workflow/schemas/<name>.schema.yaml``), in order."""
    return [f"{family.NAME}.schema.yaml" for family in FAMILIES]

