import numpy as np
import pandas as pd

from lossland import plots


def _metrics():
    rows = []
    for run, opt, lr, seed in [("b", "sgd", 0.1, 0), ("a", "adam", 0.001, 0), ("c", "sgd", 0.1, 1)]:
        for e in range(3):
            rows.append(dict(run=run, model="m", optimizer=opt, lr=lr, seed=seed, epoch=e, phase=opt,
                             train_loss=1.0 / (e + 1), train_acc=0.1 * e, test_loss=1.0, test_acc=0.1 * e,
                             dist_from_init=float(e), diverged=False))
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # rows in any order


def test_lr_labels_follow_their_runs_whatever_the_row_order():
    df = plots.with_lr_label(_metrics())
    assert set(df.loc[df["run"] == "a", "label"]) == {"adam (lr 0.001)"}
    assert set(df.loc[df["run"] == "b", "label"]) == {"sgd (lr 0.1)"}


def test_final_rows_are_the_last_epoch_of_each_run():
    last = plots.final_rows(_metrics())
    assert sorted(last["run"]) == ["a", "b", "c"] and (last["epoch"] == 2).all()


def test_switch_pairs_are_unordered_and_unique():
    assert plots.switch_pairs([["sgd", "adam"], ["adam", "sgd"], ["sgd", "adadelta"]]) == [
        ("adam", "sgd"), ("adadelta", "sgd")]


def test_figures_draw_every_run():
    df = _metrics()
    for fig in (plots.optimizer_accuracy(df), plots.rk2_training(df), plots.exotic_inits(df)):
        lines = [l for ax in fig.axes for l in ax.get_lines() if len(l.get_xdata())]
        collections = [c for ax in fig.axes for c in ax.collections if len(c.get_offsets())]
        assert lines or collections
    fig = plots.rk2_training(df)
    assert np.allclose(sorted({tuple(l.get_ydata()) for l in fig.axes[0].get_lines() if len(l.get_ydata()) == 3})[0],
                       [0.0, 0.1, 0.2])
