"""Content-adaptive low-pass downsampling (after Zou, Xiao, Yu & Lee, "Delving deeper into anti-aliasing
in ConvNets", BMVC 2020): a small conv predicts, at every kept output position, a ``k x k`` filter per
channel group, normalised by a softmax (non-negative taps summing to 1: a low-pass), which is applied to
the input around that position.

Everything is computed only at the kept positions: the predictor is a ``3 x 3`` conv at the stride, and
the input is unfolded at the stride (``F.unfold``: the ``k x k`` windows of the kept positions only), so
the cost scales with the output size, not the input's.

Deviations from the paper: no BatchNorm in the predictor (its output goes straight to the softmax), and
the predictor starts at zero weights with a bias equal to the log of the binomial ``k x k`` filter, so an
untrained layer is exactly a BlurPool with the binomial filter of ``kernel_size`` taps (the paper starts
from a random predictor). ``groups`` is reduced to ``gcd(channels, groups)`` so any channel count works.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from antialias import filters as _filters
from antialias import functional as _F
from antialias.downsample import _common as _c

__all__ = ["AdaptiveDownsample2d", "adaptive_downsample2d"]


def _pad_same(x: Tensor, k: int, padding_mode: str) -> Tensor:
    before, after = _filters.padding(k)
    if before == after == 0:
        return x
    if padding_mode == "zeros":
        return F.pad(x, (before, after, before, after))
    if padding_mode == "circular":
        return F.pad(x, (before, after, before, after), mode="circular")
    h, w = x.shape[-2:]
    x = F.pad(x, (before, after, 0, 0), mode=_F._axis_mode(w, before, after, padding_mode))
    return F.pad(x, (0, 0, before, after), mode=_F._axis_mode(h, before, after, padding_mode))


def adaptive_downsample2d(
    input: Tensor,
    logits: Tensor,
    kernel_size: int = 3,
    stride: int | tuple[int, int] = 2,
    *,
    padding_mode: str = "reflect",
) -> Tensor:
    """Apply predicted per-position, per-group ``k x k`` filters at the kept positions only.

    Args:
        input: ``(N, C, H, W)``.
        logits: ``(N, G * k * k, ceil(H / s_h), ceil(W / s_w))`` filter logits, ``G`` dividing ``C``;
            a softmax over the ``k * k`` taps turns them into filters.
        kernel_size: ``k``.
        stride: ``s`` or ``(s_h, s_w)``.
        padding_mode: Padding of the input so every output has a full window.

    Shape:
        ``(N, C, H, W) -> (N, C, ceil(H / s_h), ceil(W / s_w))``.

    Examples:
        >>> x = torch.randn(1, 4, 8, 8)
        >>> uniform = torch.zeros(1, 2 * 9, 4, 4)  # 2 groups, equal logits: a 3x3 box filter
        >>> out = adaptive_downsample2d(x, uniform, 3, 2, padding_mode="zeros")
        >>> torch.allclose(out, F.avg_pool2d(x, 3, 2, 1, count_include_pad=True), atol=1e-6)
        True
    """
    where = "`adaptive_downsample2d`"
    _c.check_input(input, where)
    s = _c.pair(stride, "stride", where)
    _c.check_padding_mode(padding_mode, where)
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
        raise ValueError(f"{where}: `kernel_size` must be a positive int, got {kernel_size!r}.")
    n, c, h, w = input.shape
    ho, wo = _c.out_size((h, w), s)
    kk = kernel_size * kernel_size
    if (
        not isinstance(logits, Tensor)
        or logits.ndim != 4
        or logits.shape[0] != n
        or logits.shape[2:] != (ho, wo)
        or logits.shape[1] % kk
        or c % (logits.shape[1] // kk or 1)
        or logits.shape[1] == 0
    ):
        raise ValueError(
            f"{where}: `logits` must have shape ({n}, G * {kk}, {ho}, {wo}) with G dividing {c}, "
            f"got {tuple(getattr(logits, 'shape', ()))!r}."
        )
    return _apply(input, logits, kernel_size, s, padding_mode)


def _apply(x: Tensor, logits: Tensor, k: int, s: tuple[int, int], padding_mode: str) -> Tensor:
    n, c, h, w = x.shape
    ho, wo = _c.out_size((h, w), s)
    g = logits.shape[1] // (k * k)
    fmt = _c.memory_format(x)
    taps = logits.view(n, g, k * k, ho, wo).softmax(dim=2).to(x.dtype)  # (N, G, k*k, Ho, Wo)
    # the kept windows only, as columns (its backward is one fold); k*k strided views measured faster
    # forward but 1.4x slower forward + backward (each view's gradient is a full-size scatter)
    cols = F.unfold(_pad_same(x, k, padding_mode), k, stride=s)  # (N, C*k*k, Ho*Wo)
    cols = cols.view(n, g, c // g, k * k, ho, wo)
    out = (cols * taps.unsqueeze(2)).sum(dim=3)  # (N, G, C/G, Ho, Wo)
    return out.view(n, c, ho, wo).contiguous(memory_format=fmt)


class AdaptiveDownsample2d(nn.Module):
    """Content-adaptive low-pass downsampling (after Zou et al., BMVC 2020) as a layer.

    Args:
        channels: Input channels (needed: the predictor is a conv).
        stride: ``s`` or ``(s_h, s_w)``.
        kernel_size: Taps ``k`` of the predicted ``k x k`` filters (default 3).
        groups: Channel groups sharing one filter (reduced to ``gcd(channels, groups)``; default 8).
        padding_mode: Padding of the input and of the predictor's conv.

    ``state_dict`` keys: ``predictor.weight``, ``predictor.bias``.

    Shape:
        ``(N, C, H, W) -> (N, C, ceil(H / s_h), ceil(W / s_w))``.

    Examples:
        >>> layer = AdaptiveDownsample2d(16, stride=2)
        >>> layer(torch.randn(2, 16, 9, 9)).shape
        torch.Size([2, 16, 5, 5])
    """

    def __init__(
        self,
        channels: int,
        stride: int | tuple[int, int] = 2,
        kernel_size: int = 3,
        groups: int = 8,
        padding_mode: str = "reflect",
        *,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        where = "`AdaptiveDownsample2d`"
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"{where}: `channels` must be a positive int, got {channels!r}.")
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
            raise ValueError(f"{where}: `kernel_size` must be a positive int, got {kernel_size!r}.")
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"{where}: `groups` must be a positive int, got {groups!r}.")
        _c.check_padding_mode(padding_mode, where)
        self.channels = channels
        self.stride = _c.pair(stride, "stride", where)
        self.kernel_size = kernel_size
        self.groups = math.gcd(channels, groups)
        self.padding_mode = padding_mode
        self.predictor = nn.Conv2d(
            channels, self.groups * kernel_size * kernel_size, 3, stride=self.stride, padding=1,
            padding_mode=cast(Any, padding_mode), device=device, dtype=dtype,
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero weights, bias = log of the binomial ``k x k`` filter: starts as that BlurPool."""
        k = self.kernel_size
        row = _filters.binomial(k)
        log_taps = torch.log(row[:, None] * row[None, :]).flatten()  # (k*k,)
        with torch.no_grad():
            self.predictor.weight.zero_()
            self.predictor.bias.copy_(log_taps.repeat(self.groups).to(self.predictor.bias))  # type: ignore[union-attr]

    def forward(self, x: Tensor) -> Tensor:
        _c.check_input(x, "`AdaptiveDownsample2d`")
        if x.shape[1] != self.channels:
            raise ValueError(
                f"`AdaptiveDownsample2d`: expected {self.channels} channels, got input of shape {tuple(x.shape)}."
            )
        return _apply(x, self.predictor(x), self.kernel_size, self.stride, self.padding_mode)

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, stride={self.stride}, kernel_size={self.kernel_size}, groups={self.groups}, "
            f"padding_mode={self.padding_mode!r}"
        )
