"""Figures from tables (never from models), one module per family of figures:

* :mod:`lossland.plots.im2016` -- the im2016 optimizer-study figures (learning curves, Fig 4, 7, 9, 11);
* :mod:`lossland.plots.hessian` -- Hessian spectral density, sharpness, negative fraction;
* :mod:`lossland.plots.landscape` -- lines and planes through the weights (im2016 Fig 2, 3, 5, 6,
  7 right, 10, Table 1; Li et al.'s random and PCA planes);
* :mod:`lossland.plots.style` -- the theme, the colours (one per optimizer, the same in every
  figure) and :func:`save_figure`; ``_common`` holds the drawing helpers the families share.

Every figure function takes long-form DataFrames as the workflow writes them (and keyword
``optimizers=``: the config's optimizer names in order) and returns a
:class:`matplotlib.figure.Figure`; a family module lists its figure functions in
``FIGURE_FUNCTIONS``. The workflow finds one by name with :func:`figure_function` and writes
it with :func:`save_figure`. Every figure function has a *caption-numbers* function in its
module's ``CAPTION_NUMBERS`` (``{figure function: numbers function}``; found by
:func:`caption_numbers`): called like the figure function, it returns the numbers the figure
shows as ``{name: formatted text}``, which the figure's caption template
(``workflow/report/<family>/<figure>.rst``) prints. Importing this package imports no family
module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from .style import save_figure

__all__ = ["caption_numbers", "family_modules", "figure_function", "save_figure"]


def family_modules() -> tuple[str, ...]:
    """The family modules of this package (every public module but :mod:`.style`), unimported."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")
                        and m.name != "style"))


def figure_function(name: str) -> Callable:
    """The figure function ``"<module>.<function>"`` (e.g. ``"im2016.optimizer_accuracy"``),
    importing its family module on demand; a ValueError names the allowed ones."""
    module, _, function = str(name).partition(".")
    modules = family_modules()
    if module not in modules:
        raise ValueError(f"figure {name!r}: unknown module {module!r}; allowed modules: {', '.join(modules)} "
                         "(names are '<module>.<function>', e.g. 'im2016.optimizer_accuracy')")
    family = importlib.import_module(f"{__name__}.{module}")
    if function not in family.FIGURE_FUNCTIONS:
        raise ValueError(f"figure {name!r}: {module} has no figure {function!r}; allowed: "
                         + ", ".join(f"{module}.{f}" for f in family.FIGURE_FUNCTIONS))
    return getattr(family, function)


def caption_numbers(name: str) -> Callable:
    """The caption-numbers function of figure function ``"<module>.<function>"`` (see the module
    docstring); a ValueError names the figure functions of that module that lack one."""
    figure_function(name)
    module, _, function = str(name).partition(".")
    family = importlib.import_module(f"{__name__}.{module}")
    numbers = getattr(family, "CAPTION_NUMBERS", {})
    if function not in numbers:
        missing = [f for f in family.FIGURE_FUNCTIONS if f not in numbers]
        raise ValueError(f"figure {name!r} has no caption numbers: {module}.CAPTION_NUMBERS lacks "
                         f"{', '.join(missing)}")
    return numbers[function]
