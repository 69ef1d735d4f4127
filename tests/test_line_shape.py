"""lossland.line_shape / local_maxima against curves whose peaks, barrier and width are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lossland.landscape import line_shape, local_maxima


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_sine_bumps_have_k_maxima(k):
    a = np.linspace(0, 1, 201)
    assert local_maxima(np.sin(np.pi * (2 * k - 1) * a) + 0.1 * a) == k


def test_monotone_and_flat_lines_have_none():
    a = np.linspace(0, 1, 21)
    assert local_maxima(a ** 2) == 0
    assert local_maxima(np.ones(9)) == 0
    assert local_maxima([0.0, 1.0]) == 0


def test_a_plateau_counts_once_and_small_wiggles_are_ignored():
    assert local_maxima([0, 1, 1, 1, 0]) == 1
    a = np.linspace(0, 1, 101)
    bump = np.minimum(np.sin(np.pi * a), 0.8)  # a flat top, where a wiggle makes peaks
    wiggle = bump + 1e-4 * np.sin(37 * np.pi * a + 0.3)  # prominences about 2e-4 of a range of 0.8
    assert local_maxima(wiggle, rel_tol=0.01) == 1
    assert local_maxima(wiggle, rel_tol=0.0) > 1


def test_prominence_is_measured_against_the_higher_saddle():
    # peaks at 3 (prominence 3 - 1 = 2) and at 1.2 (prominence 1.2 - 1.0 = 0.2), range 3
    values = [0.0, 3.0, 1.0, 1.2, 1.0, 0.5]
    assert local_maxima(values, rel_tol=0.05) == 2
    assert local_maxima(values, rel_tol=0.1) == 1


def test_of_equal_peaks_only_one_stands_out():
    assert local_maxima([0, 1, 0.99, 1, 0], rel_tol=0.05) == 1
    assert local_maxima([0, 1, 0.5, 1, 0], rel_tol=0.05) == 2


def test_non_finite_lines():
    assert local_maxima([0.0, math.nan, 1.0]) == -1
    shape = line_shape([0, 0.5, 1], [0.0, math.inf, 1.0])
    assert all(math.isnan(v) for v in shape.values())


def test_barrier_and_width_of_a_triangle():
    # loss max(1 - |2α - 1|, 0.2) on [0, 1]: ends at 0.2, barrier 0.8 above them; above the
    # half level 0.6 where |2α - 1| < 0.4, i.e. on 0.4 of the segment
    a = np.linspace(0, 1, 401)
    v = np.maximum(1 - np.abs(2 * a - 1), 0.2)
    shape = line_shape(a, v)
    assert shape["local_maxima"] == 1
    assert shape["barrier"] == pytest.approx(0.8)
    assert shape["barrier_width"] == pytest.approx(0.4, abs=0.01)


def test_only_the_segment_between_the_ends_counts():
    a = np.linspace(-0.5, 1.5, 41)
    v = np.where((a >= 0) & (a <= 1), np.sin(np.pi * a), 5 + np.sin(8 * np.pi * a))  # bumps outside
    shape = line_shape(a, v)
    assert shape["local_maxima"] == 1
    assert shape["barrier"] == pytest.approx(1.0)
    assert line_shape(a, v, segment=(-0.5, 1.5))["local_maxima"] > 1


def test_no_barrier_no_width():
    shape = line_shape([0, 0.5, 1], [1.0, 0.5, 0.2])
    assert shape == {"local_maxima": 0.0, "barrier": 0.0, "barrier_width": 0.0}
