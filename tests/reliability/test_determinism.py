"""Two runs of the tiny config in different folders give the same tables, value for value
(timing columns aside), and every table says where it came from."""

from __future__ import annotations

import re
import subprocess

import pytest
from tiny import ROOT, TINY, compare_results, snakemake

from lossland import io

pytestmark = pytest.mark.workflow

VERSIONS = {"lossland", "torch", "numpy", "pandas", "pyarrow", "python"}


def test_two_runs_in_different_folders_give_identical_tables(tiny_workflow, tmp_path):
    res = snakemake(tmp_path, config=TINY)
    assert res.returncode == 0, res.stdout + res.stderr
    # rtol = atol = 0: the same numbers, not close ones; wall_time and seconds are left out
    cmp = compare_results(tiny_workflow / "results", tmp_path / "results")
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr
    compared = int(re.search(r"(\d+) tables compared: (\d+) identical", cmp.stdout).group(2))
    assert compared == len(list((tiny_workflow / "results").rglob("*.parquet"))) > 40, cmp.stdout


def test_every_table_records_config_hash_versions_and_commit(tiny_workflow):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    tables = sorted((tiny_workflow / "results").rglob("*.parquet"))
    assert tables
    for path in tables:
        record = io.read_provenance(path)
        where = path.relative_to(tiny_workflow)
        assert re.fullmatch(r"[0-9a-f]{16}", record.get("config_hash") or ""), where
        assert VERSIONS <= set(record.get("versions", {})) and all(record["versions"].values()), where
        if head.returncode == 0:  # the code's commit, although the jobs ran in a folder outside the checkout
            assert record["git_commit"].removesuffix("-dirty") == head.stdout.strip(), where
