"""Shift-invariance measurements: consistency, stability along diagonal shifts, feature equivariance."""

from antialias.eval._stats import Proportion, wilson_interval
from antialias.eval.consistency import ConsistencyConfig, ShiftConsistency, evaluate_consistency, shift_consistency
from antialias.eval.equivariance import EquivarianceResult, circular_upsample, default_layers, feature_distance_maps
from antialias.eval.stability import StabilityResult, diagonal_stability

__all__ = [
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
    "shift_consistency",
    "wilson_interval",
]
