"""``antialias reproduce``: train, evaluate and report the paper's findings in one command.

Zhang, *Making Convolutional Networks Shift-Invariant Again* (ICML 2019), tested on a small scale:

1. **Train** the paper's small-image model (``vgg13_bn_cifar``, narrowed by ``width`` to fit a CPU)
   as a baseline and anti-aliased with rect2, tri3, tri4 and bin5, each with and without shift
   augmentation (random crop with 4 px of zero padding and a horizontal flip: the trainer's
   ``augment``), same seed and schedule: 10 runs, each in ``OUT/runs/<filter>-<aug|noaug>``. A
   finished run is reused; an unfinished one resumes from its last checkpoint (the trainer's exact
   resume), so killing the command and running it again loses nothing.
2. **Evaluate** every model on the same test images with the same random offsets: clean accuracy;
   consistency (crop and circular protocols) with Wilson 95% intervals; diagonal stability curves;
   feature-distance maps of the baseline and the bin5 model; corruption mCE and perturbation mFR
   (normalised by the baseline, and unnormalised) when :mod:`antialias.eval.corruption` /
   :mod:`antialias.eval.perturbation` are available. Results are cached per run and part.
3. **Report**: ``OUT/results.json``, ``OUT/report.html`` (self-contained), PNG figures in
   ``OUT/figures/``, and one verdict per claim of the paper (:mod:`antialias.reproduce._verdicts`).

Python::

    from antialias.reproduce import ReproduceConfig, reproduce
    results = reproduce(ReproduceConfig.from_preset("quick", out="reproduction"))

Deviations from the paper, all deliberate and stated in the report: a narrow VGG13-bn, a subset of
the training set and a few epochs (CPU budgets), Fashion-MNIST padded to 32x32 by default instead of
CIFAR-10, and our own small-image consistency protocols (the paper's CIFAR protocol was not published).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from antialias.reproduce._pipeline import run_pipeline
from antialias.reproduce._runs import torch_threads
from antialias.reproduce.config import ReproduceConfig

__all__ = ["reproduce"]


def reproduce(config: ReproduceConfig, *, stream: TextIO | None = None, progress: str = "auto") -> dict[str, Any]:
    """Runs the whole pipeline (see the module docstring) and returns the results written to ``results.json``.

    Args:
        config: What to train and measure, and where to write.
        stream: Where progress goes (default: stderr).
        progress: ``"auto"`` (a bar on a terminal, lines otherwise), ``"bar"``, ``"log"`` or ``"none"``.

    Raises:
        ValueError: Bad configuration, or an output folder holding runs of other settings.
        antialias.data.DatasetNotFoundError: The data set is missing (the message says how to get it).
        KeyboardInterrupt: Ctrl-C; the running training saved a checkpoint first: run again to continue.
    """
    if not isinstance(config, ReproduceConfig):
        raise TypeError(f"`reproduce`: `config` must be a ReproduceConfig, got {type(config).__name__}.")
    stream = sys.stderr if stream is None else stream

    with torch_threads(config.threads):
        return run_pipeline(config, stream=stream, progress=progress)

