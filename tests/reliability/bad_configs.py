"""A catalogue of broken workflow configs: each an edit of the tiny config (tests/tiny.py)
and the key its error message must name. Used by test_bad_configs.py."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple


class BadConfig(NamedTuple):
    id: str
    edit: Callable[[dict[str, Any]], Any]
    key: str  # the message line that explains this problem starts with it


def _set(section: str, **values) -> Callable[[dict], None]:
    def edit(cfg: dict) -> None:
        node = cfg
        for part in section.split("."):
            node = node[part]
        node.update(values)
    return edit


CATALOGUE = [
    # top level and shared sections
    BadConfig("unknown-device", lambda c: c.update(device="gpu"), "device"),
    BadConfig("zero-threads", lambda c: c.update(threads=0), "threads"),
    BadConfig("string-threads", lambda c: c.update(threads="two"), "threads"),
    BadConfig("unknown-top-level-key", lambda c: c.update(trainin={"epochs": 2}), "<top level>"),
    BadConfig("unknown-data-source", _set("datasets.tiny", source="hdf5"), "datasets.tiny.source"),
    BadConfig("negative-image-size", _set("datasets.tiny", image_size=-8), "datasets.tiny.image_size"),
    BadConfig("string-train-size", _set("datasets.tiny", train_size="many"), "datasets.tiny.train_size"),
    BadConfig("unknown-dataset-key", _set("datasets.tiny", sizes=[1, 2]), "datasets.tiny"),
    BadConfig("missing-data-path", _set("datasets.tiny", source="imagefolder", path="no/such/cifar.tar.gz"),
              "datasets.tiny.path"),
    BadConfig("unknown-arch", _set("models.mlp", arch="densenet"), "models.mlp.arch"),
    BadConfig("string-hidden", _set("models.mlp", hidden="16"), "models.mlp.hidden"),
    BadConfig("option-of-another-arch", _set("models.mlp", width=0.5), "models.mlp.width"),
    BadConfig("unknown-init-scheme", _set("models.mlp-n1.init", scheme="xavier2"), "models.mlp-n1.init.scheme"),
    BadConfig("unknown-optimizer-algorithm", _set("optimizers.sgd", algorithm="sgd2"), "optimizers.sgd.algorithm"),
    BadConfig("negative-lr", _set("optimizers.sgd", lr=-1), "optimizers.sgd.lr"),
    BadConfig("string-lr", _set("optimizers.sgd", lr="fast"), "optimizers.sgd.lr"),
    BadConfig("hyper-parameter-of-another-optimizer", _set("optimizers.sgd", betas=[0.9, 0.99]), "optimizers.sgd"),
    BadConfig("unknown-rk2-method", _set("optimizers.heun", method="rk4"), "optimizers.heun.method"),
    BadConfig("zero-epochs", _set("training", epochs=0), "training.epochs"),
    BadConfig("string-batch-size", _set("training", batch_size="50"), "training.batch_size"),
    BadConfig("unknown-training-key", _set("training", epochz=3), "training"),
    # im2016's studies
    BadConfig("study-names-undefined-optimizer", _set("optimizer_study", optimizers=["sgd", "adam", "rmsprop", "sgdm", "lbfgs"]),
              "optimizer_study.optimizers"),
    BadConfig("study-names-undefined-model", _set("optimizer_study", models=["resnet"]), "optimizer_study.models"),
    BadConfig("study-names-undefined-dataset", _set("optimizer_study", dataset="imagenet"), "optimizer_study.dataset"),
    BadConfig("empty-lr-grid", _set("optimizer_study.lr_grids", adam=[]), "optimizer_study.lr_grids.adam"),
    BadConfig("negative-rate-in-grid", _set("optimizer_study.lr_grids", adam=[0.01, -0.1]),
              "optimizer_study.lr_grids.adam"),
    BadConfig("grid-of-an-optimizer-not-studied", _set("optimizer_study.lr_grids", heun=[0.1]),
              "optimizer_study.lr_grids.heun"),
    BadConfig("no-init-seeds", _set("optimizer_study", init_seeds=[]), "optimizer_study.init_seeds"),
    BadConfig("rk2-study-undefined-optimizer", _set("rk2_study", optimizers=["heun", "euler"]),
              "rk2_study.optimizers"),
    BadConfig("init-study-undefined-model", _set("init_study", models=["mlp-x"]), "init_study.models"),
    BadConfig("switch-fraction-0", _set("switch_study", at=[0.0]), "switch_study.at"),
    BadConfig("switch-fraction-1", _set("switch_study", at=[1.0]), "switch_study.at"),
    BadConfig("switch-of-one-optimizer", _set("switch_study", switches=[["sgd"]]), "switch_study.switches"),
    # hessian
    BadConfig("hessian-epoch-not-saved", _set("hessian", epochs=[0, 5]), "hessian.epochs"),
    BadConfig("hessian-optimizer-not-studied", _set("hessian", optimizers=["heun"]), "hessian.optimizers"),
    BadConfig("hessian-zero-samples", _set("hessian", samples=0), "hessian.samples"),
    BadConfig("hessian-zero-iterations", _set("hessian.settings", max_iter=0), "hessian.settings.max_iter"),
    BadConfig("hessian-unknown-setting", _set("hessian.settings", tolerance=1e-3), "hessian.settings"),
    # landscape
    BadConfig("landscape-pair-of-one-optimizer", _set("landscape", optimizers=["sgd"]), "landscape.optimizers"),
    BadConfig("landscape-zero-size-line", _set("landscape.init_final", num=0), "landscape.init_final.num"),
    BadConfig("landscape-zero-size-plane", _set("landscape.bilinear.x", num=0), "landscape.bilinear.x.num"),
    BadConfig("landscape-zero-shard-points", _set("landscape", shard_points=0), "landscape.shard_points"),
    BadConfig("landscape-unknown-kind", _set("landscape", kinds=["pca", "contour"]), "landscape.kinds"),
    BadConfig("landscape-unknown-axis-key", _set("landscape.random_plane", z={"num": 3}), "landscape.random_plane"),
    # reparam
    BadConfig("reparam-layers-not-adjacent", _set("reparam", alpha_scale=[[0, 2]]), "reparam.alpha_scale"),
    BadConfig("reparam-zero-alphas", _set("reparam.log10_alpha", num=0), "reparam.log10_alpha.num"),
    BadConfig("reparam-undefined-model", _set("reparam", models=["mlp", "vgg"]), "reparam.models"),
    BadConfig("reparam-unknown-input-transform", _set("reparam", input=["rotate"]), "reparam.input"),
    # connectivity
    BadConfig("curves-end-not-in-study", lambda c: c["curves"]["pairs"][0].update(end="adadelta"),
              "curves.pairs[0].end"),
    BadConfig("curves-unknown-kind", _set("curves", kind="spline"), "curves.kind"),
    BadConfig("curves-one-point", _set("curves", points=1), "curves.points"),
    BadConfig("walk-batch-above-samples", _set("walk", batch_sizes=[100]), "walk.batch_sizes"),
    BadConfig("walk-unknown-study", _set("walk", study="switch_study"), "walk.study"),
    # entropy (zhang2018)
    BadConfig("entropy-wrong-parameter-count", _set("entropy", parameters=1000), "entropy.parameters"),
    BadConfig("entropy-ten-class-data", _set("entropy", dataset="tiny"), "entropy.dataset"),
    BadConfig("entropy-unknown-dynamics", _set("entropy", dynamics=["sgd", "adam"]), "entropy.dynamics"),
    BadConfig("entropy-chunks-do-not-divide", _set("entropy", noise_chunks=7), "entropy.noise_chunks"),
    BadConfig("deep-linear-overdetermined", _set("deep_linear", examples=20), "deep_linear.examples"),
    # sharpness (Keskar et al., Li et al.)
    BadConfig("batch-size-repeated", _set("batch_size", batches=[{"batch_size": 20, "lr": 0.1},
                                                                 {"batch_size": 20, "lr": 0.2}]), "batch_size.batches"),
    BadConfig("batch-size-larger-than-data", _set("batch_size", batches=[{"batch_size": 20, "lr": 0.1},
                                                                         {"batch_size": 5000, "lr": 0.2}]),
              "batch_size.batches[1].batch_size"),
    BadConfig("architecture-undefined-model", _set("architecture", models=["res", "resnet56"]), "architecture.models"),
    BadConfig("architecture-unknown-normalization", _set("architecture.plane", normalization="unit"),
              "architecture.plane.normalization"),
    BadConfig("resnet-bad-depth", _set("models.res", depth=9), "models.res.depth"),
    # batchnorm (im2016 Table 2 / Fig 8) and text data
    BadConfig("bn-study-two-models-with-bn", _set("bn_study.architectures.mlp", models=["mlp-bn", "res"]),
              "bn_study.architectures.mlp.models"),
    BadConfig("bn-study-one-optimizer", _set("bn_study", optimizers=["sgd"]), "bn_study.architectures.mlp.optimizers"),
    BadConfig("bn-study-lstm-on-images", _set("bn_study.architectures.lstm", dataset="tiny"),
              "bn_study.architectures.lstm.models"),
    BadConfig("bn-study-unknown-bn-mode", _set("bn_study", bn="running"), "bn_study.bn"),
    BadConfig("text-unknown-split", _set("datasets.text", train_split="training"), "datasets.text.train_split"),
    BadConfig("text-image-key", _set("datasets.text", image_size=8), "datasets.text.image_size"),
    BadConfig("ptb-without-path", _set("datasets.text", source="ptb"), "datasets.text.path"),
    BadConfig("lstm-list-hidden", _set("models.lstm", hidden=[8, 8]), "models.lstm.hidden"),
    BadConfig("lstm-tied-unequal-sizes", _set("models.lstm", tie_weights=True, embedding=4), "models.lstm.tie_weights"),
    BadConfig("training-negative-grad-clip", _set("training", grad_clip=-1.0), "training.grad_clip"),
    BadConfig("deep-linear-unknown-init", _set("deep_linear", inits=["orthogonal"]), "deep_linear.inits"),
    # cluster resources
    BadConfig("resources-zero-memory", lambda c: c.update(resources={"train": {"runtime": 60, "mem_mb": 0}}),
              "resources.train.mem_mb"),
    BadConfig("resources-string-runtime", lambda c: c.update(resources={"train": {"runtime": "1h", "mem_mb": 100}}),
              "resources.train.runtime"),
    BadConfig("resources-unknown-kind", lambda c: c.update(resources={"gpu": {"runtime": 60, "mem_mb": 100}}),
              "resources"),
]
