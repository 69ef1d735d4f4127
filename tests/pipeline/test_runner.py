import pandas as pd
import pytest
import torch

from lossland import io
from lossland.models import create_model
from lossland.pipeline import runner
from lossland.pipeline.runs import TRAINING_DEFAULTS


def _spec(epochs=3, lr=0.01, checkpoint_epochs=(1, 2)):
    training = dict(TRAINING_DEFAULTS, epochs=epochs, batch_size=50, augment=True,
                    checkpoint_epochs=list(checkpoint_epochs))
    return {
        "run": "nin_adam_init0", "study": "optimizer_study", "dataset": "tiny", "model": "nin",
        "model_spec": {"arch": "nin", "width": 0.125, "depth": 2, "dropout": 0.2},
        "optimizer": "adam", "optimizer_spec": {"algorithm": "adam", "lr": lr},
        "init_seed": 0, "data_seed": 0, "training": training,
    }


def _paths(root):
    return {"metrics_path": root / "metrics.parquet", "final_path": root / "final.safetensors",
            "checkpoints_dir": root / "checkpoints"}


def _init(ds, spec):
    return create_model(spec["model_spec"], ds.input_shape, ds.num_classes, seed=0).state_dict()


def test_execute_run_writes_metrics_checkpoints_and_final(tiny_dataset, tmp_path):
    spec = _spec()
    runner.execute_run(spec, tiny_dataset, _init(tiny_dataset, spec), device=torch.device("cpu"),
                       progress=False, **_paths(tmp_path))
    df = pd.read_parquet(tmp_path / "metrics.parquet")
    for col in ("run", "model", "dataset", "optimizer", "lr", "seed", "epoch", "train_loss", "train_acc",
                "test_loss", "test_acc", "dist_from_init", "grad_norm", "wall_time", "diverged"):
        assert col in df, col
    assert df["epoch"].tolist() == [0, 1, 2, 3] and (df["run"] == "nin_adam_init0").all()
    assert df["lr"].eq(0.01).all()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "epoch0001.json", "epoch0001.safetensors", "epoch0002.json", "epoch0002.safetensors"]
    assert not (tmp_path / ".partial").exists()
    # the final checkpoint rebuilds the trained model, which reproduces the last metrics row
    model, meta = runner.model_from_checkpoint(tmp_path / "final.safetensors")
    assert meta["epoch"] == 3 and meta["diverged"] is False and meta["optimizer_spec"]["lr"] == 0.01
    from lossland import evaluate
    res = evaluate(model, tiny_dataset["test"].as_tuple())
    assert res["accuracy"] == pytest.approx(df["test_acc"].iloc[-1])
    assert res["loss"] == pytest.approx(df["test_loss"].iloc[-1], rel=1e-5)
    assert io.read_provenance(tmp_path / "metrics.parquet")["config_hash"] == io.config_hash(spec)


def test_interrupted_run_leaves_no_outputs_and_resumes_to_the_same_result(tiny_dataset, tmp_path, monkeypatch):
    spec = _spec()
    straight = tmp_path / "straight"
    runner.execute_run(spec, tiny_dataset, _init(tiny_dataset, spec), device=torch.device("cpu"),
                       progress=False, **_paths(straight))

    killed = tmp_path / "killed"
    real_save = io.save_state_tree
    calls = {"n": 0}

    def dying_save(obj, path):
        real_save(obj, path)
        calls["n"] += 1
        if obj["state"]["epoch"] == 2:
            raise KeyboardInterrupt("killed after epoch 2")

    monkeypatch.setattr(io, "save_state_tree", dying_save)
    with pytest.raises(KeyboardInterrupt):
        runner.execute_run(spec, tiny_dataset, _init(tiny_dataset, spec), device=torch.device("cpu"),
                           progress=False, **_paths(killed))
    monkeypatch.setattr(io, "save_state_tree", real_save)
    # nothing that looks finished, but a resume point
    assert not (killed / "metrics.parquet").exists() and not (killed / "final.safetensors").exists()
    assert (killed / ".partial" / "resume.safetensors").exists()

    state = runner.execute_run(spec, tiny_dataset, _init(tiny_dataset, spec), device=torch.device("cpu"),
                               progress=False, **_paths(killed))
    assert state.epoch == 3
    a = pd.read_parquet(straight / "metrics.parquet").drop(columns="wall_time")
    b = pd.read_parquet(killed / "metrics.parquet").drop(columns="wall_time")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    wa, _ = io.load_checkpoint(straight / "final.safetensors")
    wb, _ = io.load_checkpoint(killed / "final.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    ca, _ = io.load_checkpoint(straight / "checkpoints" / "epoch0001.safetensors")
    cb, _ = io.load_checkpoint(killed / "checkpoints" / "epoch0001.safetensors")
    assert all(torch.equal(ca[k], cb[k]) for k in ca)


def test_resume_point_of_another_spec_is_discarded(tiny_dataset, tmp_path, monkeypatch):
    spec = _spec(lr=0.01)
    real_save = io.save_state_tree

    def dying_save(obj, path):
        real_save(obj, path)
        if obj["state"]["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(io, "save_state_tree", dying_save)
    with pytest.raises(KeyboardInterrupt):
        runner.execute_run(spec, tiny_dataset, _init(tiny_dataset, spec), device=torch.device("cpu"),
                           progress=False, **_paths(tmp_path))
    monkeypatch.setattr(io, "save_state_tree", real_save)
    other = _spec(lr=0.02)
    runner.execute_run(other, tiny_dataset, _init(tiny_dataset, other), device=torch.device("cpu"),
                       progress=False, **_paths(tmp_path))
    fresh = tmp_path / "fresh"
    runner.execute_run(other, tiny_dataset, _init(tiny_dataset, other), device=torch.device("cpu"),
                       progress=False, **_paths(fresh))
    a = pd.read_parquet(tmp_path / "metrics.parquet").drop(columns="wall_time")
    b = pd.read_parquet(fresh / "metrics.parquet").drop(columns="wall_time")
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_diverged_run_is_written_and_flagged(tiny_dataset, tmp_path):
    spec = _spec(epochs=4, checkpoint_epochs=(1, 3, 4))
    spec["optimizer"], spec["optimizer_spec"] = "sgd", {"algorithm": "sgd", "lr": 1e8}
    spec["model_spec"] = {"arch": "mlp", "hidden": [16]}
    state = runner.execute_run(spec, tiny_dataset, _init(tiny_dataset, spec), device=torch.device("cpu"),
                               progress=False, **_paths(tmp_path))
    assert state.diverged
    df = pd.read_parquet(tmp_path / "metrics.parquet")
    assert df["diverged"].iloc[-1] and not df["diverged"].iloc[:-1].any()
    _, meta = io.load_checkpoint(tmp_path / "final.safetensors")
    assert meta["diverged"] is True
    # every checkpoint the spec promises exists, so downstream jobs can run (and see the flag)
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.safetensors"))
    assert names == ["epoch0001.safetensors", "epoch0003.safetensors", "epoch0004.safetensors"]


def test_switch_run_continues_the_prefix_with_a_fresh_second_optimizer(tiny_dataset, tmp_path):
    from lossland.data import DeviceBatches
    from lossland.evaluation import default_loss

    prefix = _spec(epochs=3, lr=0.1, checkpoint_epochs=(1, 2, 3))
    prefix.update(run="mlp_sgd-lr0.1_init0", optimizer="sgd", model="mlp", kind="train",
                  model_spec={"arch": "mlp", "hidden": [16]}, optimizer_spec={"algorithm": "sgd", "lr": 0.1})
    init = _init(tiny_dataset, prefix)
    runner.execute_run(prefix, tiny_dataset, init, device=torch.device("cpu"), progress=False,
                       **_paths(tmp_path / "prefix"))
    switch = dict(prefix, run="mlp_S1-A2_init0", kind="switch", optimizer="S1-A2", first="sgd",
                  first_spec=prefix["optimizer_spec"], then="adam", optimizer_spec={"algorithm": "adam", "lr": 0.01},
                  switch_epoch=1, prefix_run=prefix["run"])
    start = runner.switch_start_from(tmp_path / "prefix" / "metrics.parquet", tmp_path / "prefix" / "checkpoints", 1)
    runner.execute_run(switch, tiny_dataset, init, device=torch.device("cpu"), progress=False,
                       switch_start=start, **_paths(tmp_path / "switch"))

    # reference by hand: the prefix's weights after epoch 1, then a new Adam on epochs 2 and 3's batches
    model = create_model(prefix["model_spec"], tiny_dataset.input_shape, tiny_dataset.num_classes)
    model.load_state_dict(io.load_checkpoint(tmp_path / "prefix" / "checkpoints" / "epoch0001.safetensors")[0])
    adam = torch.optim.Adam(model.parameters(), lr=0.01)
    train = tiny_dataset["train"]
    batches = DeviceBatches(train.x, train.y, 50, 0, augment=True)
    model.train()
    for epoch in (2, 3):
        for xb, yb in batches.epoch(epoch):
            adam.zero_grad()
            default_loss(model(xb), yb).backward()
            adam.step()
    got, _ = io.load_checkpoint(tmp_path / "switch" / "final.safetensors")
    for k, v in model.state_dict().items():
        assert torch.allclose(got[k], v, atol=1e-6), k

    a = pd.read_parquet(tmp_path / "prefix" / "metrics.parquet")
    b = pd.read_parquet(tmp_path / "switch" / "metrics.parquet")
    assert b["epoch"].tolist() == [0, 1, 2, 3]
    assert b["phase"].tolist() == ["sgd", "sgd", "adam", "adam"] and (a["phase"] == "sgd").all()
    cols = ["train_loss", "test_acc", "dist_from_init", "lr"]
    pd.testing.assert_frame_equal(a.loc[:1, cols], b.loc[:1, cols])
    assert b["lr"].tolist()[2:] == [0.01, 0.01] and (b["run"] == "mlp_S1-A2_init0").all()
    assert b["algorithm"].iloc[0] == "sgd->adam"
    assert b["dist_from_init"].iloc[3] != a["dist_from_init"].iloc[3]
    # the checkpoint at the switch epoch is the prefix's, shared; later ones are the switch run's own
    c1 = io.load_checkpoint(tmp_path / "switch" / "checkpoints" / "epoch0001.safetensors")[0]
    p1 = io.load_checkpoint(tmp_path / "prefix" / "checkpoints" / "epoch0001.safetensors")[0]
    assert all(torch.equal(c1[k], p1[k]) for k in p1)
    assert (tmp_path / "switch" / "checkpoints" / "epoch0003.safetensors").exists()


def test_switch_run_needs_its_prefix(tiny_dataset, tmp_path):
    spec = dict(_spec(), kind="switch", first="sgd", first_spec={"algorithm": "sgd", "lr": 0.1}, then="adam",
                switch_epoch=1, prefix_run="x")
    with pytest.raises(ValueError, match="needs switch_start"):
        runner.execute_run(spec, tiny_dataset, _init(tiny_dataset, spec), device=torch.device("cpu"),
                           progress=False, **_paths(tmp_path))
    with pytest.raises(FileNotFoundError, match="no checkpoint at the switch epoch 2"):
        (tmp_path / "m").mkdir()
        runner.switch_start_from(_write_empty_metrics(tmp_path), tmp_path / "m", 2)


def _write_empty_metrics(tmp_path):
    path = tmp_path / "metrics.parquet"
    pd.DataFrame({"epoch": [0], "run": ["x"]}).to_parquet(path)
    return path
