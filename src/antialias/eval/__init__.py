"""Shift-invariance measurements: consistency, stability along diagonal shifts, feature equivariance."""

from antialias.eval._names import ALL_CORRUPTIONS, CORRUPTIONS, EXTRA_CORRUPTIONS, PERTURBATIONS
from antialias.eval._stats import Proportion, wilson_interval
from antialias.eval.consistency import ConsistencyConfig, ShiftConsistency, evaluate_consistency, shift_consistency
from antialias.eval.corruption import (
    CorruptionError,
    CorruptionResult,
    corrupt_images,
    corruption_error,
    evaluate_cifar10c,
    evaluate_corruptions,
    evaluate_imagenet_c,
    read_cifar10c,
)
from antialias.eval.equivariance import EquivarianceResult, circular_upsample, default_layers, feature_distance_maps
from antialias.eval.perturbation import (
    GENERATED_PERTURBATIONS,
    PerturbationResult,
    PerturbationStability,
    evaluate_cifar10p,
    evaluate_perturbations,
    flip_probability,
    perturbation_sequence,
    perturbation_stability,
    read_cifar10p,
    top5_distance,
)
from antialias.eval.protocols import run_consistency, run_corruption, run_equivariance, run_perturbation, run_stability
from antialias.eval.stability import StabilityResult, diagonal_stability

__all__ = [
    "ALL_CORRUPTIONS",
    "CORRUPTIONS",
    "CorruptionError",
    "CorruptionResult",
    "EXTRA_CORRUPTIONS",
    "GENERATED_PERTURBATIONS",
    "PERTURBATIONS",
    "PerturbationResult",
    "PerturbationStability",
    "corrupt_images",
    "corruption_error",
    "evaluate_cifar10c",
    "evaluate_cifar10p",
    "evaluate_corruptions",
    "evaluate_imagenet_c",
    "evaluate_perturbations",
    "flip_probability",
    "perturbation_sequence",
    "perturbation_stability",
    "read_cifar10c",
    "read_cifar10p",
    "top5_distance",
    "ConsistencyConfig",
    "EquivarianceResult",
    "Proportion",
    "ShiftConsistency",
    "StabilityResult",
    "circular_upsample",
    "default_layers",
    "diagonal_stability",
    "evaluate_consistency",
    "feature_distance_maps",
    "run_consistency",
    "run_corruption",
    "run_equivariance",
    "run_perturbation",
    "run_stability",
    "shift_consistency",
    "wilson_interval",
]
