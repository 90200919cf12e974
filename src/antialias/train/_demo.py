"""A tiny learnable data set and model for doctests and smoke runs (no files, no downloads).

``--data antialias.train._demo:tiny_data --model antialias.train._demo:tiny_model`` trains in a second.
"""

from __future__ import annotations

import torch
from torch import nn

from antialias.data import ImageTensorDataset
from antialias.layers import BlurPool2d

__all__ = ["tiny_data", "tiny_model"]


def tiny_data(split: str = "train", root: str | None = None, n: int = 96) -> ImageTensorDataset:
    """``n`` random 1x8x8 images (seed 0 for "train", 1 for "test"); label 1 when the top half is
    brighter than the bottom half (so horizontal flips and small shifts keep the label).

    Returns:
        An :class:`antialias.data.ImageTensorDataset` (in memory, like Fashion-MNIST).
    """
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g)  # (N, 1, 8, 8)
    x = images.float()
    targets = (x[..., :4, :].mean((1, 2, 3)) > x[..., 4:, :].mean((1, 2, 3))).long()  # (N,)
    return ImageTensorDataset(images, targets, ["bottom", "top"], name="tiny")


def tiny_model(in_channels: int = 1, num_classes: int = 2, filter_size: int | str | None = None, *,
               batchnorm: bool = False, dropout: float = 0.0) -> nn.Module:
    """conv 3x3 (stride 2, or stride 1 + BlurPool2d when ``filter_size`` is set) [-> BN] -> ReLU
    [-> dropout] -> linear. BatchNorm and dropout let tests cover running statistics and RNG state.
    """
    if filter_size is None:
        layers: list[nn.Module] = [nn.Conv2d(in_channels, 4, 3, stride=2, padding=1)]
    else:
        layers = [nn.Conv2d(in_channels, 4, 3, padding=1), BlurPool2d(4, filter_size=filter_size, stride=2)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(4))
    layers.append(nn.ReLU())
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(4 * 4 * 4, num_classes))
