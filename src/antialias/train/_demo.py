"""A tiny learnable data set and model for doctests and smoke runs (no files, no downloads).

``--data antialias.train._demo:tiny_data --model antialias.train._demo:tiny_model`` trains in a second.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

__all__ = ["TinyImages", "tiny_data", "tiny_model"]


class TinyImages(Dataset):
    """``n`` random 1x8x8 uint8 images; the label says whether the top half is brighter (flip-invariant).

    Follows the in-memory data contract: ``images`` uint8 (N, C, H, W), ``targets`` int64 (N,),
    ``classes``; items are (float (C, H, W) in [0, 1], int).
    """

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g)  # (N, 1, 8, 8)
        x = self.images.float()
        self.targets = (x[..., :4, :].mean((1, 2, 3)) > x[..., 4:, :].mean((1, 2, 3))).long()  # (N,)
        self.classes = ["bottom", "top"]
        self.num_classes = 2

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i].float() / 255.0, int(self.targets[i])


def tiny_data(split: str = "train", root: str | None = None, n: int = 96) -> TinyImages:
    """The ``split`` ("train": seed 0, "test": seed 1) of :class:`TinyImages`."""
    return TinyImages(n, 0 if split == "train" else 1)


def tiny_model(in_channels: int = 1, num_classes: int = 2, filter_size: int | str | None = None) -> nn.Module:
    """conv 3x3 (stride 2, or stride 1 + BlurPool2d when ``filter_size`` is set) -> ReLU -> linear."""
    from antialias.layers import BlurPool2d

    if filter_size is None:
        down = [nn.Conv2d(in_channels, 4, 3, stride=2, padding=1)]
    else:
        down = [nn.Conv2d(in_channels, 4, 3, padding=1), BlurPool2d(4, filter_size=filter_size, stride=2)]
    return nn.Sequential(*down, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, num_classes))
