"""The look shared by every figure of :mod:`lossland.plots`: the theme, the colours, saving.

Theme
    :func:`apply_theme` sets :data:`THEME` (seaborn's "whitegrid" style at "paper"
    scale, written out for plain matplotlib) into ``matplotlib.rcParams``. It runs
    once, when this module is first imported (``import lossland.plots`` does), never
    in a figure function. Figures are plain :class:`matplotlib.figure.Figure` objects
    (no pyplot state): :func:`new_figure`.

Colours: one mechanism per kind of thing coloured, never mixed
    * **optimizers** -- :func:`optimizer_colors`: optimizer ``i`` of the config's
      optimizer list (``optimizers=``, config order, which the workflow passes to every
      figure) gets colour ``i`` of :data:`OPTIMIZER_PALETTE` (tab10, then ten more
      distinct colours, then golden-angle hues); names outside that list (every name
      when it is ``None``) get the following colours in sorted order. Given the same
      list, an optimizer has the same colour in every figure: learning curves, Fig 4,
      Fig 7's own runs, Fig 9 (through each label's optimizer), the Hessian figures,
      the landscape lines, Table 1's diagonal, Fig 3's corners, the solution marker of
      the random planes.
    * **models** (Fig 11: init scheme x BN) -- :func:`model_colors`:
      :data:`MODEL_PALETTE` (the dark shades of tab20b) in sorted order.
    * **pairs** (final -> final lines of two optimizers, lines between switch
      variants) -- :func:`pair_colors`: :data:`PAIR_PALETTE` (ColorBrewer Dark2) in
      sorted order.
    * **switch variants** (Fig 7, learning curves of a switch study) --
      :func:`variant_colors`: a sequential ramp per first optimizer
      (:data:`VARIANT_CMAPS`: greys, then yellow-orange-brown, ...), light to dark with
      the switch epoch.
    * **epochs** (Hessian density) -- :func:`epoch_colors`: :data:`EPOCH_CMAP`
      (viridis), the initial weights darkest.
    * **initialisations** never get a colour: :func:`init_linestyles` (curves over
      epochs) and :func:`init_markers` (points, landscape lines), in sorted seed order.
    * **splits** of landscape lines: line styles :data:`SPLIT_STYLES`.
    * **diverged runs**: a black cross (:data:`DIVERGED_MARKER`) at the last finite epoch;
      a panel with no finite value at all keeps its axes and says :data:`NO_FINITE_VALUES`
      in its centre (black on white, :data:`DIVERGED_TEXT`).
    * surfaces: :data:`SURFACE_CMAP` (viridis) for log10 loss, always with a labelled
      colour bar; marks drawn on it (trajectories, labels) are white with a black outline.

Saving
    :func:`save_figure` writes the PNG (and the PDF) atomically, then closes the figure.
"""

from __future__ import annotations

import colorsys
import os
import sys
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib
from cycler import cycler
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

TAB10 = tuple(to_hex(c) for c in matplotlib.colormaps["tab10"].colors)
#: colours 11-20 of the optimizers: distinct from tab10 and from each other
EXTRA_OPTIMIZER_COLORS = ("#000075", "#800000", "#469990", "#f032e6", "#808000",
                          "#4b0082", "#2f4f4f", "#fa8072", "#ffd700", "#8fbc8f")
OPTIMIZER_PALETTE = TAB10 + EXTRA_OPTIMIZER_COLORS
MODEL_PALETTE = tuple(to_hex(matplotlib.colormaps["tab20b"].colors[i]) for i in (*range(0, 20, 4), *range(1, 20, 4)))
PAIR_PALETTE = tuple(to_hex(c) for c in matplotlib.colormaps["Dark2"].colors)
VARIANT_CMAPS = ("Greys", "YlOrBr", "Purples", "Greens")
EPOCH_CMAP = "viridis"
SURFACE_CMAP = "viridis"
INIT_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
INIT_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2, 1, 2)))
SPLIT_STYLES = {"train": "-", "test": "--", "val": "-."}
DIVERGED_MARKER = {"marker": "x", "color": "black", "ms": 6, "mew": 1.5, "ls": "none"}
#: the centred text of a panel without a finite value, and its style
NO_FINITE_VALUES = "diverged: no finite values"
DIVERGED_TEXT = {"color": "black", "fontsize": 8, "ha": "center", "va": "center",
                 "bbox": {"boxstyle": "round,pad=0.3", "fc": "white", "ec": "black", "lw": 0.8}}
#: ``Axes.set_label`` of the text-only cells (Table 1's diagonal): no data, no axis labels
TEXT_ONLY = "lossland:text-only"

THEME = {
    # seaborn "whitegrid"
    "figure.facecolor": "white", "axes.facecolor": "white", "axes.edgecolor": ".8", "axes.grid": True,
    "axes.axisbelow": True, "axes.labelcolor": ".15", "grid.color": ".8", "grid.linestyle": "-",
    "text.color": ".15", "xtick.color": ".15", "ytick.color": ".15", "xtick.direction": "out",
    "ytick.direction": "out", "xtick.bottom": False, "ytick.left": False, "lines.solid_capstyle": "round",
    "patch.edgecolor": "w", "patch.force_edgecolor": True, "image.cmap": SURFACE_CMAP,
    "font.family": ["sans-serif"], "font.sans-serif": ["DejaVu Sans", "Arial", "Liberation Sans", "sans-serif"],
    "legend.frameon": False, "legend.numpoints": 1, "legend.scatterpoints": 1,
    "axes.prop_cycle": cycler(color=[".15", ".45", ".65"]),  # greys: never an optimizer's colour by accident
    # seaborn "paper" context (0.8 x "notebook")
    "font.size": 9.6, "axes.labelsize": 9.6, "axes.titlesize": 9.6, "xtick.labelsize": 8.8,
    "ytick.labelsize": 8.8, "legend.fontsize": 8.0, "legend.title_fontsize": 8.8, "axes.linewidth": 1.0,
    "grid.linewidth": 0.8, "lines.linewidth": 1.2, "lines.markersize": 4.8, "patch.linewidth": 0.8,
    "xtick.major.width": 1.0, "ytick.major.width": 1.0, "xtick.minor.width": 0.8, "ytick.minor.width": 0.8,
    "xtick.major.size": 4.8, "ytick.major.size": 4.8, "xtick.minor.size": 3.2, "ytick.minor.size": 3.2,
    "xtick.major.pad": 5.6, "ytick.major.pad": 5.6,
    # PDFs with real (editable, searchable) text
    "pdf.fonttype": 42,
}


def apply_theme() -> None:
    """Set :data:`THEME` into ``matplotlib.rcParams`` (done once, on import)."""
    matplotlib.rcParams.update(THEME)


apply_theme()


def blank_figure(figsize: tuple[float, float]) -> Figure:
    """A pyplot-free figure without axes (nothing global to close or to leak)."""
    return Figure(figsize=figsize)


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **subplots):
    """A pyplot-free figure and its ``nrows`` x ``ncols`` axes (always a 2-D array)."""
    fig = blank_figure(figsize)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **subplots)


# --------------------------------------------------------------------------- colours


def _golden(i: int) -> str:
    """Colour ``i`` past the fixed palette: golden-angle hues, two brightness levels."""
    h = (0.11 + 0.618033988749895 * i) % 1.0
    return to_hex(colorsys.hsv_to_rgb(h, 0.75, 0.85 if i % 2 else 0.6))


def palette_color(palette: Sequence[str], i: int) -> str:
    """Colour ``i`` of ``palette``; past its end, deterministic golden-angle hues."""
    return palette[i] if i < len(palette) else _golden(i - len(palette))


def _sorted(names: Iterable[Hashable]) -> list:
    return sorted(dict.fromkeys(names), key=str)


def optimizer_colors(names_present: Iterable[str], optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """``{name: hex colour}`` for ``names_present`` (in their order).

    Optimizer ``i`` of ``optimizers`` (the config's names, config order) gets
    :data:`OPTIMIZER_PALETTE` colour ``i`` whether or not it is present; the names not
    in ``optimizers`` (all of them when it is ``None``) get the following colours in
    sorted order. Same ``optimizers`` -> same colour for a name in every figure."""
    present = list(dict.fromkeys(names_present))
    order = list(dict.fromkeys(optimizers or ()))
    colors = {o: palette_color(OPTIMIZER_PALETTE, i) for i, o in enumerate(order)}
    for k, name in enumerate(n for n in _sorted(present) if n not in colors):
        colors[name] = palette_color(OPTIMIZER_PALETTE, len(order) + k)
    return {n: colors[n] for n in present}


def optimizer_order(names_present: Iterable[str], optimizers: Sequence[str] | None = None) -> list[str]:
    """``names_present`` in config order (those in ``optimizers``), then the rest as they come."""
    present = list(dict.fromkeys(names_present))
    order = [o for o in dict.fromkeys(optimizers or ()) if o in present]
    return order + [n for n in present if n not in order]


def _cycled(names: Iterable[Hashable], palette: Sequence[str]) -> dict:
    return {n: palette[i % len(palette)] for i, n in enumerate(_sorted(names))}


def model_colors(names: Iterable[Hashable]) -> dict:
    """``{model: colour}`` from :data:`MODEL_PALETTE`, in sorted order (Fig 11)."""
    return _cycled(names, MODEL_PALETTE)


def pair_colors(labels: Iterable[Hashable]) -> dict:
    """``{pair label: colour}`` from :data:`PAIR_PALETTE`, in sorted order (final -> final,
    lines between switch variants)."""
    return _cycled(labels, PAIR_PALETTE)


def _ramp(cmap: str, n: int, lo: float = 0.45, hi: float = 0.9) -> list[str]:
    cm = matplotlib.colormaps[cmap]
    return [to_hex(cm(lo + (hi - lo) * (k / max(n - 1, 1)))) for k in range(n)]


def variant_colors(order: Sequence[Hashable], group: Mapping[Hashable, Hashable] | None = None) -> dict:
    """``{variant: colour}`` of switch variants: one sequential ramp of :data:`VARIANT_CMAPS`
    per ``group[variant]`` (the optimizer it starts with; groups in sorted order), light to
    dark along ``order`` (e.g. by switch epoch)."""
    group = group or {}
    out: dict = {}
    for i, g in enumerate(_sorted(group.get(v) for v in order)):
        members = [v for v in order if group.get(v) == g]
        out.update(zip(members, _ramp(VARIANT_CMAPS[i % len(VARIANT_CMAPS)], len(members))))
    return {v: out[v] for v in order}


def epoch_colors(epochs: Iterable[Hashable]) -> dict:
    """``{epoch: colour}`` along :data:`EPOCH_CMAP` in sorted order (the init first, darkest)."""
    order = _sorted(epochs)
    return dict(zip(order, _ramp(EPOCH_CMAP, len(order), 0.0, 0.92)))


def init_markers(seeds: Iterable[Hashable]) -> dict:
    """``{init seed: marker}`` in sorted seed order."""
    return {s: INIT_MARKERS[i % len(INIT_MARKERS)] for i, s in enumerate(_sorted(seeds))}


def init_linestyles(seeds: Iterable[Hashable]) -> dict:
    """``{init seed: line style}`` in sorted seed order."""
    return {s: INIT_LINESTYLES[i % len(INIT_LINESTYLES)] for i, s in enumerate(_sorted(seeds))}


# --------------------------------------------------------------------------- saving


def save_figure(fig, png_path: str | os.PathLike, pdf_path: str | os.PathLike | None = None, dpi: int = 130) -> None:
    """Write ``fig`` to ``png_path`` (format from its suffix, PNG without one) and, when
    given, to ``pdf_path`` as PDF, each atomically; then close the figure."""
    from ..io import atomic_path  # on demand: lossland.io is heavier than a figure

    try:
        for path, fmt in ((png_path, None), (pdf_path, "pdf")):
            if path is None:
                continue
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=fmt or Path(path).suffix[1:].lower() or "png")
    finally:
        if "matplotlib.pyplot" in sys.modules:  # a figure made with pyplot leaves its registry
            sys.modules["matplotlib.pyplot"].close(fig)
