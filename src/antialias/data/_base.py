"""In-memory image data sets: uint8 tensors (N, C, H, W) plus int64 targets."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["ImageTensorDataset"]


class ImageTensorDataset(Dataset):
    """A labelled image set held in memory as ``uint8`` tensors.

    Items are ``(image, label)`` with ``image`` a float32 tensor ``(C, H, W)`` in ``[0, 1]`` (after
    the optional ``transform``) and ``label`` an ``int``. The raw tensors stay available as
    :attr:`images` and :attr:`targets` for batched pipelines (see
    :func:`antialias.data.make_loader`, which gathers whole batches from them at once).

    Args:
        images: ``uint8`` tensor ``(N, C, H, W)``.
        targets: integer tensor ``(N,)`` with values in ``[0, len(classes))``.
        classes: class names; ``targets`` index into it.
        transform: optional callable applied to each float image ``(C, H, W)``.
        name: short name of the set, used in ``repr``.

    Raises:
        ValueError: on shapes, dtypes or label ranges that do not fit together.

    Examples:
        >>> ds = ImageTensorDataset(torch.zeros(2, 1, 4, 4, dtype=torch.uint8),
        ...                         torch.tensor([0, 1]), ["a", "b"])
        >>> img, label = ds[1]
        >>> tuple(img.shape), img.dtype, label, ds.num_classes, ds.image_size
        ((1, 4, 4), torch.float32, 1, 2, (4, 4))
    """

    def __init__(
        self,
        images: Tensor,
        targets: Tensor,
        classes: Sequence[str],
        *,
        transform: Callable[[Tensor], Tensor] | None = None,
        name: str = "images",
    ) -> None:
        where = f"{type(self).__name__}"
        if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
            got = (
                f"{images.dtype} {tuple(images.shape)}"
                if isinstance(images, Tensor)
                else type(images).__name__
            )
            raise ValueError(f"`{where}`: `images` must be a uint8 tensor (N, C, H, W), got {got}.")
        if not isinstance(targets, Tensor) or targets.ndim != 1 or targets.is_floating_point():
            raise ValueError(
                f"`{where}`: `targets` must be an integer tensor (N,), got "
                f"{getattr(targets, 'dtype', type(targets).__name__)} "
                f"{tuple(getattr(targets, 'shape', ()))}."
            )
        if len(targets) != len(images):
            raise ValueError(
                f"`{where}`: `targets` must hold one label per image, got {len(targets)} labels "
                f"for {len(images)} images."
            )
        classes = [str(c) for c in classes]
        if len(targets) and (int(targets.min()) < 0 or int(targets.max()) >= len(classes)):
            raise ValueError(
                f"`{where}`: `targets` must lie in [0, {len(classes)}), got "
                f"[{int(targets.min())}, {int(targets.max())}]."
            )
        self.images = images.contiguous()
        self.targets = targets.to(torch.int64)
        self.classes: list[str] = classes
        self.transform = transform
        self.name = name

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        """Channels per image (1 for grey, 3 for RGB)."""
        return int(self.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` of every image."""
        return (int(self.images.shape[2]), int(self.images.shape[3]))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = self.images[index].to(torch.float32).div_(255.0)  # (C, H, W) in [0, 1]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])

    def __repr__(self) -> str:
        c, (h, w) = self.in_channels, self.image_size
        return (
            f"{type(self).__name__}(name={self.name!r}, n={len(self)}, shape=({c}, {h}, {w}), "
            f"num_classes={self.num_classes})"
        )
