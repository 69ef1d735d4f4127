"""What a change reruns, from the dry-run listing of the finished tiny run: a changed script
or input reruns exactly the jobs that depend on it; a key that defines no output (threads,
cluster resources) or belongs to another family reruns nothing of the rest."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tiny import ROOT, dry_run, edited, planned_jobs

pytestmark = pytest.mark.workflow

REPARAM_FIGURES = {"plot_dinh_alpha_scale": 1, "plot_dinh_reparametrizations": 1}


def planned(workdir: Path, cfg: dict | None = None, **kw) -> dict[str, int]:
    """The jobs a dry run with ``cfg`` (default TINY) would run: {rule: count}."""
    return planned_jobs(dry_run(workdir, cfg, **kw))


@pytest.fixture
def workflow_copy(tmp_path) -> Path:
    """The workflow's Snakefile, rules, scripts, schemas and profiles copied, so that a test
    can edit a script without touching the checkout (without a src/ beside it, the copy runs
    the installed lossland: this checkout's, installed editable)."""
    copy = tmp_path / "checkout"
    copy.mkdir()
    shutil.copy(ROOT / "Snakefile", copy / "Snakefile")
    for folder in ("workflow", "profiles"):
        shutil.copytree(ROOT / folder, copy / folder)
    return copy


def test_the_copied_workflow_sees_the_finished_run_as_finished(tiny_workflow, workflow_copy):
    assert planned(tiny_workflow, snakefile=workflow_copy / "Snakefile") == {}


def test_a_changed_script_reruns_its_rule_and_downstream_only(tiny_workflow, workflow_copy):
    script = workflow_copy / "workflow" / "scripts" / "hessian_point.py"
    script.write_text(script.read_text() + "\nlog.info('an edit')\n")
    jobs = planned(tiny_workflow, snakefile=workflow_copy / "Snakefile")
    # hessian: init weights of mlp seed 0 at epoch 0, then sgd's and adam's runs at epoch 2; the sharpness
    # family's Hessian reports use the same script: its 2 batch-size and 3 architecture solutions
    assert jobs == {"hessian_init": 1, "hessian_checkpoint": 2, "gather_hessian": 1, "plot_hessian_density": 1,
                    "plot_hessian_sharpness": 1, "plot_hessian_negative_fraction": 1,
                    "sharpness_hessian": 5, "gather_batch_size": 1, "gather_architecture": 1,
                    "plot_keskar_interpolation": 1, "plot_keskar_sharpness": 1, "plot_li_skip_surfaces": 1,
                    "plot_li_skip_surfaces_3d": 1, "plot_li_convexity": 1, "plot_li_width": 1, "findings": 1, "all": 1}


def test_a_changed_input_reruns_the_jobs_that_read_it(tiny_workflow):
    """New weights in final.safetensors of the BatchNorm run (read by reparam and by the bn_study's
    lines of its init) rerun those jobs and what gathers them: nothing upstream, nothing else. A newer
    file with the same bytes reruns nothing (Snakemake compares small inputs' checksums)."""
    from safetensors.torch import load_file, save_file

    final = tiny_workflow / "results" / "runs" / "mlp-bn_sgd-lr0.1_init0" / "final.safetensors"
    original, stat = final.read_bytes(), final.stat()
    try:
        os.utime(final, (stat.st_atime + 3600, stat.st_mtime + 3600))
        assert planned(tiny_workflow) == {}
        tensors = load_file(final)
        first = next(k for k, v in tensors.items() if v.is_floating_point())
        tensors[first] = tensors[first] * 1.01
        save_file(tensors, final)
        jobs = planned(tiny_workflow)
    finally:
        final.write_bytes(original)
        os.utime(final, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert jobs == {"reparam_sweep": 1, "reparam_input": 1, "gather_reparam": 1, **REPARAM_FIGURES,
                    "bn_study_lines": 1, "gather_bn_study": 1, "plot_table2_bn_lines": 1, "plot_fig8_bn_minima": 1,
                    "findings": 1, "all": 1}
    assert planned(tiny_workflow) == {}


def test_keys_that_define_no_output_rerun_nothing(tiny_workflow):
    cfg = edited(lambda c: (c.update(threads=2),
                            c.update(resources={"train": {"runtime": 999, "mem_mb": 1234},
                                                "plot": {"runtime": 5, "mem_mb": 500}})))
    assert planned(tiny_workflow, cfg) == {}


def test_another_familys_setting_reruns_only_that_family(tiny_workflow):
    cfg = edited(lambda c: c["reparam"]["settings"].update(max_iter=9))
    jobs = planned(tiny_workflow, cfg)
    assert set(jobs) == {"reparam_sweep", "gather_reparam", *REPARAM_FIGURES, "findings", "all"}, jobs
    cfg = edited(lambda c: c["landscape"]["random_plane"].update(seeds=[1, 2]))
    jobs = planned(tiny_workflow, cfg)
    # the plane's shards (2 seeds x 2 runs), its surface and table gathers, its figure
    assert jobs == {"landscape_shard": 4, "gather_landscape_surface": 2, "gather_landscape_table": 1,
                    "plot_random_plane": 1, "findings": 1, "all": 1}
