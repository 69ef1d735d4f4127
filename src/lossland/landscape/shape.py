"""The shape of a 1-D loss line: its local maxima, barrier and the barrier's width.

im2016 (§4.4, Table 2, Fig 8) describes the lines between two minima as "sharp
unimodal jumps" with batch normalisation and "wide bumpy shapes that aren't
necessarily unimodal" without. :func:`line_shape` turns that into numbers:

* ``local_maxima``: interior peaks of the loss whose *prominence* (the height above
  the higher of the two lowest points between the peak and the nearest higher
  values on either side, as in :func:`scipy.signal.peak_prominences`) is at least
  ``rel_tol`` × the line's range; a run of equal values counts once. A monotone line
  has none, a single barrier one.
* ``barrier``: the highest loss on the line above the higher of its two ends.
* ``barrier_width``: the share of the line (by α) whose loss lies above the higher
  end plus half the barrier: near 0 for a sharp jump, larger for a wide bump.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["NO_SHAPE", "line_shape", "local_maxima"]

#: what :func:`line_shape` gives a line with a non-finite loss (a diverged end)
NO_SHAPE = {"local_maxima": math.nan, "barrier": math.nan, "barrier_width": math.nan}


def _prominences(v: np.ndarray, peaks: Sequence[int]) -> list[float]:
    out = []
    for i in peaks:
        left = i
        while left > 0 and v[left - 1] < v[i]:  # an equal peak to the left bounds it: of equal peaks
            # only the leftmost stands out
            left -= 1
        right = i
        while right < len(v) - 1 and v[right + 1] <= v[i]:
            right += 1
        base = max(v[left:i + 1].min(), v[i:right + 1].min())
        out.append(float(v[i] - base))
    return out


def local_maxima(values: Sequence[float], rel_tol: float = 0.01) -> int:
    """The number of interior local maxima of ``values`` with a prominence of at least
    ``rel_tol`` × (max − min); ``-1`` for values with a NaN or infinity (a diverged line)."""
    v = np.asarray(values, dtype=float)
    if not np.isfinite(v).all():
        return -1
    if len(v) < 3:
        return 0
    keep = np.concatenate([[True], np.diff(v) != 0])  # plateaus count once
    v = v[keep]
    span = float(v.max() - v.min())
    if span <= 0:
        return 0
    peaks = [i for i in range(1, len(v) - 1) if v[i] > v[i - 1] and v[i] > v[i + 1]]
    return sum(p >= rel_tol * span for p in _prominences(v, peaks))


def line_shape(alphas: Sequence[float], losses: Sequence[float], rel_tol: float = 0.01,
               segment: tuple[float, float] = (0.0, 1.0)) -> dict[str, float]:
    """``local_maxima``, ``barrier`` and ``barrier_width`` of the loss line ``losses`` at
    ``alphas`` (see the module docstring), measured on the points with α in ``segment``
    (default: between the two ends, α 0 and 1). NaN for a line with a non-finite loss
    there (a diverged end)."""
    a = np.asarray(alphas, dtype=float)
    v = np.asarray(losses, dtype=float)
    order = np.argsort(a, kind="stable")
    a, v = a[order], v[order]
    inside = (a >= segment[0] - 1e-9) & (a <= segment[1] + 1e-9)
    a, v = a[inside], v[inside]
    if len(v) < 2 or not np.isfinite(v).all():
        return dict(NO_SHAPE)
    ends = max(v[0], v[-1])
    barrier = float(max(v.max() - ends, 0.0))
    width = 0.0
    if barrier > 0:
        above = v > ends + 0.5 * barrier
        # the share of the segment's length covered by points above the half-barrier level
        # (each point stands for the half-intervals to its neighbours)
        edges = np.concatenate([[a[0]], (a[1:] + a[:-1]) / 2, [a[-1]]])
        width = float((np.diff(edges) * above).sum() / (a[-1] - a[0]))
    return {"local_maxima": float(local_maxima(v, rel_tol)), "barrier": barrier, "barrier_width": width}
