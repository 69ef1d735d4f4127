"""Loss landscapes: interpolations, planes, directions and functional distance.

Every function here evaluates a model at *points* of its parameter space that
are linear combinations of state dicts::

    θ(c) = origin + Σ_d c_d · direction_d

(an interpolation has one direction ``end − start``, a plane two, im2016's
bilinear plane three: ``x``, ``y`` and ``x·y``). States are the
``{name: tensor}`` mappings of ``model.state_dict()``; a direction may hold a
subset of the names (a missing name is a zero direction).

Conventions
-----------

* **Buffers.** Floating-point buffers (BatchNorm running mean and variance) are
  combined like the parameters, so an interpolation between two BN networks
  also interpolates their statistics; non-float buffers (``num_batches_tracked``)
  are taken from the origin (``start``) unchanged. (Far outside [0, 1] an
  interpolated running variance can turn negative, and the loss NaN: use
  ``bn="recompute"`` there.) The directions of
  :func:`random_direction` and :func:`pca_directions` leave the buffers at the
  origin's values.
* **BatchNorm** (``bn=``). ``"stored"`` (default): evaluation mode with the
  running statistics of the point (stored, or interpolated as above).
  These statistics are in general *wrong* away from a trained checkpoint: the
  activations of an interpolated network do not have the interpolated means and
  variances. ``"recompute"`` re-estimates them at every point from ``data``
  (see :func:`recompute_bn`: a no-grad pass in train mode with
  ``momentum=None``, i.e. the equal-weight average over the batches) before
  evaluating in eval mode. Dropout is always off.
* **Loss.** ``loss_fn(logits, targets)`` returns the batch mean (default
  :func:`lossland.evaluation.default_loss`: cross-entropy, or binary
  cross-entropy for one-column logits); batches are weighted by size, exactly
  as :func:`lossland.evaluate`.
* **Data.** ``(inputs, targets)`` tensors (split into ``batch_size`` chunks;
  default :func:`lossland.landscape.batches.default_chunk_size`: 128 images for
  conv nets and 1024 for other models on a CPU, 4096 on a GPU) or an iterable
  of such batches. It is moved once to the model's device and held there for
  the whole call, in channels-last format where
  :func:`lossland.evaluation.inputs_channels_last` says so: for a model whose
  convolutions are channels-last, and on the CPU for every model with a 2-D
  convolution, whatever its own format (the model itself is not converted;
  oneDNN runs channels-last kernels for channels-last inputs, 1.2–2.6× faster
  on the benchmark zoo). The choice is a fixed rule, not a timing probe, so a
  call gives the same numbers in every process.
* **Engines** (``engine=``). ``"loop"`` loads each point's weights into the
  model and runs the data through it in chunks; ``"vmap"`` evaluates
  ``points_per_batch`` points in one call of
  ``torch.vmap(torch.func.functional_call)`` over stacked parameters (with
  ``bn="recompute"`` the statistics are still re-estimated point by point).
  ``"graph"`` (CUDA only) is the loop with one point's whole work (its
  weights, BN statistics and fold, the forward over every batch, the loss)
  captured once as a CUDA graph and replayed per point, with the point's
  coefficients read from a device tensor: a few launches per point instead of
  hundreds, no host round trip. All engines give the same numbers (to float
  rounding; tested to 1e-5). ``"auto"`` picks the loop on the CPU (measured
  4.7× faster there than vmap for NIN-¼ on 1000 CIFAR images, 2 cores: 3724 vs
  798 samples/s, ``benchmarks/surface_throughput.py``), the graph on CUDA from
  25 points on (falling back to the loop, with a warning, for a model that
  cannot be captured, e.g. one that reads values back to the host), and on
  other devices whichever of loop and vmap a short timing probe on the first
  data batch finds faster (cached per process, model and shape). The loop runs
  an eval-mode copy of the model with each BatchNorm folded into the conv or
  linear layer before it and, on the CPU, each conv+ReLU pair (an ``nn.ReLU`` or a
  functional ``F.relu`` / ``torch.relu`` / ``x.relu()``) as one oneDNN
  kernel (``fuse=True``, refolded at every point; models ``torch.fx`` cannot
  trace run as they are; ``fuse=False`` runs the model itself; the copy is
  :class:`lossland.fold.FoldedCopy`).
* The model passed in is left as it was (weights, buffers and train/eval modes).

Curves
------

:mod:`.curves` is mode connectivity (Garipov et al. 2018): a :class:`Curve` from
``θ0`` to ``θ1`` through a bend ``θb``, a quadratic Bezier curve
``(1−t)²θ0 + 2t(1−t)θb + t²θ1`` or a polygonal chain with its bend at ``t = ½``.
:func:`train_curve` fits the bend by SGD on ``L(θ(t))`` with ``t ~ U(0, 1)`` per
minibatch (endpoints fixed; BatchNorm on batch statistics, dropout off). Both kinds
are points ``θ0 + c_b(θb − θ0) + c_1(θ1 − θ0)``, so :func:`evaluate_curve` is one
:func:`evaluate_points` call (``bn="auto"``: ``"recompute"`` for BN models, whose
bend has no meaningful stored statistics), :func:`curve_table` sets the curve
against the straight line on every split (loss, accuracy, functional distance and
disagreement to ``θ0``), :func:`plane_basis` / :func:`plane_coordinates` place it in
the plane through the three states, and :func:`barrier` is a path's height above
the chord between its ends.

Modules: :mod:`.lines` (:func:`evaluate_points` and the lines and planes built
on it), :mod:`.functional` (functional distance), :mod:`.curves` (mode
connectivity), :mod:`.directions` (random and PCA directions), :mod:`.engines`
(loop, vmap, CUDA graph, the probe),
:mod:`.batchnorm` (:func:`recompute_bn`), :mod:`.points` (the points written into
a state), :mod:`.batches` (the data held on the device for a call). The state
arithmetic is :mod:`lossland.state`, the BatchNorm fold :mod:`lossland.fold`.
"""

from .batchnorm import recompute_bn
from .curves import Curve, barrier, curve_table, evaluate_curve, plane_basis, plane_coordinates, train_curve
from .directions import NORMALIZATIONS, PCADirections, normalize_direction, pca_directions, random_direction
from .engines import BN_MODES, ENGINES
from .functional import functional_distance, probabilities
from .lines import barycentric_surface, bilinear_surface, distance_path, evaluate_points, interpolate, surface
from .shape import line_shape, local_maxima

__all__ = [
    "ENGINES", "BN_MODES", "NORMALIZATIONS",
    "evaluate_points", "interpolate", "surface", "bilinear_surface", "barycentric_surface", "distance_path",
    "functional_distance", "probabilities",
    "Curve", "train_curve", "evaluate_curve", "curve_table", "plane_basis", "plane_coordinates", "barrier",
    "normalize_direction", "random_direction", "PCADirections", "pca_directions",
    "recompute_bn", "line_shape", "local_maxima",
]
