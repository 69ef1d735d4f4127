"""Penn Treebank as token sequences and the LSTM language model: tokenising, the vocabulary,
chunking into next-token pairs, the shipped splits' known sizes, the ``ptb`` folder source and its
errors; the LSTM's shapes and per-token loss, the batch order it shares across optimizers, a run
that resumes to the uninterrupted result, and the line engine's endpoints equal to evaluate()."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from lossland import data, evaluate, io
from lossland import landscape as L
from lossland.data import DataError
from lossland.models import LSTMLanguageModel, build_model, create_model, init_weights
from lossland.optim import make_optimizer
from lossland.pipeline import runner
from lossland.pipeline.runs import TRAINING_DEFAULTS
from lossland.training import TrainSettings, train

SHARED_PTB = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb"
LSTM_SPEC = {"arch": "lstm", "embedding": 8, "hidden": 8, "layers": 1, "init": {"scheme": "default"}}


@pytest.fixture(scope="module")
def small_text() -> data.PreparedDataset:
    return data.prepare_source({"source": "ptb-embedded", "train_tokens": 1200, "test_tokens": 600,
                                "vocab_size": 100, "seq_len": 10})


# --------------------------------------------------------------------------- data


def test_the_pipeline_knows_the_librarys_text_sources_and_options():
    import inspect

    from lossland.pipeline import config as C

    assert C.TEXT_SOURCES == data.TEXT_SOURCES
    assert set(data.TEXT_OPTIONS) == set(inspect.signature(data.prepare_text).parameters) - {"raw", "source"}


def test_tokenize_ends_every_line_with_eos():
    assert data.tokenize(" a b \n\nc\n") == ["a", "b", "<eos>", "<eos>", "c", "<eos>"]


def test_vocabulary_keeps_the_most_frequent_words_and_maps_the_rest_to_unk():
    tokens = "b a a c c c d <unk> b".split()
    assert data.build_vocabulary(tokens) == ("<unk>", "<eos>", "c", "b", "a", "d")  # ties: seen first
    vocab = data.build_vocabulary(tokens, 4)
    assert vocab == ("<unk>", "<eos>", "c", "b")
    assert data.encode(["c", "a", "zzz", "b"], vocab).tolist() == [2, 0, 0, 3]
    with pytest.raises(ValueError, match="at least 2"):
        data.build_vocabulary(tokens, 1)


def test_sequences_are_next_token_pairs_without_overlap():
    ids = torch.arange(23)
    s = data.sequences(ids, 5)
    assert s.x.shape == (4, 5) and s.y.shape == (4, 5)  # (23 − 1) // 5 = 4 sequences
    assert torch.equal(s.x.flatten(), ids[:20]) and torch.equal(s.y, s.x + 1)


def test_shipped_splits_have_ptbs_known_token_counts():
    raw = data.read_text_source("ptb-embedded")
    # Mikolov's PTB: 73 760 validation and 82 430 test tokens, <eos> included
    assert {k: len(v) for k, v in raw.splits.items()} == {"valid": 73760, "test": 82430}
    if SHARED_PTB.is_dir():  # the shipped files are the shared ones, compressed
        for split in ("valid", "test"):
            shipped = gzip.decompress(data.embedded_ptb_files()[split].read_bytes())
            assert shipped == (SHARED_PTB / f"ptb.{split}.txt").read_bytes()


def test_prepared_text_trains_on_a_validation_slice_with_its_own_vocabulary(small_text):
    ds = small_text
    assert ds.meta["kind"] == "text" and ds.meta["source_splits"] == {"train": "valid", "test": "test"}
    assert ds.input_shape == (10,) and ds.num_classes == 100 and ds.mean == () and ds.std == ()
    assert len(ds["train"]) == 1199 // 10 and len(ds["test"]) == 599 // 10
    assert ds["train"].x.dtype == torch.int64 and int(ds["train"].x.max()) < 100
    raw = data.read_text_source("ptb-embedded")
    vocab = data.build_vocabulary(raw["valid"][:1200], 100)
    assert ds.classes == vocab
    assert torch.equal(ds["train"].x.flatten(), data.encode(raw["valid"][:1190], vocab))


def test_splits_cut_from_one_source_split_do_not_overlap():
    raw = data.RawText({"train": [f"w{i}" for i in range(100)], "test": ["x"] * 50})
    ds = data.prepare_text(raw, train_split="train", val_split="train", train_tokens=40, val_tokens=30,
                           seq_len=9)
    vocab = ds.classes
    train_words = {vocab[i] for i in ds["train"].x.flatten().tolist()}
    assert train_words <= {f"w{i}" for i in range(40)}
    assert {vocab[i] for i in ds["val"].y.flatten().tolist()} == {"<unk>"}  # w40..w69: not training words
    with pytest.raises(ValueError, match="val_tokens 70: the train split has 60 tokens left"):
        data.prepare_text(raw, train_split="train", val_split="train", train_tokens=40, val_tokens=70)


def test_ptb_folder_source_reads_the_three_files_and_names_a_missing_one(tmp_path):
    for split, text in (("train", "a b c\nb c d\n" * 20), ("valid", "a b\n" * 10), ("test", "c d\n" * 10)):
        (tmp_path / f"ptb.{split}.txt").write_text(text)
    ds = data.prepare_source({"source": "ptb", "path": str(tmp_path), "seq_len": 4})
    assert ds.meta["source_splits"] == {"train": "train", "test": "test"}
    assert set(ds.classes) == {"<unk>", "<eos>", "a", "b", "c", "d"}
    assert len(ds["train"]) == (20 * 8 - 1) // 4
    (tmp_path / "ptb.valid.txt").unlink()
    with pytest.raises(DataError, match=r"ptb\.valid\.txt is missing"):
        data.read_ptb(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        data.read_ptb(tmp_path / "nope")
    with pytest.raises(ValueError, match="no train split"):
        data.read_text_source("ptb-embedded", splits=["train"])


def test_prepared_text_round_trips_through_its_file(small_text, tmp_path):
    data.save_prepared(small_text, tmp_path / "ptb.safetensors")
    back = data.load_prepared(tmp_path / "ptb.safetensors")
    assert back.classes == small_text.classes and back.input_shape == (10,) and back.mean == ()
    assert torch.equal(back["test"].y, small_text["test"].y)


# --------------------------------------------------------------------------- the model


def test_lstm_gives_per_token_logits_and_loss(small_text):
    model = build_model(LSTM_SPEC, small_text.input_shape, small_text.num_classes)
    assert isinstance(model, LSTMLanguageModel)
    x, y = small_text["test"].as_tuple()
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (x.shape[0], 100, 10)
    # mean per-token cross-entropy, and accuracy as the share of tokens predicted
    flat = logits.transpose(1, 2).reshape(-1, 100)
    res = evaluate(model, (x, y), batch_size=7)
    assert res["loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(flat, y.flatten())), rel=1e-5)
    assert res["accuracy"] == pytest.approx(float((flat.argmax(1) == y.flatten()).double().mean()))
    # the default init: uniform in ±0.1, so the untrained model is near the uniform guess, log V
    assert all(float(p.detach().abs().max()) <= 0.1 for p in model.parameters())
    assert res["loss"] == pytest.approx(math.log(100), abs=0.05)
    with pytest.raises(ValueError, match="token sequences"):
        build_model(LSTM_SPEC, (3, 8, 8), 10)


def test_init_schemes_reach_the_lstms_weights():
    model = LSTMLanguageModel(50, 8, 8)
    init_weights(model, "normal", mean=-1.0, std=0.01)
    assert all(abs(float(p.detach().mean()) + 1.0) < 0.01 for p in model.parameters())
    init_weights(model, "glorot")
    assert float(model.lstm.bias_ih_l0.abs().max()) == 0.0 and float(model.lstm.weight_hh_l0.abs().max()) > 0.1
    tied = LSTMLanguageModel(50, 8, 8, tie_weights=True)
    assert tied.decoder.weight is tied.embedding.weight
    with pytest.raises(ValueError, match="embedding == hidden"):
        LSTMLanguageModel(50, 8, 16, tie_weights=True)


def test_every_optimizer_sees_the_same_batch_order(small_text, monkeypatch):
    """One data seed, one minibatch order: the batches an Adam and an SGD run read are identical."""
    seen: dict[str, list[torch.Tensor]] = {}
    for name, opt in (("sgd", {"algorithm": "sgd", "lr": 1.0}), ("adam", {"algorithm": "adam", "lr": 0.01})):
        model = create_model(LSTM_SPEC, small_text.input_shape, small_text.num_classes, seed=0)
        batches = seen.setdefault(name, [])
        forward = model.forward

        def recording(tokens, forward=forward, batches=batches):
            if torch.is_grad_enabled():
                batches.append(tokens.clone())
            return forward(tokens)

        monkeypatch.setattr(model, "forward", recording)
        train(model, make_optimizer(model.parameters(), opt), small_text.splits,
              TrainSettings(epochs=2, batch_size=20, data_seed=3), progress=False)
    assert len(seen["sgd"]) == len(seen["adam"]) == 2 * math.ceil(len(small_text["train"]) / 20)
    assert all(torch.equal(a, b) for a, b in zip(seen["sgd"], seen["adam"]))
    assert not torch.equal(seen["sgd"][0], seen["sgd"][len(seen["sgd"]) // 2])  # epochs differ


def _lstm_run(epochs=3):
    training = dict(TRAINING_DEFAULTS, epochs=epochs, batch_size=20, grad_clip=5.0, checkpoint_epochs=[1])
    return {"run": "lstm_sgd_init0", "dataset": "text", "model": "lstm", "model_spec": LSTM_SPEC,
            "optimizer": "sgd", "optimizer_spec": {"algorithm": "sgd", "lr": 1.0}, "init_seed": 0,
            "data_seed": 0, "training": training}


def test_lstm_run_has_perplexity_and_resumes_to_the_uninterrupted_result(small_text, tmp_path, monkeypatch):
    spec = _lstm_run()
    init = create_model(LSTM_SPEC, small_text.input_shape, small_text.num_classes, seed=0).state_dict()

    def paths(root):
        return {"metrics_path": root / "m.parquet", "final_path": root / "final.safetensors",
                "checkpoints_dir": root / "ckpt"}

    runner.execute_run(spec, small_text, init, device=torch.device("cpu"), progress=False, **paths(tmp_path / "a"))
    real_save = io.save_state_tree

    def dying_save(obj, path):
        real_save(obj, path)
        if obj["state"]["epoch"] == 2:
            raise KeyboardInterrupt("killed after epoch 2")

    monkeypatch.setattr(io, "save_state_tree", dying_save)
    with pytest.raises(KeyboardInterrupt):
        runner.execute_run(spec, small_text, init, device=torch.device("cpu"), progress=False, **paths(tmp_path / "b"))
    monkeypatch.setattr(io, "save_state_tree", real_save)
    assert not (tmp_path / "b" / "m.parquet").exists()
    runner.execute_run(spec, small_text, init, device=torch.device("cpu"), progress=False, **paths(tmp_path / "b"))
    a = pd.read_parquet(tmp_path / "a" / "m.parquet").drop(columns="wall_time")
    b = pd.read_parquet(tmp_path / "b" / "m.parquet").drop(columns="wall_time")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    cols = list(a.columns)
    assert cols.index("train_perplexity") == cols.index("train_loss") + 1
    assert a["test_perplexity"].to_numpy() == pytest.approx(a["test_loss"].map(math.exp).to_numpy())
    assert a["test_perplexity"].iloc[-1] < a["test_perplexity"].iloc[0]  # it learns
    model, _ = runner.model_from_checkpoint(tmp_path / "a" / "final.safetensors")
    assert evaluate(model, small_text["test"].as_tuple())["loss"] == pytest.approx(a["test_loss"].iloc[-1], rel=1e-5)


def test_line_endpoints_of_an_lstm_equal_evaluate(small_text):
    a = create_model(LSTM_SPEC, small_text.input_shape, small_text.num_classes, seed=0)
    b = create_model(dict(LSTM_SPEC, init={"scheme": "glorot"}), small_text.input_shape, small_text.num_classes, seed=1)
    split = small_text["train"].as_tuple()
    line = L.interpolate(a, a.state_dict(), b.state_dict(), [0.0, 0.5, 1.0], split)
    for alpha, model in ((0.0, a), (1.0, b)):
        row = line[line["alpha"] == alpha].iloc[0]
        ref = evaluate(model, split)
        assert row["loss"] == pytest.approx(ref["loss"], rel=1e-5)
        assert row["accuracy"] == pytest.approx(ref["accuracy"], abs=1e-12)
