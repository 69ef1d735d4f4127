"""Safe loading: weights and resume points are read through safetensors only, and a
checkpoint that does not fit the model its sidecar names is refused with a clear error."""

import ast
import json
import math
import pickle
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors import SafetensorError
from torch import nn

from lossland import io
from lossland.models import create_model
from lossland.pipeline import jobs, runner
from lossland.pipeline.runs import TRAINING_DEFAULTS
from lossland.training import TrainState, snapshot

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("src", "workflow", "tests", "benchmarks", "tools")
NEEDLE = "torch" + ".load("  # spelled apart so that this file holds no such call


# --------------------------------------------------------------------------- no unsafe torch.load


def _is_torch_load(node: ast.AST) -> bool:
    f = getattr(node, "func", None)
    return isinstance(node, ast.Call) and isinstance(f, ast.Attribute) and f.attr == "load" \
        and isinstance(f.value, ast.Name) and f.value.id == "torch"


def _weights_only(call: ast.Call) -> bool:
    return any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in call.keywords)


def unsafe_loads_in_python(text: str) -> list[int]:
    """Line numbers of ``torch.load`` calls without ``weights_only=True`` in Python source."""
    return [n.lineno for n in ast.walk(ast.parse(text)) if _is_torch_load(n) and not _weights_only(n)]


def unsafe_loads_in_text(text: str) -> list[int]:
    """The same for Snakemake files (not Python): each call's text up to its closing parenthesis."""
    lines = []
    for m in re.finditer(re.escape(NEEDLE), text):
        depth, end = 1, m.end()
        while depth and end < len(text):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        if not re.search(r"weights_only\s*=\s*True\b", text[m.end():end]):
            lines.append(text.count("\n", 0, m.start()) + 1)
    return lines


def _scanned_files() -> list[Path]:
    files = [ROOT / "Snakefile"]
    for top in SCANNED:
        files += [p for p in (ROOT / top).rglob("*") if p.suffix in (".py", ".smk")]
    return [p for p in files if p.is_file()]


def test_the_scanners_see_multiline_calls_and_accept_weights_only():
    unsafe = "import torch\nx = " + NEEDLE + "\n    'a.pt',\n    map_location='cpu',\n)\n"
    safe = "import torch\nx = " + NEEDLE + "'a.pt',\n weights_only=True)\n"
    assert unsafe_loads_in_python(unsafe) == [2] and unsafe_loads_in_python(safe) == []
    assert unsafe_loads_in_text(unsafe) == [2] and unsafe_loads_in_text(safe) == []
    assert unsafe_loads_in_python(unsafe.replace("map_location='cpu'", "weights_only=False")) == [2]


def test_no_torch_load_without_weights_only_anywhere():
    files = _scanned_files()
    assert len(files) > 20 and ROOT / "src" / "lossland" / "io.py" in files
    found = []
    for path in files:
        text = path.read_text()
        scan = unsafe_loads_in_python if path.suffix == ".py" else unsafe_loads_in_text
        found += [f"{path.relative_to(ROOT)}:{line}" for line in scan(text)]
    assert not found, f"{NEEDLE}...) without weights_only=True: {', '.join(found)}"


class _Payload:
    """Unpickling this creates the file ``marker``: proof that a load ran code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_checkpoint_loading_never_unpickles(tmp_path):
    marker = tmp_path / "code-ran"
    fake = tmp_path / "w.safetensors"
    fake.write_bytes(pickle.dumps({"w": _Payload(marker)}))
    with pytest.raises(SafetensorError):
        io.load_checkpoint(fake)
    with pytest.raises(SafetensorError):
        io.load_state_tree(fake)
    torch.save({"w": torch.ones(2)}, fake)  # a torch pickle under a safetensors name
    with pytest.raises(SafetensorError):
        io.load_checkpoint(fake)
    assert not marker.exists()


# --------------------------------------------------------------------------- state trees


def same(a, b) -> bool:
    """``b`` (reloaded) equals ``a``: the same types all the way down (any dict comes back a plain dict),
    equal tensors (dtype too), NaN equal to NaN."""
    if type(a) is not type(b) and not (isinstance(a, dict) and type(b) is dict):
        return False
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(type(k) is type(j) for k, j in zip(a, b)) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def _steps(model, optimizer, n, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x, y = torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


@pytest.mark.parametrize("make", [
    lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.8, 0.99)),
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
], ids=["adam", "sgd-momentum"])
def test_state_tree_roundtrip_continues_an_optimizer_bit_identically(tmp_path, make):
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    optimizer = make(model.parameters())
    _steps(model, optimizer, 3, seed=1)
    tree = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
    io.save_state_tree(tree, tmp_path / "s.safetensors")
    back = io.load_state_tree(tmp_path / "s.safetensors")
    assert same(tree, back)
    assert set(back["optimizer"]["state"]) == {0, 1}  # int keys, not "0", "1"

    copy = nn.Linear(4, 3)
    copy.load_state_dict(back["model"])
    copy_optimizer = make(copy.parameters())
    copy_optimizer.load_state_dict(back["optimizer"])
    _steps(model, optimizer, 3, seed=2)
    _steps(copy, copy_optimizer, 3, seed=2)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), copy.state_dict().values()))
    assert same(copy_optimizer.state_dict(), optimizer.state_dict())


def test_state_tree_roundtrip_of_a_train_state(tmp_path):
    model = nn.Linear(4, 3)
    optimizer = torch.optim.Adam(model.parameters())
    _steps(model, optimizer, 2, seed=0)
    records = [{"epoch": 0, "train_loss": 1.5, "grad_norm": math.nan, "diverged": False, "phase": "adam"},
               {"epoch": 1, "train_loss": math.inf, "grad_norm": -0.0, "diverged": True, "phase": "adam"}]
    state = snapshot(TrainState(1, records, True, 12.25), model, optimizer).to_dict()
    tree = {"key": "abc", "state": state, "extra": [None, (1, 2.0, "x"), {(1, 2): [], 3: torch.zeros(0)}]}
    io.save_state_tree(tree, tmp_path / "s.safetensors")
    back = io.load_state_tree(tmp_path / "s.safetensors")
    assert same(tree, back)
    assert same(TrainState.from_dict(back["state"]).to_dict(), state)
    assert not same({0: (1,)}, {"0": (1,)}) and not same((1,), [1]) and not same(1, 1.0)  # same() is strict


def test_a_shared_tensor_is_stored_once(tmp_path):
    t = torch.arange(3.0)
    io.save_state_tree({"a": t, "b": [t]}, tmp_path / "s.safetensors")
    back = io.load_state_tree(tmp_path / "s.safetensors")
    assert back["a"] is back["b"][0] and torch.equal(back["a"], t)


def test_a_plain_checkpoint_is_not_a_state_tree(tmp_path):
    io.save_tensors({"w": torch.ones(2)}, tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match=r"w\.safetensors: not a state tree"):
        io.load_state_tree(tmp_path / "w.safetensors")


# --------------------------------------------------------------------------- resume through execute_run


def _spec(lr=0.05, epochs=3):
    training = dict(TRAINING_DEFAULTS, epochs=epochs, batch_size=50, augment=True, checkpoint_epochs=[1, 2])
    return {
        "run": "mlp_adam_init0", "study": "optimizer_study", "dataset": "tiny", "model": "mlp",
        "model_spec": {"arch": "mlp", "hidden": [16]},
        "optimizer": "adam", "optimizer_spec": {"algorithm": "adam", "lr": lr},
        "init_seed": 0, "data_seed": 0, "training": training,
    }


def _run(spec, ds, root, **kw):
    init = create_model(spec["model_spec"], ds.input_shape, ds.num_classes, seed=0).state_dict()
    return runner.execute_run(spec, ds, init, device=torch.device("cpu"), progress=False,
                              metrics_path=root / "metrics.parquet", final_path=root / "final.safetensors",
                              checkpoints_dir=root / "checkpoints", **kw)


def _kill_after(monkeypatch, epoch):
    real = io.save_state_tree

    def dying(tree, path):
        real(tree, path)
        if tree["state"]["epoch"] == epoch:
            raise KeyboardInterrupt(f"killed after epoch {epoch}")

    monkeypatch.setattr(io, "save_state_tree", dying)
    return lambda: monkeypatch.setattr(io, "save_state_tree", real)


def _same_outputs(a: Path, b: Path) -> None:
    pd.testing.assert_frame_equal(pd.read_parquet(a / "metrics.parquet").drop(columns="wall_time"),
                                  pd.read_parquet(b / "metrics.parquet").drop(columns="wall_time"), check_exact=True)
    wa, wb = io.load_checkpoint(a / "final.safetensors")[0], io.load_checkpoint(b / "final.safetensors")[0]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_execute_run_resumes_from_a_safetensors_resume_point(tiny_dataset, tmp_path, monkeypatch):
    spec = _spec()
    _run(spec, tiny_dataset, tmp_path / "straight")
    restore = _kill_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        _run(spec, tiny_dataset, tmp_path / "killed")
    restore()
    partial = tmp_path / "killed" / ".partial"
    assert (partial / "resume.safetensors").exists() and not (partial / "resume.pt").exists()
    assert io.load_state_tree(partial / "resume.safetensors")["key"] == io.config_hash(spec)
    assert _run(spec, tiny_dataset, tmp_path / "killed").epoch == 3
    _same_outputs(tmp_path / "straight", tmp_path / "killed")


def test_execute_run_discards_the_resume_point_of_another_spec(tiny_dataset, tmp_path, monkeypatch):
    restore = _kill_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        _run(_spec(lr=0.05), tiny_dataset, tmp_path / "a")
    restore()
    other = _spec(lr=0.02)
    _run(other, tiny_dataset, tmp_path / "a")
    _run(other, tiny_dataset, tmp_path / "fresh")
    _same_outputs(tmp_path / "a", tmp_path / "fresh")


# --------------------------------------------------------------------------- checkpoints that do not fit


def _checkpoint(ds, path: Path, model_spec=None, seed=0) -> Path:
    """A checkpoint as execute_run writes it: the weights plus runner.checkpoint_meta's sidecar."""
    spec = dict(_spec(), model_spec=model_spec or {"arch": "mlp", "hidden": [16]})
    model = create_model(spec["model_spec"], ds.input_shape, ds.num_classes, seed=seed)
    meta = runner.checkpoint_meta(spec, ds, TrainState(0), torch.device("cpu"))
    io.save_checkpoint(model.state_dict(), path, meta)
    return path


def _edit_sidecar(path: Path, **changes) -> None:
    side = io.sidecar_path(path)
    side.write_text(json.dumps({**json.loads(side.read_text()), **changes}))


def test_a_fitting_checkpoint_loads(tiny_dataset, tmp_path):
    a = _checkpoint(tiny_dataset, tmp_path / "a.safetensors", seed=0)
    b = _checkpoint(tiny_dataset, tmp_path / "b.safetensors", seed=1)
    model, meta = runner.model_from_checkpoint(a)
    assert meta["model_spec"] == {"arch": "mlp", "hidden": [16]}
    model, states = jobs.load_weights([(a, 0), (b, 0), (a, 0)])
    assert len(states) == 3 and states[0] is states[2]
    assert all(torch.equal(v, states[0][k]) for k, v in model.state_dict().items())
    assert any(not torch.equal(v, states[1][k]) for k, v in states[0].items())


def _refused_by_both_loaders(path, pattern: str) -> None:
    """Both ways a job loads weights refuse ``path`` with a ValueError matching ``pattern``."""
    with pytest.raises(ValueError, match=pattern):
        runner.model_from_checkpoint(path)
    with pytest.raises(ValueError, match=pattern):
        jobs.load_weights([(path, 0)])


def test_tensors_of_the_wrong_shape_are_refused(tiny_dataset, tmp_path):
    path = _checkpoint(tiny_dataset, tmp_path / "w.safetensors")
    tensors, meta = io.load_checkpoint(path)
    tensors["net.1.weight"] = torch.zeros(3, 5)
    io.save_checkpoint(tensors, path, meta)
    pattern = r"w\.safetensors: the tensors do not fit .*net\.1\.weight checkpoint \[3, 5\] vs model \[16, 192\]"
    _refused_by_both_loaders(path, pattern)


def test_missing_and_unexpected_tensors_are_named(tiny_dataset, tmp_path):
    path = _checkpoint(tiny_dataset, tmp_path / "w.safetensors")
    tensors, meta = io.load_checkpoint(path)
    tensors["extra.weight"] = tensors.pop("net.3.weight")
    io.save_checkpoint(tensors, path, meta)
    with pytest.raises(ValueError, match=r"net\.3\.weight missing from the checkpoint \(model \[10, 16\]\); "
                                         r"extra\.weight not in the model \(checkpoint \[10, 16\]\)"):
        runner.model_from_checkpoint(path)


@pytest.mark.parametrize("model_spec", [{"arch": "mlp", "hidden": [32]},
                                        {"arch": "nin", "width": 0.125, "depth": 2}],
                         ids=["mlp-wider", "nin"])
def test_a_sidecar_naming_another_architecture_is_refused(tiny_dataset, tmp_path, model_spec):
    path = _checkpoint(tiny_dataset, tmp_path / "w.safetensors")
    _edit_sidecar(path, model_spec=model_spec)
    pattern = rf"w\.safetensors: the tensors do not fit the model its sidecar describes \('mlp', " \
              rf"{re.escape(str(model_spec))}.*net\.1\.weight (checkpoint \[16, 192\] vs model|not in the model)"
    _refused_by_both_loaders(path, pattern)


def test_a_sidecar_naming_an_unknown_architecture_is_refused(tiny_dataset, tmp_path):
    path = _checkpoint(tiny_dataset, tmp_path / "w.safetensors")
    _edit_sidecar(path, model_spec={"arch": "densenet"})
    with pytest.raises(ValueError, match=r"w\.safetensors: its sidecar describes no buildable model.*unknown model"):
        runner.model_from_checkpoint(path)


def test_a_missing_sidecar_is_named(tiny_dataset, tmp_path):
    path = _checkpoint(tiny_dataset, tmp_path / "w.safetensors")
    io.sidecar_path(path).unlink()
    with pytest.raises(FileNotFoundError, match=r"w\.safetensors: no sidecar .*w\.json"):
        runner.model_from_checkpoint(path)
    with pytest.raises(FileNotFoundError, match=r"no sidecar .*w\.json"):
        jobs.load_weights([(path, 0)])


def test_load_weights_refuses_files_of_different_models(tiny_dataset, tmp_path):
    a = _checkpoint(tiny_dataset, tmp_path / "a.safetensors")
    b = _checkpoint(tiny_dataset, tmp_path / "b.safetensors", model_spec={"arch": "mlp", "hidden": [8]})
    with pytest.raises(ValueError, match=r"a\.safetensors and .*b\.safetensors hold weights of different models: "
                                         r"model_spec .*\[16\].* vs .*\[8\]"):
        jobs.load_weights([(a, 0), (b, 0)])
    c = _checkpoint(tiny_dataset, tmp_path / "c.safetensors")
    _edit_sidecar(c, num_classes=5)
    with pytest.raises(ValueError, match=r"a\.safetensors and .*c\.safetensors .*num_classes 10 vs 5"):
        jobs.load_weights([(a, 0), (c, 0)])
