"""ImageNet-C / ImageNet-P names and published constants, plus helpers shared by the robustness metrics.

Constants are facts from Hendrycks & Dietterich (ICLR 2019), as collected in
``tests/reference/paper_results.md``; they are keyed by name, never by position.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from statistics import NormalDist

__all__ = [
    "ALEXNET_CLEAN_ERROR",
    "ALEXNET_ERRORS",
    "ALEXNET_MEAN_ERRORS",
    "ALL_CORRUPTIONS",
    "CORRUPTIONS",
    "EXTRA_CORRUPTIONS",
    "NOISE_PERTURBATIONS",
    "PERTURBATIONS",
    "VALIDATION_PERTURBATIONS",
]

#: The 15 ImageNet-C test corruptions (the mCE is their mean).
CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
#: The 4 extra (validation) corruptions; never part of the mCE.
EXTRA_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
ALL_CORRUPTIONS: tuple[str, ...] = CORRUPTIONS + EXTRA_CORRUPTIONS

#: AlexNet top-1 errors on ImageNet-C per severity 1..5 (fractions).
ALEXNET_ERRORS: dict[str, tuple[float, float, float, float, float]] = {
    "gaussian_noise": (0.69528, 0.82542, 0.93554, 0.98138, 0.99452),
    "shot_noise": (0.71224, 0.85108, 0.93574, 0.98182, 0.99146),
    "impulse_noise": (0.78374, 0.89808, 0.94870, 0.98720, 0.99548),
    "defocus_blur": (0.65624, 0.73202, 0.85036, 0.91364, 0.94714),
    "glass_blur": (0.64308, 0.75054, 0.88806, 0.91622, 0.93344),
    "motion_blur": (0.58430, 0.70048, 0.82108, 0.89750, 0.92638),
    "zoom_blur": (0.70008, 0.76992, 0.80784, 0.84198, 0.87198),
    "snow": (0.71726, 0.88392, 0.86468, 0.91870, 0.94952),
    "frost": (0.61390, 0.79734, 0.88790, 0.89942, 0.93430),
    "fog": (0.67474, 0.76050, 0.84378, 0.87260, 0.94500),
    "brightness": (0.45140, 0.48502, 0.54048, 0.62166, 0.72440),
    "contrast": (0.64548, 0.76150, 0.88874, 0.97760, 0.99270),
    "elastic_transform": (0.52596, 0.70116, 0.55686, 0.64076, 0.80554),
    "pixelate": (0.52218, 0.54620, 0.73728, 0.87092, 0.91262),
    "jpeg_compression": (0.51002, 0.54718, 0.57294, 0.65458, 0.74778),
}
#: AlexNet mean errors over severities, as published (all 19; the extra four have no per-severity list).
ALEXNET_MEAN_ERRORS: dict[str, float] = {
    "gaussian_noise": 0.886428, "shot_noise": 0.894468, "impulse_noise": 0.922640,
    "defocus_blur": 0.819880, "glass_blur": 0.826268, "motion_blur": 0.785948, "zoom_blur": 0.798360,
    "snow": 0.866816, "frost": 0.826572, "fog": 0.819324, "brightness": 0.564592,
    "contrast": 0.853204, "elastic_transform": 0.646056, "pixelate": 0.717840, "jpeg_compression": 0.606500,
    "speckle_noise": 0.845388, "gaussian_blur": 0.787108, "spatter": 0.717512, "saturate": 0.658248,
}  # fmt: skip
#: AlexNet clean top-1 error on ImageNet (top-1 accuracy 56.55%).
ALEXNET_CLEAN_ERROR: float = 1.0 - 0.5655

#: The 10 ImageNet-P test perturbations (the mFR / mT5D are their mean).
PERTURBATIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow",
    "brightness", "translate", "rotate", "tilt", "scale",
)  # fmt: skip
VALIDATION_PERTURBATIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "shear")
#: Sequences whose frames are compared with the clean first frame rather than with the previous one.
NOISE_PERTURBATIONS: tuple[str, ...] = ("gaussian_noise", "shot_noise", "speckle_noise")


def check_names(where: str, param: str, names: object, known: Sequence[str]) -> tuple[str, ...]:
    """Validate a list of names against ``known``; an unknown one gets close-match suggestions."""
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise TypeError(f"`{where}`: `{param}` must be a non-empty list of names, got {names!r}.")
    out = []
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
            close += [k for k in known if str(name).lower() in k and k not in close][: max(0, 3 - len(close))]
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ValueError(f"`{where}`: `{param}` must name known items ({', '.join(known)}), got {name!r}.{hint}")
        if name in out:
            raise ValueError(f"`{where}`: `{param}` must not repeat a name, got {name!r} twice.")
        out.append(name)
    return tuple(out)


def bounded_mean_interval(mean: float, n: int, low: float, high: float, confidence: float) -> tuple[float, float]:
    """Conservative interval for the mean of ``n`` independent per-image values bounded in ``[low, high]``.

    Rescales to ``[0, 1]`` and applies the Wilson score interval with a fractional success rate: a
    variable in ``[0, 1]`` with mean ``p`` has variance at most ``p (1 - p)``, so this is at least
    as wide as the normal interval over images (it is exact Wilson for 0/1 values).

    Examples:
        >>> tuple(round(v, 4) for v in bounded_mean_interval(0.9, 100, 0.0, 1.0, 0.95))
        (0.8256, 0.9448)
    """
    if n <= 0 or not math.isfinite(mean) or high <= low:
        return float("nan"), float("nan")
    p = min(1.0, max(0.0, (mean - low) / (high - low)))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    if p == 0.0:
        lo = 0.0
    if p == 1.0:
        hi = 1.0
    return low + lo * (high - low), low + hi * (high - low)
