"""Layer vocabulary of :func:`antialias.convert`: what counts as a pool, conv, norm or activation,
the key-preserving blur-first convolutions it installs, and the shape arithmetic it checks.

Private: :mod:`antialias.convert` is the public face.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.fx.node import Target

from antialias import layers as _layers
from antialias.convert import _filters as _cf
from antialias.convert import _methods
from antialias.filters import FilterSpec

# --------------------------------------------------------------------------- classes by role

MAXPOOLS: dict[type[nn.Module], int] = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3}
AVGPOOLS: dict[type[nn.Module], int] = {nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3}
CONVS: dict[type[nn.Module], int] = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}
BLURPOOLS = {1: _layers.BlurPool1d, 2: _layers.BlurPool2d, 3: _layers.BlurPool3d}
MAXBLURPOOLS = {1: _layers.MaxBlurPool1d, 2: _layers.MaxBlurPool2d, 3: _layers.MaxBlurPool3d}

#: Shape-preserving, per-position layers allowed between a conv and its activation.
NORM_MODULES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.Identity,
    nn.modules.dropout._DropoutNd,
)
NORM_FUNCTIONS = {F.batch_norm, F.group_norm, F.instance_norm, F.local_response_norm, F.dropout}

ACT_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.SiLU, nn.GELU, nn.ELU, nn.CELU, nn.SELU,
    nn.Mish, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Softplus, nn.Tanh, nn.Sigmoid,
)
ACT_FUNCTIONS = {
    F.relu, F.relu_, torch.relu, torch.relu_, F.relu6, F.leaky_relu, F.leaky_relu_, F.prelu, F.rrelu,
    F.silu, F.gelu, F.elu, F.elu_, F.celu, F.selu, F.mish, F.hardswish, F.hardsigmoid, F.hardtanh,
    F.softplus, torch.tanh, torch.sigmoid, F.tanh, F.sigmoid,
}
ACT_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_"}

# Keyed by torch.fx node target (``str | Callable``), so a node's target indexes them directly.
FUNCTIONAL_MAXPOOLS: dict[Target, int] = {F.max_pool1d: 1, F.max_pool2d: 2, F.max_pool3d: 3}
FUNCTIONAL_AVGPOOLS: dict[Target, int] = {F.avg_pool1d: 1, F.avg_pool2d: 2, F.avg_pool3d: 3}


# --------------------------------------------------------------------------- blur-first convs


class _PreBlurConvMixin:
    """A plain ``nn.ConvNd`` that blurs (and maybe subsamples) its input first.

    The conv's own ``weight``/``bias`` stay where they were, so ``state_dict`` keys do not change;
    the blur is the child ``blur`` whose filter buffers are non-persistent (no new keys).
    """

    blur: nn.Module

    def forward(self, input: Tensor) -> Tensor:
        return super().forward(self.blur(input))  # type: ignore[misc]


class PreBlurConv1d(_PreBlurConvMixin, nn.Conv1d):
    """``nn.Conv1d`` preceded by its ``blur`` (installed by :func:`antialias.convert`)."""


class PreBlurConv2d(_PreBlurConvMixin, nn.Conv2d):
    """``nn.Conv2d`` preceded by its ``blur`` (installed by :func:`antialias.convert`)."""


class PreBlurConv3d(_PreBlurConvMixin, nn.Conv3d):
    """``nn.Conv3d`` preceded by its ``blur`` (installed by :func:`antialias.convert`)."""


PREBLUR = {1: PreBlurConv1d, 2: PreBlurConv2d, 3: PreBlurConv3d}
PREBLUR_TYPES = tuple(PREBLUR.values())

#: Modules never traced into: already anti-aliased (their insides must not be converted again).
AA_LEAVES: tuple[type[nn.Module], ...] = (
    _layers._Filtered,
    _layers.ConvBlurPool2d,
    _layers.BlurConv2d,
    *PREBLUR_TYPES,
    *_methods.LEAVES,  # the other downsampling methods' layers (convert(method=...)) and upsamplers
)


def to_preblur(conv: nn.modules.conv._ConvNd, nd: int, blur: nn.Module, conv_stride: tuple[int, ...]) -> nn.Module:
    """Turn a plain ``nn.ConvNd`` into its ``PreBlurConvNd`` in place (same object, same keys)."""
    conv.__class__ = PREBLUR[nd]
    conv.stride = conv_stride
    conv.add_module("blur", blur)
    return conv


# --------------------------------------------------------------------------- shape arithmetic


def ntuple(value: int | Sequence[int], nd: int) -> tuple[int, ...]:
    return (value,) * nd if isinstance(value, int) else tuple(value)


def pool_out(length: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """Output length of ``nn.MaxPoolNd``/``nn.AvgPoolNd`` (``d=1`` for avg-pool), ceil_mode rule included."""
    span = length + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= length + p:
        out -= 1
    return out


def blur_out(length: int, s: int) -> int:
    """Output length of BlurPool at stride ``s``: ``ceil(L / s)``."""
    return math.ceil(length / s)


def always_same_size(k: int, s: int, p: int, d: int, ceil_mode: bool) -> bool:
    """Whether ``pool_out == blur_out`` for every valid input length.

    Both sizes are ``floor((L + c) / s)`` for constants ``c`` once ``L`` is past the window, so the
    difference is periodic in ``L`` with period ``s``: two periods past the smallest valid length
    cover every case.
    """
    low = max(1, d * (k - 1) + 1 - 2 * p)
    return all(pool_out(n, k, s, p, d, ceil_mode) == blur_out(n, s) for n in range(low, low + 2 * s + 2))


def axis_filter(
    filter_size: FilterSpec | Sequence[FilterSpec], strides: tuple[int, ...]
) -> FilterSpec | Sequence[FilterSpec]:
    """Blur only the subsampled axes: an axis kept at stride 1 gets the identity filter ``1``.

    ``"auto"`` and ``{stride: filter}`` mappings resolve per axis stride (``convert._filters``).
    """
    return _cf.axis_filters(filter_size, strides)
