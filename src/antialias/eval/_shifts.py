"""Per-image shifts of an image batch: crops at offsets, circular rolls, padding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["crop_at", "pad_images", "roll_by"]


def _grid(images: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    # rows (N, h), cols (N, w) -> (N, C, h, w) by advanced indexing (one gather, no Python loop).
    n, c = images.shape[:2]
    i = torch.arange(n, device=images.device)[:, None, None, None]
    ch = torch.arange(c, device=images.device)[None, :, None, None]
    return images[i, ch, rows[:, None, :, None], cols[:, None, None, :]]


def crop_at(images: Tensor, offsets: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop ``size`` from each image at its own ``(row, col)`` offset.

    Shape:
        images ``(N, C, H, W)``, offsets ``(N, 2)`` -> ``(N, C, size[0], size[1])``.
    """
    h, w = size
    offsets = offsets.to(images.device)
    rows = offsets[:, :1] + torch.arange(h, device=images.device)
    cols = offsets[:, 1:] + torch.arange(w, device=images.device)
    return _grid(images, rows, cols)


def roll_by(images: Tensor, shifts: Tensor) -> Tensor:
    """Circularly shift each image by its own ``(dh, dw)``: ``out[y, x] = in[y - dh, x - dw]`` (as ``torch.roll``).

    Shape:
        images ``(N, C, H, W)``, shifts ``(N, 2)`` -> ``(N, C, H, W)``.
    """
    h, w = images.shape[-2:]
    shifts = shifts.to(images.device)
    rows = (torch.arange(h, device=images.device) - shifts[:, :1]) % h
    cols = (torch.arange(w, device=images.device) - shifts[:, 1:]) % w
    return _grid(images, rows, cols)


def pad_images(images: Tensor, pad: int, mode: str) -> Tensor:
    """Pad all four sides by ``pad`` pixels with ``"zeros"`` or ``"reflect"``."""
    if pad == 0:
        return images
    if mode == "zeros":
        return F.pad(images, (pad,) * 4)
    if mode == "reflect":
        return F.pad(images, (pad,) * 4, mode="reflect")
    raise ValueError(f"`pad_images`: `pad_mode` must be 'zeros' or 'reflect', got {mode!r}.")
