"""A tiny config where runs diverge: sgd's grid holds a rate of 1000 (selection must not pick
it) and `sgd-huge` (lr 10⁴, no grid) is chosen and analysed by every family downstream; the
entropy section's ensembles run at lr 10⁴."""

from __future__ import annotations

import copy

from tiny import TINY

DIVERGING_RUN = "mlp_sgd-huge-lr10000_init0"

DIVERGING = copy.deepcopy(TINY)
DIVERGING["models"] = {"mlp": TINY["models"]["mlp"], "mlp-bn": TINY["models"]["mlp-bn"],
                       "zhang": TINY["models"]["zhang"]}
DIVERGING["optimizers"] = {"sgd": {"algorithm": "sgd", "lr": 0.1}, "sgd-huge": {"algorithm": "sgd", "lr": 1.0e4},
                           "adam": {"algorithm": "adam", "lr": 0.01}}
DIVERGING["optimizer_study"] = {"dataset": "tiny", "models": ["mlp"], "optimizers": ["sgd", "sgd-huge", "adam"],
                                "lr_grids": {"sgd": [0.1, 1000.0]}, "init_seeds": [0]}
DIVERGING["switch_study"] = {"dataset": "tiny", "models": ["mlp"], "switches": [["sgd-huge", "adam"]], "at": [0.5]}
for section in ("rk2_study", "init_study"):
    DIVERGING.pop(section)
DIVERGING["hessian"] = {**TINY["hessian"], "optimizers": ["sgd", "sgd-huge"]}
DIVERGING["landscape"] = {**TINY["landscape"], "optimizers": ["sgd", "sgd-huge"],
                          "bilinear_optimizers": None,
                          "kinds": ["init_final", "final_final", "distance", "random_plane", "barycentric", "pca"]}
DIVERGING["landscape"].pop("bilinear_optimizers")
DIVERGING["reparam"] = {**TINY["reparam"], "models": ["mlp"], "optimizers": ["sgd-huge"], "bn_scale": []}
# zhang2018's ensembles at a rate that makes every member diverge: recorded, the Hessians skipped
DIVERGING["entropy"] = {**TINY["entropy"], "lr": 1.0e4}
# Keskar's large batch at lr 10⁴ (as sgd-huge: batch 50, which diverges), and an "architecture" that diverges
DIVERGING["batch_size"] = {**TINY["batch_size"], "batches": [{"batch_size": 20, "lr": 0.05},
                                                             {"batch_size": 50, "lr": 1.0e4}]}
DIVERGING["architecture"] = {**TINY["architecture"], "models": ["mlp"], "optimizer": "sgd-huge"}
# im2016 Table 2: the MLP with and without BatchNorm, one optimizer of which diverges (no LSTM here)
DIVERGING["bn_study"] = {**TINY["bn_study"], "architectures": {"mlp": {"dataset": "tiny", "models": ["mlp-bn", "mlp"]}},
                         "optimizers": ["sgd", "sgd-huge"]}
