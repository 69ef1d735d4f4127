import json

import pandas as pd
import pytest
import torch

from lossland import io


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_on_success(tmp_path):
    target = tmp_path / "a" / "b.txt"
    with io.atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("done")
    assert target.read_text() == "done"
    assert [p.name for p in target.parent.iterdir()] == ["b.txt"]


def test_parquet_carries_provenance(tmp_path):
    df = pd.DataFrame({"run": ["a", "b"], "loss": [0.5, 0.25]})
    params = {"lr": 0.1, "model": {"arch": "nin"}}
    io.write_parquet(df, tmp_path / "t.parquet", io.provenance(params, device="cpu"))
    pd.testing.assert_frame_equal(io.read_parquet(tmp_path / "t.parquet"), df)
    prov = io.read_provenance(tmp_path / "t.parquet")
    assert prov["config_hash"] == io.config_hash({"model": {"arch": "nin"}, "lr": 0.1})
    assert prov["params"] == params and prov["device"] == "cpu"
    assert {"torch", "lossland", "python"} <= set(prov["versions"])
    assert "git_commit" in prov


def test_config_hash_is_order_free_and_value_sensitive():
    assert io.config_hash({"a": 1, "b": [1, 2]}) == io.config_hash({"b": [1, 2], "a": 1})
    assert io.config_hash({"a": 1}) != io.config_hash({"a": 2})


def test_checkpoint_roundtrip_with_sidecar(tmp_path):
    tensors = {"w": torch.randn(3, 4).t(), "n": torch.tensor(5)}  # a non-contiguous view too
    io.save_checkpoint(tensors, tmp_path / "c.safetensors", {"epoch": 3, "model": "nin"})
    back, meta = io.load_checkpoint(tmp_path / "c.safetensors")
    assert torch.equal(back["w"], tensors["w"]) and torch.equal(back["n"], tensors["n"])
    assert meta == {"epoch": 3, "model": "nin"}
    assert json.loads((tmp_path / "c.json").read_text())["epoch"] == 3


def test_concat_parquet(tmp_path):
    for i in range(2):
        io.write_parquet(pd.DataFrame({"x": [i]}), tmp_path / f"{i}.parquet", io.provenance({"i": i}))
    df, parts = io.concat_parquet([tmp_path / "0.parquet", tmp_path / "1.parquet"])
    assert df["x"].tolist() == [0, 1]
    assert parts[1]["config_hash"] == io.config_hash({"i": 1})


def test_atomic_writes_get_the_usual_permissions(tmp_path):
    import os
    import stat

    from lossland import io as lio

    lio.write_json({"a": 1}, tmp_path / "x.json")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o666 & ~umask
