"""Compute kernels behind :mod:`antialias.functional`: one axis at a time, no validation.

``x`` is always batched ``(N, C, *spatial)``; ``dim`` is a spatial dim counted from the front.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def blur_axis(x: Tensor, row: Tensor, dim: int, stride: int) -> Tensor:
    """Correlate the (already padded) axis ``dim`` with ``row``, keeping every ``stride``-th output.

    Output length along ``dim``: ``floor((L - k) / stride) + 1``.
    """
    k = row.numel()
    if k == 1:
        index = [slice(None)] * x.ndim
        index[dim] = slice(None, None, stride)
        return x[tuple(index)]
    nd = x.ndim - 2
    channels = x.shape[1]
    shape = [1] * nd
    shape[dim - 2] = k
    strides = [1] * nd
    strides[dim - 2] = stride
    weight = row.to(dtype=x.dtype, device=x.device).reshape(1, 1, *shape).expand(channels, 1, *shape)
    return _CONV[nd](x, weight, stride=strides, groups=channels)


def dense_max_axis(x: Tensor, dim: int, kernel_size: int, dilation: int) -> Tensor:
    """Max over windows of ``kernel_size`` taps spaced ``dilation`` apart, at stride 1, along ``dim``.

    Output length: ``L - dilation * (kernel_size - 1)``. Built from ``torch.maximum`` of shifted
    views rather than ATen's stride-1 ``max_pool``, which is slow in NCHW on CPU.
    """
    length = x.shape[dim] - dilation * (kernel_size - 1)
    out = x.narrow(dim, 0, length)
    for j in range(1, kernel_size):
        out = torch.maximum(out, x.narrow(dim, j * dilation, length))
    return out
