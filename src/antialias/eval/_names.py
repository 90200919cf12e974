"""ImageNet-C / ImageNet-P names shared by the corruption and perturbation packages, and their validation.

Names are Hendrycks & Dietterich's (ICLR 2019), as collected in ``tests/reference/paper_results.md``;
every published number elsewhere is keyed by these names, never by position.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

__all__ = [
    "ALL_CORRUPTIONS",
    "CORRUPTIONS",
    "EXTRA_CORRUPTIONS",
    "GENERATED_PERTURBATIONS",
    "KNOWN_PERTURBATIONS",
    "NOISE_PERTURBATIONS",
    "PERTURBATIONS",
    "SEVERITIES",
    "VALIDATION_PERTURBATIONS",
    "check_names",
    "check_severities",
    "is_noise",
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
#: ImageNet-C severities.
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

#: The 10 ImageNet-P test perturbations (the mFR / mT5D are their mean).
PERTURBATIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow",
    "brightness", "translate", "rotate", "tilt", "scale",
)  # fmt: skip
VALIDATION_PERTURBATIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "shear")
#: Sequences whose frames are compared with the clean first frame rather than with the previous one.
NOISE_PERTURBATIONS: tuple[str, ...] = ("gaussian_noise", "shot_noise", "speckle_noise")
#: Perturbations :func:`~antialias.eval.perturbation.perturbation_sequence` generates: all 10, in
#: ImageNet-P's order. The position of a perturbation is part of its frames' seed
#: (:func:`~antialias.eval.perturbation.perturbation_seed`): gaussian_noise 0 and shot_noise 1 as before
#: snow and tilt joined; a new name goes at the end.
GENERATED_PERTURBATIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow",
    "brightness", "translate", "rotate", "tilt", "scale",
)  # fmt: skip
#: Names the perturbation metric accepts: ImageNet-P's test and validation sets and CIFAR-10-P's
#: noise difficulty files.
KNOWN_PERTURBATIONS: tuple[str, ...] = (
    PERTURBATIONS + VALIDATION_PERTURBATIONS + tuple(f"{n}_{d}" for n in NOISE_PERTURBATIONS for d in (2, 3))
)


def is_noise(name: str) -> bool:
    """Whether frames of perturbation ``name`` are compared with the clean first frame.

    Examples:
        >>> is_noise("shot_noise"), is_noise("gaussian_noise_3"), is_noise("rotate")
        (True, True, False)
    """
    return name in NOISE_PERTURBATIONS or name.rsplit("_", 1)[0] in NOISE_PERTURBATIONS


def check_names(where: str, param: str, names: object, known: Sequence[str]) -> tuple[str, ...]:
    """Validate a list of names against ``known``; an unknown one gets close-match suggestions."""
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise TypeError(f"`{where}`: `{param}` must be a non-empty list of names, got {names!r}.")
    out: list[str] = []
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


def check_severities(where: str, severities: object) -> tuple[int, ...]:
    """Validate a non-empty list of distinct severities in 1..5."""
    if isinstance(severities, int) or not isinstance(severities, Sequence) or not severities:
        raise TypeError(f"`{where}`: `severities` must be a non-empty list of ints in 1..5, got {severities!r}.")
    out = tuple(severities)
    if any(isinstance(s, bool) or s not in SEVERITIES for s in out) or len(set(out)) != len(out):
        raise ValueError(f"`{where}`: `severities` must be distinct ints in 1..5, got {severities!r}.")
    return out
