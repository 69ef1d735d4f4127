"""Run specs and the run table (lossland.pipeline.runs)."""


from lossland.pipeline import runs as R


def test_checkpoint_epochs():
    assert R.checkpoint_epochs({"epochs": 10, "checkpoint_every": 4, "checkpoint_epochs": [1]}) == [1, 4, 8]
    assert R.checkpoint_epochs({"epochs": 10, "checkpoint_every": 0}, extra=[5, 12]) == [5]
