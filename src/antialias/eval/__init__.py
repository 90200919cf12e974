"""Shift-invariance measurements: consistency, stability along diagonal shifts, feature equivariance."""

from antialias.eval._names import ALL_CORRUPTIONS, CORRUPTIONS, EXTRA_CORRUPTIONS, PERTURBATIONS
from antialias.eval._stats import Proportion, wilson_interval
from antialias.eval.config import CorruptionConfig, EquivarianceConfig, EvalOptions, PerturbationConfig, StabilityConfig
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
    "EXTRA_CORRUPTIONS",
    "GENERATED_PERTURBATIONS",
    "PERTURBATIONS",
    "ConsistencyConfig",
    "CorruptionConfig",
    "CorruptionError",
    "CorruptionResult",
    "EquivarianceConfig",
    "EquivarianceResult",
    "EvalOptions",
    "PerturbationConfig",
    "PerturbationResult",
    "PerturbationStability",
    "Proportion",
    "ShiftConsistency",
    "StabilityConfig",
    "StabilityResult",
    "circular_upsample",
    "corrupt_images",
    "corruption_error",
    "default_layers",
    "diagonal_stability",
    "evaluate_cifar10c",
    "evaluate_cifar10p",
    "evaluate_consistency",
    "evaluate_corruptions",
    "evaluate_imagenet_c",
    "evaluate_perturbations",
    "feature_distance_maps",
    "flip_probability",
    "perturbation_sequence",
    "perturbation_stability",
    "read_cifar10c",
    "read_cifar10p",
    "run_consistency",
    "run_corruption",
    "run_equivariance",
    "run_perturbation",
    "run_stability",
    "shift_consistency",
    "top5_distance",
    "wilson_interval",
]
