"""The evaluation protocols end to end: resolve a model and data, run a metric, return (and write) the results.

:func:`run_consistency`, :func:`run_stability`, :func:`run_equivariance`, :func:`run_corruption` and
:func:`run_perturbation` are what ``antialias eval METRIC`` calls. Each takes the model as a zoo
name (+ ``filter_size``, ``weights``), a user's ``module:factory``, a ``checkpoint`` (a run
directory of ``antialias train`` or one of our ``.safetensors`` files) or an ``nn.Module``, and the
data as a spec of :func:`antialias.data.load_dataset` (see :mod:`antialias.eval._resolve` for the
rules, normalisation included); the metric's settings as its config
(:mod:`antialias.eval.config`) or as keywords. Each returns the results record (a JSON-ready dict,
see :mod:`antialias.eval._results`) and, given ``out="name.json"``, writes it, plus ``name.npz``
(stability's per-image arrays, equivariance's maps). Existing files are never replaced unless
``overwrite``. Evaluation draws nothing: ``antialias eval`` renders the figure (``name.png``) from
the returned record with :mod:`antialias.report` (until this split the Python API wrote it too).

One module per protocol (``_consistency``, ``_stability``, ``_equivariance``, ``_robustness``) and
the set-up they share (``_setup``: model, data, device, sharding, files).

Speed: every shifted copy of a batch goes through the model in one forward, in inference mode,
optionally under autocast (``amp="bf16"`` or ``"fp16"``, the latter on CUDA only).

Sharding under ``torchrun --nproc_per_node=W``: rank ``r`` evaluates a contiguous range of whole
batches (batches ``[B r / W, B (r+1) / W)`` of the ``B`` batches of the set). Consistency draws the
offsets of each image from ``(seed, pass, position of the image in the data set)``, so every image
gets the same shifts whatever ``W`` and the batch size are, and the counts (torchmetrics states,
summed across ranks) equal those of one process exactly; stability's per-image arrays are
gathered in order, and equivariance maps (means over images) are merged weighted by each rank's
image count.
"""

from antialias.eval._forward import AMP_CHOICES
from antialias.eval.protocols._consistency import run_consistency
from antialias.eval.protocols._equivariance import pad_to_multiple, run_equivariance
from antialias.eval.protocols._robustness import run_corruption, run_perturbation
from antialias.eval.protocols._setup import shard_range
from antialias.eval.protocols._stability import run_stability
from antialias.eval.protocols._worst_case import run_worst_case

__all__ = [
    "AMP_CHOICES",
    "pad_to_multiple",
    "run_consistency",
    "run_corruption",
    "run_equivariance",
    "run_perturbation",
    "run_stability",
    "run_worst_case",
    "shard_range",
]
