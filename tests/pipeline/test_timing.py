"""Each family's share of a run from Snakemake's benchmark files (lossland.pipeline.timing)."""

import pytest
from tiny import TINY

from lossland.pipeline import config as C
from lossland.pipeline import families as F
from lossland.pipeline import timing


@pytest.fixture(scope="module")
def tiny_config():
    return C.check_config(TINY)


def _bench(root, rel, *seconds):
    path = root / "benchmarks" / f"{rel}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{s}\t0:00:00\t1\t1\t1\t1\t0\t0\t0\t0\n" for s in seconds)
    path.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n" + rows)


def test_rules_belong_to_the_family_whose_file_defines_them():
    rules = timing.rule_families()
    assert rules["select_lr"] == "im2016" and rules["hessian_checkpoint"] == "hessian"
    assert rules["landscape_shard"] == "landscape" and rules["reparam_sweep"] == "reparam"
    assert "train_run" not in rules and "prepare_dataset" not in rules


def test_each_file_is_credited_to_its_family(tmp_path, tiny_config):
    runs = F.run_table(tiny_config)
    owners = timing.run_owners(tiny_config)
    reparam_run = next(r for r, f in owners.items() if f == "reparam")
    _bench(tmp_path, "prepare_dataset/tiny", 2.0)
    _bench(tmp_path, "train_run/mlp_sgd-lr0.1_init0", 10.0)
    _bench(tmp_path, f"train_run/{reparam_run}", 4.0)
    _bench(tmp_path, "hessian_init/tiny/mlp_init0", 1.5, 0.5)        # two repeats: summed
    _bench(tmp_path, "landscape_shard/random_plane/x/shard0-of2", 3.0)
    _bench(tmp_path, "plot/fig4_optimizer_accuracy", 1.0)
    _bench(tmp_path, "plot/random_plane", 0.25)
    _bench(tmp_path, "no_such_rule/x", 7.0)
    frame = timing.family_times(tmp_path, tiny_config).set_index("family")
    assert "mlp_sgd-lr0.1_init0" in runs and owners["mlp_sgd-lr0.1_init0"] == "im2016"
    assert frame.loc["data", "seconds"] == 2.0
    assert frame.loc["im2016", "seconds"] == 11.0 and frame.loc["im2016", "jobs"] == 2
    assert frame.loc["hessian", "seconds"] == 2.0
    assert frame.loc["landscape", "seconds"] == 3.25
    assert frame.loc["reparam", "seconds"] == 4.0
    assert frame.loc["unknown", "seconds"] == 7.0
    assert frame["share"].sum() == pytest.approx(1.0)
    assert list(frame.index) == ["data", "im2016", "hessian", "landscape", "reparam", "unknown"]
