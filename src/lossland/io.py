"""Atomic file writes, Parquet tables with provenance, safetensors checkpoints.

Everything that lands where a finished output belongs goes through
:func:`atomic_path`: the bytes are written to a temporary file in the same
folder and renamed into place only once complete, so an interrupted job never
leaves a file that looks finished.

This module knows no model: checkpoints are plain ``{name: tensor}`` dicts, and a
training resume point is a state tree (:func:`save_state_tree`). Nothing here
unpickles: every tensor file is read through safetensors.
It imports neither torch nor safetensors until a tensor is read or written, so
table-only jobs (and :mod:`lossland.plots`) run without loading torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import torch

PROVENANCE_KEY = b"lossland.provenance"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the result the permissions a plain open() would (umask)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(text: str, path: str | os.PathLike) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (Path,)):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def config_hash(obj: Any) -> str:
    """A short, stable hash of a JSON-serialisable object (key order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _checkout() -> Path | None:
    """The git checkout this package runs from (``src/lossland`` of a clone), if it is one."""
    root = Path(__file__).resolve().parents[2]
    return root if Path(__file__).resolve().parent.parent.name == "src" and (root / ".git").exists() else None


@lru_cache(maxsize=4)
def git_commit(directory: str | os.PathLike | None = None) -> str:
    """The commit (``-dirty`` with uncommitted changes to tracked files) of ``directory``; by
    default of the code: the checkout this package runs from, whatever the working directory
    (a workflow's jobs run in their results folder), else the working directory's. The
    environment variable ``LOSSLAND_GIT_COMMIT`` overrides it; ``"unknown"`` outside git."""
    env_commit = os.environ.get("LOSSLAND_GIT_COMMIT")
    if env_commit:
        return env_commit
    where = str(directory or _checkout() or Path.cwd())
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True, cwd=where,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True, cwd=where,
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@lru_cache(maxsize=1)
def _torch_version() -> str:
    """``torch.__version__`` without importing torch: read from torch's generated
    ``torch/version.py``, which holds the local label (``+cu130``) that the installed
    distribution's metadata lacks."""
    if "torch" in sys.modules:
        return str(sys.modules["torch"].__version__)
    spec = importlib.util.find_spec("torch")
    path = Path(spec.origin).with_name("version.py")
    version = importlib.util.module_from_spec(importlib.util.spec_from_file_location("_lossland_torch_version", path))
    version.__spec__.loader.exec_module(version)
    return str(version.__version__)


def provenance(params: Any = None, **extra: Any) -> dict[str, Any]:
    """Provenance record: hash of the defining params, package versions, git commit."""
    import numpy

    from . import __version__

    record = {
        "config_hash": config_hash(params) if params is not None else None,
        "params": params,
        "git_commit": git_commit(),
        "versions": {
            "lossland": __version__,
            "torch": _torch_version(),
            "numpy": numpy.__version__,
            "pandas": pd.__version__,
            "pyarrow": pa.__version__,
            "python": platform.python_version(),
        },
    }
    record.update(extra)
    return record


def write_parquet(df: pd.DataFrame, path: str | os.PathLike, provenance: Mapping | None = None) -> None:
    """Write ``df`` atomically as Parquet, with ``provenance`` in the schema metadata."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    if provenance is not None:
        meta = dict(table.schema.metadata or {})
        meta[PROVENANCE_KEY] = json.dumps(provenance, sort_keys=True, default=_json_default).encode()
        table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_parquet(path)


def read_provenance(path: str | os.PathLike) -> dict[str, Any]:
    meta = pq.read_schema(path).metadata or {}
    if PROVENANCE_KEY not in meta:
        return {}
    return json.loads(meta[PROVENANCE_KEY])


def sidecar_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".json")


def save_checkpoint(
    tensors: Mapping[str, torch.Tensor], path: str | os.PathLike, meta: Mapping[str, Any]
) -> None:
    """Save tensors as safetensors plus a JSON sidecar (``path`` with ``.json``).

    The sidecar is written first and the tensors last, so the presence of the
    ``.safetensors`` file means both are complete.
    """
    write_json(dict(meta), sidecar_path(path))
    save_tensors(tensors, path, {"lossland": "checkpoint"})


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"
                    ) -> tuple[dict[str, torch.Tensor], dict]:
    """Load ``(tensors, sidecar)`` from :func:`save_checkpoint` output."""
    tensors = load_tensors(path, device)
    side = sidecar_path(path)
    meta = read_json(side) if side.exists() else {}
    return tensors, meta


def save_tensors(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike,
                 metadata: Mapping[str, str] | None = None) -> None:
    """Save tensors (moved to the CPU, contiguous) as a safetensors file, atomically."""
    from safetensors.torch import save_file

    contiguous = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(contiguous, str(tmp), metadata=dict(metadata or {}))


def load_tensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path), device=str(device))


TREE_KEY = "lossland.tree"


def save_state_tree(tree: Any, path: str | os.PathLike) -> None:
    """Save a nested structure (dicts, lists, tuples, tensors, str, numbers, bools, None) as
    one safetensors file, atomically: the tensors as its tensors, the structure as JSON in its
    metadata (``lossland.tree``). Dict keys keep their types (an optimizer's int keys) and
    tuples stay tuples; a tensor that appears twice is stored once and comes back shared."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    names: dict[int, str] = {}
    structure = _encode_tree(tree, tensors, names)
    blob = json.dumps(structure, allow_nan=True, separators=(",", ":"))
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"lossland": "state_tree", TREE_KEY: blob})


def load_state_tree(path: str | os.PathLike, device: str | torch.device = "cpu") -> Any:
    """The structure :func:`save_state_tree` saved, its tensors on ``device``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device=str(device)) as f:
        meta = f.metadata() or {}
        if TREE_KEY not in meta:
            raise ValueError(f"{path}: not a state tree (its safetensors metadata has no {TREE_KEY!r})")
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    return _decode_tree(json.loads(meta[TREE_KEY]), tensors)


def _encode_tree(obj: Any, tensors: dict, names: dict) -> Any:
    """JSON for ``obj``: scalars as themselves, lists as lists, and tagged objects
    ``{"tensor": name}``, ``{"tuple": [...]}``, ``{"dict": [[key, value], ...]}``."""
    import torch

    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, torch.Tensor):
        if id(obj) not in names:
            names[id(obj)] = name = str(len(names))
            tensors[name] = obj.detach().to("cpu", copy=True).contiguous()
        return {"tensor": names[id(obj)]}
    if isinstance(obj, list):
        return [_encode_tree(v, tensors, names) for v in obj]
    if isinstance(obj, tuple):
        return {"tuple": [_encode_tree(v, tensors, names) for v in obj]}
    if isinstance(obj, Mapping):
        return {"dict": [[_encode_tree(k, tensors, names), _encode_tree(v, tensors, names)] for k, v in obj.items()]}
    raise TypeError(f"a state tree cannot hold {type(obj).__name__}")


def _decode_tree(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode_tree(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "tensor" in obj:
        return tensors[obj["tensor"]]
    if "tuple" in obj:
        return tuple(_decode_tree(v, tensors) for v in obj["tuple"])
    return {_decode_tree(k, tensors): _decode_tree(v, tensors) for k, v in obj["dict"]}


def concat_parquet(paths: list[str | os.PathLike]) -> tuple[pd.DataFrame, list[dict]]:
    """Concatenate Parquet tables; also return each part's path and config hash."""
    frames, parts = [], []
    for p in paths:
        frames.append(read_parquet(p))
        parts.append({"path": str(p), "config_hash": read_provenance(p).get("config_hash")})
    if not frames:
        raise ValueError("no tables to concatenate")
    return pd.concat(frames, ignore_index=True), parts
