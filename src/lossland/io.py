"""Atomic file writes, Parquet tables with provenance, safetensors checkpoints.

Everything that lands where a finished output belongs goes through
:func:`atomic_path`: the bytes are written to a temporary file in the same
folder and renamed into place only once complete, so an interrupted job never
leaves a file that looks finished.

This module knows no model: checkpoints are plain ``{name: tensor}`` dicts.
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


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the working directory's git checkout, or ``"unknown"``."""
    env_commit = os.environ.get("LOSSLAND_GIT_COMMIT")
    if env_commit:
        return env_commit
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
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


def torch_save_atomic(obj: Any, path: str | os.PathLike) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def concat_parquet(paths: list[str | os.PathLike]) -> tuple[pd.DataFrame, list[dict]]:
    """Concatenate Parquet tables; also return each part's path and config hash."""
    frames, parts = [], []
    for p in paths:
        frames.append(read_parquet(p))
        parts.append({"path": str(p), "config_hash": read_provenance(p).get("config_hash")})
    if not frames:
        raise ValueError("no tables to concatenate")
    return pd.concat(frames, ignore_index=True), parts
