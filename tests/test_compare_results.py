"""tools/compare_results.py: two results folders compared table by table, by value."""

import importlib.util

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

spec = importlib.util.spec_from_file_location("compare_results", ROOT / "tools" / "compare_results.py")
compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare)


def _folder(root, loss=(1.0, 2.0), wall=(0.1, 0.2), name="a", figure=True):
    (root / "tables").mkdir(parents=True)
    pd.DataFrame({"run": [name, "b"], "epoch": [0, 1], "loss": loss, "wall_time": wall}).to_parquet(
        root / "tables" / "m.parquet")
    if figure:
        (root / "figures").mkdir()
        (root / "figures" / "f.png").write_bytes(b"png")
    return root


def test_identical_folders_match_whatever_the_timings(tmp_path):
    old, new = _folder(tmp_path / "old"), _folder(tmp_path / "new", wall=(5.0, 6.0))
    assert compare.main([str(old), str(new)]) == 0


def test_a_changed_value_is_reported_with_its_size(tmp_path, capsys):
    old, new = _folder(tmp_path / "old"), _folder(tmp_path / "new", loss=(1.0, 2.0 + 1e-9))
    assert compare.main([str(old), str(new)]) == 1
    assert "DIFFERENT tables/m.parquet: loss: 1 values differ" in capsys.readouterr().out
    assert compare.main([str(old), str(new), "--rtol", "1e-6"]) == 0
    assert "within tolerance tables/m.parquet: loss" in capsys.readouterr().out


def test_strings_missing_tables_and_figures_are_differences(tmp_path, capsys):
    old = _folder(tmp_path / "old")
    assert compare.main([str(old), str(_folder(tmp_path / "n1", name="z"))]) == 1
    assert "run: 1 values differ (row 0: 'a' -> 'z')" in capsys.readouterr().out
    assert compare.main([str(old), str(_folder(tmp_path / "n2", figure=False))]) == 1
    assert "figure only in old: figures/f.png" in capsys.readouterr().out


def test_nan_equals_nan_but_not_a_number():
    a = pd.DataFrame({"x": [np.nan, 1.0]})
    assert compare.compare_tables(a, a.copy())["same"]
    assert not compare.compare_tables(a, pd.DataFrame({"x": [0.0, 1.0]}))["same"]
    assert not compare.compare_tables(a, pd.DataFrame({"x": [np.nan, 1.0, 2.0]}))["same"]


def test_a_bad_folder_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        compare.main([str(tmp_path / "missing"), str(tmp_path)])
