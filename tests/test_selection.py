import math

import pandas as pd
import pytest

from lossland.selection import chosen_runs, select_learning_rate, selected_lr


def _metrics(rows):
    """rows: (run, lr, seed, val_acc, val_loss, diverged) at the last epoch; epoch 0 rows are noise."""
    out = []
    for run, lr, seed, acc, loss, div in rows:
        out.append(dict(run=run, model="nin", optimizer="sgd", lr=lr, seed=seed, epoch=0,
                        val_acc=0.99, val_loss=0.01, diverged=False))
        out.append(dict(run=run, model="nin", optimizer="sgd", lr=lr, seed=seed, epoch=3,
                        val_acc=acc, val_loss=loss, diverged=div))
    return pd.DataFrame(out)


def test_the_best_mean_over_seeds_at_the_last_epoch_is_selected():
    m = _metrics([("a0", 0.1, 0, 0.60, 1.0, False), ("a1", 0.1, 1, 0.40, 1.0, False),
                  ("b0", 0.05, 0, 0.55, 1.1, False), ("b1", 0.05, 1, 0.52, 1.1, False)])
    table = select_learning_rate(m, "val_acc")
    assert selected_lr(table) == 0.05            # mean 0.535 beats 0.50
    assert table.set_index("lr").loc[0.1, "val_acc"] == pytest.approx(0.5)
    assert chosen_runs(table) == ["b0", "b1"]
    assert selected_lr(select_learning_rate(m, "val_loss")) == 0.1  # mean loss 1.0 beats 1.1


def test_diverged_rates_are_never_chosen_unless_all_diverged():
    m = _metrics([("a0", 0.2, 0, 0.9, 0.1, True), ("b0", 0.01, 0, 0.3, 2.0, False)])
    table = select_learning_rate(m)
    assert selected_lr(table) == 0.01
    assert math.isnan(table.set_index("lr").loc[0.2, "val_acc"])
    both = _metrics([("a0", 0.2, 0, 0.9, 0.1, True), ("b0", 0.01, 0, 0.3, 2.0, True)])
    assert selected_lr(select_learning_rate(both)) == 0.01


def test_selection_needs_a_validation_split_and_a_known_metric():
    m = _metrics([("a0", 0.1, 0, 0.5, 1.0, False)]).drop(columns=["val_acc"])
    with pytest.raises(ValueError, match="val_size"):
        select_learning_rate(m, "val_acc")
    with pytest.raises(ValueError, match="allowed: val_acc, val_loss"):
        select_learning_rate(m, "test_acc")


def test_ties_go_to_the_lower_loss_then_the_smaller_rate():
    m = _metrics([("a0", 0.1, 0, 0.5, 1.0, False), ("b0", 0.05, 0, 0.5, 0.9, False), ("c0", 0.01, 0, 0.5, 0.9, False)])
    assert selected_lr(select_learning_rate(m)) == 0.01
