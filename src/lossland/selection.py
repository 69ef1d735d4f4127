"""Choosing a learning rate from a grid on the validation split (im2016 §3.4: "the
learning rate was chosen from the discrete range ...")."""

from __future__ import annotations

import pandas as pd

METRICS = {"val_acc": False, "val_loss": True}  # metric -> smaller is better


def select_learning_rate(metrics: pd.DataFrame, metric: str = "val_acc") -> pd.DataFrame:
    """One row per learning rate of a grid, with ``selected`` true for the best one.

    ``metrics`` holds the per-epoch tables of every run of one (model, optimizer)
    grid (several init seeds). Each run is scored by ``metric`` at its last epoch;
    a learning rate's score is the mean over its init seeds. A learning rate with
    a diverged run is not selected (its score is reported as NaN) unless every
    learning rate diverged, when the smallest is. Ties go to the lower validation
    loss, then to the smaller learning rate.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown selection metric {metric!r}; allowed: {', '.join(METRICS)}")
    if metric not in metrics:
        raise ValueError(f"metrics have no {metric!r} column: the data set needs a validation split (val_size)")
    last = metrics.sort_values("epoch").groupby("run", sort=False).tail(1)
    rows = []
    for lr, part in last.groupby("lr", sort=True):
        diverged = bool(part["diverged"].any())
        rows.append({
            "model": part["model"].iloc[0],
            "optimizer": part["optimizer"].iloc[0],
            "lr": float(lr),
            "runs": ",".join(sorted(part["run"])),
            "n_seeds": int(part["seed"].nunique()),
            "epoch": int(part["epoch"].max()),
            "val_acc": float("nan") if diverged else float(part["val_acc"].mean()),
            "val_loss": float("nan") if diverged else float(part["val_loss"].mean()),
            "diverged": diverged,
        })
    table = pd.DataFrame(rows)
    ok = table[~table["diverged"]]
    table["selected"] = False
    if len(ok):
        smaller = METRICS[metric]
        key = ok[metric] if smaller else -ok[metric]
        order = pd.DataFrame({"key": key, "loss": ok["val_loss"], "lr": ok["lr"]}).sort_values(["key", "loss", "lr"])
        table.loc[order.index[0], "selected"] = True
    else:
        table.loc[table["lr"].idxmin(), "selected"] = True
    table["metric"] = metric
    return table


def selected_lr(table: pd.DataFrame) -> float:
    """The selected learning rate of a :func:`select_learning_rate` table."""
    return float(table.loc[table["selected"], "lr"].iloc[0])


def chosen_runs(table: pd.DataFrame | str) -> list[str]:
    """The runs (one per init seed) of the selected learning rate; ``table`` may be a Parquet path."""
    if not isinstance(table, pd.DataFrame):
        from .io import read_parquet

        table = read_parquet(table)
    row = table.loc[table["selected"]].iloc[0]
    return [r for r in str(row["runs"]).split(",") if r]
