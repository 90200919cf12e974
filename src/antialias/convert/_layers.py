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

from antialias import _kernels
from antialias import functional as _F
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


#: Anti-aliasing layers of other packages, by (top-level module, class name); never imported.
FOREIGN_AA: dict[str, frozenset[str]] = {
    "timm": frozenset({"BlurPool2d", "AntiAliasDownsampleLayer"}),
    "antialiased_cnns": frozenset({"BlurPool", "BlurPool1D", "Downsample", "Downsample1D"}),
    "kornia": frozenset({"BlurPool2D", "MaxBlurPool2D", "EdgeAwareBlurPool2D"}),
}


def foreign_antialiased(mod: nn.Module) -> bool:
    """Whether ``mod`` is another package's anti-aliasing layer (timm's ``BlurPool2d``, the reference
    package's ``antialiased_cnns.BlurPool``, kornia's ``BlurPool2D``/``MaxBlurPool2D``), or any class
    named like a blur-pool; found by class name and module, without importing those packages."""
    cls = type(mod)
    top = cls.__module__.split(".")[0]
    if cls.__name__ in FOREIGN_AA.get(top, frozenset()):
        return True
    return "blurpool" in cls.__name__.lower().replace("_", "") and top != "antialias"


def antialiased(mod: nn.Module) -> bool:
    """Whether ``mod`` already anti-aliases (ours or another package's): convert leaves it alone."""
    return isinstance(mod, AA_LEAVES) or foreign_antialiased(mod)


def to_preblur(conv: nn.modules.conv._ConvNd, nd: int, blur: nn.Module, conv_stride: tuple[int, ...]) -> nn.Module:
    """Turn a plain ``nn.ConvNd`` into its ``PreBlurConvNd`` in place (same object, same keys)."""
    conv.__class__ = PREBLUR[nd]
    conv.stride = conv_stride
    conv.add_module("blur", blur)
    return conv


# --------------------------------------------------------------------------- avg-pool drop-in


class _AvgBlurPoolNd(_layers._BlurPoolNd):
    """BlurPool with the output size of ``nn.AvgPoolNd(kernel_size, stride, padding, ceil_mode)``.

    Design: the avg-pool's box window ``i`` covers ``[i*s - p, i*s - p + k - 1]``; the blur's ``n``-tap
    window ``i`` is put on the same centre (rounded down: it starts at ``i*s - p + floor((k - n) / 2)``)
    and there are exactly as many windows as avg-pool gives, ``floor((L + 2p - k) / s) + 1`` (ceil_mode:
    rounded up, the last window starting inside the input or left padding, as PyTorch counts). The input
    is padded (in ``padding_mode``) or cropped to fit those windows, then blurred and subsampled. The
    blur replaces the box average as in the paper (its filter sums to 1), so ``count_include_pad`` and
    ``divisor_override``, which only change the box's divisor, are recorded but do not apply; neither
    changes the output size. For ``nn.AvgPool2d(2)`` and an even size this is exactly
    :class:`~antialias.BlurPool2d` (same windows), which is what the reference puts in DenseNet's
    transitions; on an odd size it drops BlurPool's extra last row as the avg-pool floors it.
    """

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
        *,
        channels: int | None = None,
        filter_size: FilterSpec | Sequence[FilterSpec] = 4,
        padding_mode: str = "reflect",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        where = type(self).__name__
        kernel = _F._tuple(kernel_size, self._nd, "kernel_size", where, 1)
        strides = kernel if stride is None or stride == [] else _F._tuple(stride, self._nd, "stride", where, 1)
        super().__init__(channels, filter_size, strides, padding_mode, device=device, dtype=dtype)
        self.kernel_size = kernel
        self.padding = _F._tuple(padding, self._nd, "padding", where, 0)
        if any(p > k // 2 for p, k in zip(self.padding, kernel, strict=True)):
            raise ValueError(
                f"{where}: `padding` must be at most half of `kernel_size` (as for nn.AvgPool{self._nd}d), "
                f"got padding={padding!r}, kernel_size={kernel_size!r}."
            )
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override

    def output_size(self, sizes: Sequence[int]) -> tuple[int, ...]:
        """The avg-pool's output size for spatial ``sizes`` (what :meth:`forward` returns)."""
        return tuple(
            pool_out(n, k, s, p, 1, self.ceil_mode)
            for n, k, s, p in zip(sizes, self.kernel_size, self.stride, self.padding, strict=True)
        )

    def forward(self, x: Tensor) -> Tensor:
        where = type(self).__name__
        _F._check_input(x, self._nd, where)
        _layers._check_channels(x, self._nd, self.channels, where)
        unbatched = x.ndim == self._nd + 1
        if unbatched:
            x = x.unsqueeze(0)
        rows = tuple(row.to(device=x.device) for row in self.filter)
        pads, modes = [], []
        for axis in range(self._nd):
            dim, length = 2 + axis, x.shape[2 + axis]
            k, s, p, n = self.kernel_size[axis], self.stride[axis], self.padding[axis], rows[axis].numel()
            out = pool_out(length, k, s, p, 1, self.ceil_mode)
            if out < 1:
                raise ValueError(
                    f"{where}: input of shape {tuple(x.shape)} is too small for kernel_size={self.kernel_size} "
                    f"and padding={self.padding} (output size {out})."
                )
            start = -p + (k - n) // 2  # first blur window, aligned with the first avg-pool window
            before, after = -start, (out - 1) * s + start + n - length
            if before < 0:
                x = x.narrow(dim, -before, x.shape[dim] + before)
            if after < 0:
                x = x.narrow(dim, 0, x.shape[dim] + after)
            pad = (max(before, 0), max(after, 0))
            mode = _F._axis_mode(x.shape[dim], *pad, self.padding_mode)
            if n == 1 and s == 1 and pad != (0, 0):  # the kernels treat a 1-tap stride-1 axis as identity
                x = _kernels.pad_axis(x, dim, *pad, mode)
                pad = (0, 0)
            pads.append(pad)
            modes.append(mode)
        out_t = _kernels.blur_pool(x, rows, self.stride, pads, modes)  # (N, C, *avg-pool output size)
        return out_t.squeeze(0) if unbatched else out_t

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"ceil_mode={self.ceil_mode}, {super().extra_repr()}"
        )


class AvgBlurPool1d(_AvgBlurPoolNd):
    """:class:`AvgBlurPool2d` in 1-D: ``nn.AvgPool1d``'s output size."""

    _nd = 1


class AvgBlurPool2d(_AvgBlurPoolNd):
    """Anti-aliased drop-in for ``nn.AvgPool2d``: a blur-pool with exactly the avg-pool's output size.

    :func:`antialias.convert.convert` puts it in place of a strided ``nn.AvgPool2d`` whose output size
    is not ``ceil(L / s)`` for every ``L`` (e.g. ``nn.AvgPool2d(2)`` floors odd sizes), so the pool is
    converted without an example input. See ``_AvgBlurPoolNd`` for the window arithmetic.

    Args:
        kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override: Those of the
            ``nn.AvgPool2d`` replaced (the last two do not apply to the blur; kept for the record).
        channels: Expected input channels (checked), or None.
        filter_size: The blur (binomial taps, a name, a custom 1-D tensor, or a pair for (H, W)).
        padding_mode: Padding of the blur: ``"reflect"``, ``"replicate"``, ``"zeros"`` or ``"circular"``.
        device, dtype: Of the filter buffers.

    Shape:
        ``(N, C, H, W) -> (N, C, H_out, W_out)`` with ``H_out = floor((H + 2p - k) / s) + 1`` (ceil with
        ``ceil_mode``, the last window starting inside the input or left padding), as ``nn.AvgPool2d``.

    Examples:
        >>> pool = AvgBlurPool2d(2)
        >>> pool(torch.randn(1, 4, 7, 8)).shape
        torch.Size([1, 4, 3, 4])
    """

    _nd = 2


class AvgBlurPool3d(_AvgBlurPoolNd):
    """:class:`AvgBlurPool2d` in 3-D: ``nn.AvgPool3d``'s output size."""

    _nd = 3


AVGBLURPOOLS = {1: AvgBlurPool1d, 2: AvgBlurPool2d, 3: AvgBlurPool3d}


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
