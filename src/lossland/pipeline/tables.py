"""Tables of the workflow: identifying columns and gathering, one way each."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence


def with_ids(df, ids: Mapping[str, Any], at: int = 0):
    """``df`` with the constant columns ``ids`` inserted from position ``at`` on, in order
    (the columns that say which run, model, seed, ... every row belongs to). In place; returns ``df``."""
    for i, (k, v) in enumerate(ids.items()):
        df.insert(at + i, k, v)
    return df


def gather(parts: Sequence[str], out: str, finish: Callable | None = None, *, log: str | None = None,
           **params: Any):
    """Concatenate the Parquet tables ``parts`` into ``out`` (atomically, with provenance: each
    part's path and config hash, and ``params``); ``finish(table) -> table`` checks or reshapes
    the gathered rows first. ``log``: a file to write one summary line to (gathers run inside
    Snakemake, whose own logging they leave alone). Returns the table written."""
    from .. import io

    table, sources = io.concat_parquet(list(parts))
    if finish is not None:
        table = finish(table)
    io.write_parquet(table, out, io.provenance({"parts": sources, **params}))
    if log:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        Path(log).write_text(f"{out}: {len(table)} rows from {len(parts)} tables\n")
    return table


def gather_prefixed(inputs: Mapping[str, Sequence[str]], outputs: Mapping[str, str], prefix: str,
                    names: Sequence[str], log: str | None = None) -> None:
    """A family's gather rule: for every job table ``t`` of ``names``, the parts ``inputs[t]`` into
    ``outputs["<prefix>_<t>"]`` (:func:`gather`); one summary line per table to ``log``."""
    lines = []
    for t in names:
        table = gather(inputs[t], outputs[f"{prefix}_{t}"])
        lines.append(f"{outputs[f'{prefix}_{t}']}: {len(table)} rows from {len(inputs[t])} jobs\n")
    if log:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        Path(log).write_text("".join(lines))

