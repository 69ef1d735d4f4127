"""Every broken config of the catalogue (bad_configs.py) stops `snakemake -n` before any
job runs, with one message whose line names the key and the allowed values."""

from __future__ import annotations

import copy
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from bad_configs import CATALOGUE
from tiny import ROOT, TINY, snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory) -> dict[str, tuple[int, str, bool]]:
    """``{id: (returncode, output, results folder created)}`` of `snakemake -n` on each
    broken config, two at a time (each in its own folder)."""
    def attempt(case):
        workdir = tmp_path_factory.mktemp(case.id)
        cfg = copy.deepcopy(TINY)
        case.edit(cfg)
        res = snakemake(workdir, "--dry-run", config=cfg, timeout=120)
        return case.id, (res.returncode, res.stdout + res.stderr, (workdir / "results").exists())

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(attempt, CATALOGUE))


def test_the_catalogue_covers_every_section_of_the_schema():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    sections = set(schema["properties"])
    for fragment in (ROOT / "workflow" / "schemas").glob("*.schema.yaml"):
        sections |= set((yaml.safe_load(fragment.read_text()) or {}).get("properties") or {})
    named = {re.split(r"[.\[]", case.key)[0] for case in CATALOGUE}
    assert sections - named == set(), "sections without a broken config in the catalogue"
    assert len(CATALOGUE) >= 30 and len({c.id for c in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("case", CATALOGUE, ids=[c.id for c in CATALOGUE])
def test_bad_config_stops_the_dry_run_naming_the_key_and_the_allowed_values(case, dry_runs):
    returncode, out, results_made = dry_runs[case.id]
    assert returncode != 0, out
    assert out.count("invalid config:") == 1, out
    block = out.split("invalid config:", 1)[1]
    problems = [line.strip() for line in block.splitlines()[1:] if line.startswith("  ") and ": " in line
                and not line.strip().startswith("File ")]
    assert len(problems) == 1, f"one problem expected, got {problems}"
    line = problems[0]
    assert re.match(re.escape(case.key) + r"(\[\d+\])?:", line), f"{case.key!r} not named first in {line!r}"
    assert "allowed" in line, f"no allowed values in {line!r}"
    assert "Job stats" not in out and "rule " not in out.split("invalid config:")[0]
    assert not results_made
