"""Perturbation stability, ImageNet-P style (Hendrycks & Dietterich, ICLR 2019), on any data set.

Each image becomes a sequence of ``T`` frames under a slowly growing perturbation; a stable model
keeps its prediction along the sequence. One job per module:

- :mod:`~antialias.eval.perturbation.metric`: flip probability, top-5 distance, FR / mFR / mT5D
  (:class:`PerturbationStability`, :func:`perturbation_stability`, :func:`flip_probability`,
  :func:`top5_distance`);
- :mod:`~antialias.eval.perturbation.generate`: sequences generated with torch ops
  (:func:`perturbation_sequence`);
- :mod:`~antialias.eval.perturbation.readers`: the released CIFAR-10-P files (:func:`read_cifar10p`) and
  ImageNet-P videos (:func:`read_imagenet_p`), recognised in a folder (:func:`inspect_perturbation_data`);
- :mod:`~antialias.eval.perturbation.evaluate`: a model over either source
  (:func:`evaluate_perturbations`, :func:`evaluate_cifar10p`).
"""

from antialias.eval._names import GENERATED_PERTURBATIONS, KNOWN_PERTURBATIONS, PERTURBATIONS, is_noise
from antialias.eval._robust_core import Estimate
from antialias.eval.perturbation.evaluate import evaluate_cifar10p, evaluate_perturbation_files, evaluate_perturbations
from antialias.eval.perturbation.generate import PRESETS, perturbation_seed, perturbation_sequence, sequence_length
from antialias.eval.perturbation.metric import (
    PerturbationResult,
    PerturbationStability,
    flip_probability,
    perturbation_stability,
    resolve_perturbation_normaliser,
    top5_distance,
)
from antialias.eval.perturbation.readers import (
    ImageNetP,
    PerturbationFiles,
    cifar10p_names,
    inspect_perturbation_data,
    open_imagenet_p,
    read_cifar10p,
    read_imagenet_p,
)

__all__ = [
    "GENERATED_PERTURBATIONS",
    "KNOWN_PERTURBATIONS",
    "PERTURBATIONS",
    "PRESETS",
    "Estimate",
    "ImageNetP",
    "PerturbationFiles",
    "PerturbationResult",
    "PerturbationStability",
    "cifar10p_names",
    "evaluate_cifar10p",
    "evaluate_perturbation_files",
    "evaluate_perturbations",
    "flip_probability",
    "inspect_perturbation_data",
    "is_noise",
    "open_imagenet_p",
    "perturbation_seed",
    "perturbation_sequence",
    "perturbation_stability",
    "read_cifar10p",
    "read_imagenet_p",
    "resolve_perturbation_normaliser",
    "sequence_length",
    "top5_distance",
]
