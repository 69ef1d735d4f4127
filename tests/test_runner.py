import pandas as pd
import pytest
import torch

from lossland import io, runner, study
from lossland.models import create_model


def _spec(epochs=3, lr=0.01, checkpoint_epochs=(1, 2)):
    training = dict(study.TRAINING_DEFAULTS, epochs=epochs, batch_size=50, augment=True,
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
    state = runner.execute_run(spec, tiny_dataset, _init(tiny_dataset, spec), device=torch.device("cpu"),
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
    real_save = io.torch_save_atomic
    calls = {"n": 0}

    def dying_save(obj, path):
        real_save(obj, path)
        calls["n"] += 1
        if obj["state"]["epoch"] == 2:
            raise KeyboardInterrupt("killed after epoch 2")

    monkeypatch.setattr(io, "torch_save_atomic", dying_save)
    with pytest.raises(KeyboardInterrupt):
        runner.execute_run(spec, tiny_dataset, _init(tiny_dataset, spec), device=torch.device("cpu"),
                           progress=False, **_paths(killed))
    monkeypatch.setattr(io, "torch_save_atomic", real_save)
    # nothing that looks finished, but a resume point
    assert not (killed / "metrics.parquet").exists() and not (killed / "final.safetensors").exists()
    assert (killed / ".partial" / "resume.pt").exists()

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
    real_save = io.torch_save_atomic

    def dying_save(obj, path):
        real_save(obj, path)
        if obj["state"]["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(io, "torch_save_atomic", dying_save)
    with pytest.raises(KeyboardInterrupt):
        runner.execute_run(spec, tiny_dataset, _init(tiny_dataset, spec), device=torch.device("cpu"),
                           progress=False, **_paths(tmp_path))
    monkeypatch.setattr(io, "torch_save_atomic", real_save)
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
