"""Shift-invariance toolbox: the published downsamplers beyond BlurPool, and anti-aliased upsampling.

Every downsampler maps ``(N, C, H, W)`` to ``(N, C, ceil(H / s_h), ceil(W / s_w))`` (BlurPool's size) for
any stride and map size, on any device and memory format, as a function and a module:

============  =========================================================  =====================================
method        layer / function                                           paper
============  =========================================================  =====================================
``blurpool``  :class:`antialias.BlurPool2d` / ``blur_pool2d``             Zhang, ICML 2019
``aps``       :class:`APS2d` / :func:`aps_downsample2d`                  Chaman & Dokmanic, CVPR 2021
``lps``       :class:`LPS2d` / :func:`lps_select2d`                      Rojas-Gomez et al., NeurIPS 2022
``ideal``     :class:`IdealDownsample2d` / :func:`ideal_downsample2d`    Grabinski et al., ECCV 2022 (FLC);
                                                                         Michaeli et al., CVPR 2023
``adaptive``  :class:`AdaptiveDownsample2d` / ``adaptive_downsample2d``  Zou et al., BMVC 2020
============  =========================================================  =====================================

Upsampling: :class:`BlurUpsample2d`, :class:`BlurConvTranspose2d` and the phase-aware
:class:`PolyphaseUpsample2d`. :func:`make_downsampler` builds any method's layer by name, as
:func:`antialias.convert` does with ``method=``.
"""

from __future__ import annotations

import difflib
from typing import Any

from torch import nn

from antialias import layers as _layers
from antialias.downsample._common import PhaseLink
from antialias.downsample.adaptive import AdaptiveDownsample2d, adaptive_downsample2d
from antialias.downsample.aps import (
    NORMS,
    APS2d,
    PhaseFollow2d,
    aps_downsample2d,
    aps_index2d,
    polyphase_select2d,
)
from antialias.downsample.ideal import IdealDownsample2d, ideal_downsample2d, ideal_lowpass2d
from antialias.downsample.lps import LPS2d, lps_select2d, lps_temperature, set_lps_temperature
from antialias.downsample.upsample import (
    BlurConvTranspose2d,
    BlurUpsample2d,
    PolyphaseUpsample2d,
    blur_upsample2d,
    polyphase_upsample2d,
    upsample_filter,
)

__all__ = [
    "METHODS",
    "NORMS",
    "APS2d",
    "AdaptiveDownsample2d",
    "BlurConvTranspose2d",
    "BlurUpsample2d",
    "IdealDownsample2d",
    "LPS2d",
    "PhaseFollow2d",
    "PhaseLink",
    "PolyphaseUpsample2d",
    "adaptive_downsample2d",
    "aps_downsample2d",
    "aps_index2d",
    "blur_upsample2d",
    "check_method",
    "ideal_downsample2d",
    "ideal_lowpass2d",
    "lps_select2d",
    "lps_temperature",
    "make_downsampler",
    "polyphase_select2d",
    "polyphase_upsample2d",
    "set_lps_temperature",
    "upsample_filter",
]

#: Names :func:`make_downsampler` and ``convert(method=...)`` accept; ``"blurpool"`` is the default.
METHODS = ("blurpool", "aps", "lps", "ideal", "adaptive")

#: Options each method's layer accepts through ``make_downsampler(**options)`` / ``convert(method_options=)``.
OPTIONS: dict[str, tuple[str, ...]] = {
    "blurpool": (),
    "aps": ("norm",),
    "lps": ("hidden_channels", "tau", "hard"),
    "ideal": ("real", "backend"),
    "adaptive": ("kernel_size", "groups"),
}


def check_method(method: Any, where: str) -> str:
    """``method`` if it names one of :data:`METHODS`, else a ValueError suggesting the closest."""
    if method not in METHODS:
        close = difflib.get_close_matches(str(method), METHODS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{where}: `method` must be one of {METHODS}, got {method!r}.{hint}")
    return str(method)


def check_options(method: str, options: Any, where: str) -> dict[str, Any]:
    """The ``method_options`` mapping, checked against what ``method``'s layer accepts."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"{where}: `method_options` must be a dict, got {type(options).__name__}.")
    allowed = OPTIONS[method]
    for key in options:
        if key not in allowed:
            raise ValueError(
                f"{where}: `method_options` for method {method!r} may set {allowed or 'nothing'}, got {key!r}."
            )
    return dict(options)


def make_downsampler(
    method: str,
    channels: int | None,
    stride: int | tuple[int, int] = 2,
    *,
    filter_size: Any = 4,
    padding_mode: str = "reflect",
    device: Any = None,
    dtype: Any = None,
    **options: Any,
) -> nn.Module:
    """The downsampling layer of ``method`` at ``stride`` for ``channels`` inputs.

    ``filter_size`` is BlurPool's filter and APS's and LPS's pre-blur (None or 1: none); ``ideal`` and
    ``adaptive`` ignore it (the adaptive filter's size is ``options["kernel_size"]``, default 3).

    Examples:
        >>> make_downsampler("aps", 8, 2, filter_size=None)
        APS2d(8, stride=(2, 2), filter_size=None, norm='l2', padding_mode='reflect')
    """
    where = "`make_downsampler`"
    method = check_method(method, where)
    opts = check_options(method, options, where)
    factory = {"device": device, "dtype": dtype}
    if method == "blurpool":
        return _layers.BlurPool2d(channels, filter_size, stride, padding_mode, **factory)
    if method == "aps":
        return APS2d(channels, stride, filter_size, padding_mode=padding_mode, **opts, **factory)
    if method == "lps":
        return LPS2d(channels, stride, filter_size, padding_mode=padding_mode, **opts, **factory)
    if method == "ideal":
        return IdealDownsample2d(channels, stride, **opts, **factory)
    if channels is None:
        raise ValueError(f"{where}: method 'adaptive' needs `channels` (its predictor is a conv), got None.")
    opts.setdefault("kernel_size", 3)
    return AdaptiveDownsample2d(channels, stride, padding_mode=padding_mode, **opts, **factory)
