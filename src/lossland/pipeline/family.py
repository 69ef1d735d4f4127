"""The interface every experiment family implements, and its figure table's entries.

A family is one module under :mod:`lossland.pipeline.families` with these names
(see :class:`Family`); the registry (:mod:`lossland.pipeline.families`) loops
over the families for the config check, the run table, ``rule all``'s targets,
the wildcard constraints, the schema fragments and the figure rules. A family's
parts elsewhere carry its ``NAME``: ``workflow/rules/<NAME>.smk``,
``workflow/schemas/<NAME>.schema.yaml``, ``workflow/report/<NAME>/*.rst``,
``lossland/plots/<NAME>.py`` and ``tests/families/test_<NAME>.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

Config = Mapping[str, Any]


@dataclass(frozen=True)
class Figure:
    """One figure: drawn by ``lossland.plots.<function>`` (``"<module>.<name>"``) from the
    gathered tables ``results/tables/<table>.parquet`` in ``tables`` order, captioned by
    ``workflow/report/<family>/<caption>`` (default ``<figure name>.rst``).

    ``kwargs(config)`` adds keyword arguments the figure needs from the config (every
    figure also gets ``optimizers``: the config's optimizer names in order, which fixes
    each optimizer's colour in every figure). ``category``/``subcategory`` group it in
    the report (default: the family's ``CATEGORY``). ``section`` is the config section
    whose scale the caption states (default: the family's first section); the caption
    template's numbers come from ``lossland.plots.caption_numbers(function)``.
    """

    function: str
    tables: tuple[str, ...]
    caption: str | None = None
    kwargs: Callable[[Config], dict[str, Any]] | None = None
    category: str | None = None
    subcategory: str | None = None
    section: str | None = None


class Family(Protocol):
    """What a family module defines (module-level names, not a class to subclass)."""

    #: the family's name: its rules file, schema fragment, captions folder, plots module, test file
    NAME: str
    #: the top-level config sections the family reads (its schema fragment defines them)
    SECTIONS: tuple[str, ...]
    #: those of its sections that train runs of their own (the others analyse runs)
    RUN_SECTIONS: tuple[str, ...]
    #: the report category of its figures
    CATEGORY: str
    #: every figure the family can draw: ``{figure name: Figure}``
    FIGURES: Mapping[str, Figure]
    #: the papers' claims the family tests (:class:`lossland.pipeline.findings.Finding`; may be empty)
    FINDINGS: Sequence[Any]
    #: wildcard constraints the family's rules share with the others (``{wildcard: regex}``)
    WILDCARDS: Mapping[str, str]

    def check(self, config: Config) -> list[str]:
        """Problems of a schema-valid config that a schema cannot see, one line each,
        naming the key and the allowed values (empty: nothing wrong)."""

    def runs(self, config: Config) -> Sequence[tuple[str, Sequence[dict[str, Any]]]]:
        """The training runs the family asks for, as ``(section, run specs)`` pairs."""

    # optional: ``scale(config, section) -> str``, the caption's line on what a section ran at, for
    # a family whose sections do not train the shared runs (default: lossland.pipeline.captions.scale)

    def tables(self, config: Config) -> list[str]:
        """The gathered tables (``results/tables/<name>.parquet``) this config produces;
        a figure is drawn when all of its tables are produced."""
