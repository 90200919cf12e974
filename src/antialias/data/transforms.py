"""Tensor transforms for training and evaluation, on one image ``(C, H, W)`` or a batch ``(N, C, H, W)``.

Every random transform draws its parameters from ``k`` uniform numbers per image (``u`` of shape
``(N, k)``, float64 in ``[0, 1)``), in two steps: ``apply(x, u)`` is pure, and ``__call__(x,
generator)`` fills ``u`` from an explicit :class:`torch.Generator`. The loader
(:func:`antialias.data.make_loader`) fills ``u`` instead with :func:`keyed_uniforms` of
``(seed, epoch, sample index)``, so an image's augmentation does not depend on the batch it lands
in, the number of workers, the number of ranks or where a resumed epoch restarts.

Why not kornia.augmentation (evaluated, 0.9.0 with torch 2.13.0 CPU): it imports and works, but
its random ops take no ``torch.Generator`` (they read the global RNG), cost ~8 ms per call on a
single image (per-sample use in a loader would add minutes per epoch) and add a 2 s import.
The ops needed here are a few lines of indexing each.

Cropping/flipping move pixels only (exact); :func:`resize` is bilinear with anti-aliasing
(``F.interpolate(..., antialias=True)``), the shorter side to ``size`` as in the usual ImageNet
evaluation (256 then a 224 centre crop).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from antialias.data.seeding import AUGMENT, derived_seed, index_uniforms

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CenterCrop",
    "Compose",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "Resize",
    "ResizeCenterCrop",
    "Transform",
    "center_crop",
    "channel_stats",
    "default_transform",
    "horizontal_flip",
    "keyed_uniforms",
    "normalize",
    "random_crop",
    "resize",
    "resize_center_crop",
]

#: ImageNet channel statistics (RGB, images in [0, 1]) used by the usual pretrained models.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _pair(value: int | Sequence[int], name: str, where: str) -> tuple[int, int]:
    items = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(items, (tuple, list))
        or len(items) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in items)
    ):
        raise ValueError(
            f"`{where}`: `{name}` must be a positive int or a pair of them, got {value!r}."
        )
    return int(items[0]), int(items[1])


def _as_batch(x: Tensor, where: str) -> tuple[Tensor, bool]:
    if not isinstance(x, Tensor):
        raise TypeError(f"`{where}`: `input` must be a torch.Tensor, got {type(x).__name__}.")
    if x.ndim == 3:
        return x.unsqueeze(0), False
    if x.ndim == 4:
        return x, True
    raise ValueError(
        f"`{where}`: `input` must have shape (C, H, W) or (N, C, H, W), got {tuple(x.shape)}."
    )


# -------------------------------------------------------------------------------- uniform sources


def keyed_uniforms(seed: int, epoch: int, indices: Tensor | Sequence[int], k: int) -> Tensor:
    """``k`` uniform numbers in ``[0, 1)`` per index, a pure function of ``(seed, epoch, index)``.

    :func:`antialias.data.seeding.index_uniforms` keyed by ``derived_seed(seed, AUGMENT, epoch)``
    (the augmentation stream of :mod:`antialias.data.seeding`). Runs started before this scheme
    (which mixed ``seed`` and ``epoch`` by SplitMix64 directly) drew other numbers: a resumed run
    must be resumed with the version that started it, and augmentations differ from older runs.

    Args:
        seed: run seed.
        epoch: epoch number.
        indices: data set indices ``(N,)``.
        k: numbers per index.

    Returns:
        float64 tensor ``(N, k)``.

    Examples:
        >>> a = keyed_uniforms(0, 1, [5, 7], 3)
        >>> torch.equal(a[1], keyed_uniforms(0, 1, [7], 3)[0]), a.shape, bool((a < 1).all())
        (True, torch.Size([2, 3]), True)
    """
    return index_uniforms(derived_seed(seed, AUGMENT, epoch), indices, k)


# -------------------------------------------------------------------------------------- transforms


class Transform:
    """Base class: ``num_uniforms`` random numbers per image, consumed by :meth:`apply`."""

    num_uniforms: int = 0

    def apply(self, x: Tensor, u: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Transform a batch ``(N, C, H, W)`` with uniforms ``u`` of shape ``(N, num_uniforms)``."""
        raise NotImplementedError

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Transform one image ``(C, H, W)`` or a batch, drawing from ``generator`` (global RNG if None)."""
        xb, batched = _as_batch(x, type(self).__name__)
        u = torch.rand(xb.shape[0], self.num_uniforms, generator=generator, dtype=torch.float64)
        out = self.apply(xb, u)
        return out if batched else out[0]


class Compose(Transform):
    """Apply transforms in order; each gets its own slice of the uniforms.

    Examples:
        >>> t = Compose([RandomCrop(4, padding=1), RandomHorizontalFlip()])
        >>> t.num_uniforms
        3
        >>> g = torch.Generator().manual_seed(0)
        >>> tuple(t(torch.rand(2, 1, 4, 4), g).shape)
        (2, 1, 4, 4)
    """

    def __init__(self, transforms: Sequence[Transform | Callable[[Tensor], Tensor]]) -> None:
        self.transforms = list(transforms)
        self.num_uniforms = sum(getattr(t, "num_uniforms", 0) for t in self.transforms)

    def apply(self, x: Tensor, u: Tensor) -> Tensor:
        start = 0
        for t in self.transforms:
            k = getattr(t, "num_uniforms", 0)
            x = t.apply(x, u[:, start : start + k]) if isinstance(t, Transform) else t(x)
            start += k
        return x

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


class RandomCrop(Transform):
    """Pad by ``padding`` on every side, then crop ``size`` at a uniform random offset per image.

    Args:
        size: output ``(h, w)`` (an int for square).
        padding: pixels added on each side before cropping.
        padding_mode: ``"zeros"`` or ``"reflect"``.

    Shape:
        ``(N, C, H, W) -> (N, C, h, w)``; needs ``h <= H + 2 * padding`` and likewise ``w``.
    """

    num_uniforms = 2

    def __init__(
        self, size: int | Sequence[int], *, padding: int = 0, padding_mode: str = "zeros"
    ) -> None:
        self.size = _pair(size, "size", "RandomCrop")
        if not isinstance(padding, int) or isinstance(padding, bool) or padding < 0:
            raise ValueError(f"`RandomCrop`: `padding` must be an int >= 0, got {padding!r}.")
        if padding_mode not in ("zeros", "reflect"):
            raise ValueError(
                f"`RandomCrop`: `padding_mode` must be 'zeros' or 'reflect', got {padding_mode!r}."
            )
        self.padding, self.padding_mode = padding, padding_mode

    def apply(self, x: Tensor, u: Tensor) -> Tensor:
        p, (h, w) = self.padding, self.size
        if p:
            mode = "constant" if self.padding_mode == "zeros" else "reflect"
            x = F.pad(x, (p, p, p, p), mode=mode)  # (N, C, H+2p, W+2p)
        n, c, hp, wp = x.shape
        if h > hp or w > wp:
            raise ValueError(
                f"`RandomCrop`: `size` must fit the padded image {(hp, wp)}, got {(h, w)}."
            )
        u = u.to(torch.float64)
        top = (u[:, 0] * (hp - h + 1)).floor().long().clamp_(0, hp - h)  # (N,)
        left = (u[:, 1] * (wp - w + 1)).floor().long().clamp_(0, wp - w)
        # Two gathers (rows, then columns) beat one 4-D advanced index about 2x on CPU.
        rows = (top[:, None] + torch.arange(h)).to(x.device).view(n, 1, h, 1).expand(n, c, h, wp)
        x = x.gather(2, rows)  # (N, C, h, W+2p)
        cols = (left[:, None] + torch.arange(w)).to(x.device).view(n, 1, 1, w).expand(n, c, h, w)
        return x.gather(3, cols)  # (N, C, h, w)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding}, padding_mode={self.padding_mode!r})"


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability ``p``."""

    num_uniforms = 1

    def __init__(self, p: float = 0.5) -> None:
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
            raise ValueError(f"`RandomHorizontalFlip`: `p` must be a number in [0, 1], got {p!r}.")
        self.p = float(p)

    def apply(self, x: Tensor, u: Tensor) -> Tensor:
        flip = (u[:, 0] < self.p).to(x.device)[:, None, None, None]  # (N, 1, 1, 1)
        return torch.where(flip, x.flip(-1), x)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Resize(Transform):
    """Resize so the shorter side is ``size`` (int), or to exactly ``(h, w)``; bilinear, anti-aliased."""

    def __init__(self, size: int | Sequence[int]) -> None:
        if isinstance(size, int) and not isinstance(size, bool):
            if size < 1:
                raise ValueError(f"`Resize`: `size` must be >= 1, got {size!r}.")
            self.size: int | tuple[int, int] = size
        else:
            self.size = _pair(size, "size", "Resize")

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        if isinstance(self.size, tuple):
            return self.size
        if h <= w:
            return self.size, max(1, int(self.size * w / h))
        return max(1, int(self.size * h / w)), self.size

    def apply(self, x: Tensor, u: Tensor | None = None) -> Tensor:
        oh, ow = self.output_hw(x.shape[-2], x.shape[-1])
        if (oh, ow) == tuple(x.shape[-2:]):
            return x
        dtype = x.dtype
        x = x if x.is_floating_point() else x.float()
        out = F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False, antialias=True)
        return out if dtype.is_floating_point else out.round().clamp(0, 255).to(dtype)

    def __repr__(self) -> str:
        return f"Resize({self.size})"


class CenterCrop(Transform):
    """Crop the central ``size`` (an image smaller than ``size`` is an error)."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair(size, "size", "CenterCrop")

    def apply(self, x: Tensor, u: Tensor | None = None) -> Tensor:
        (h, w), (H, W) = self.size, x.shape[-2:]
        if h > H or w > W:
            raise ValueError(f"`CenterCrop`: `size` must fit the image {(H, W)}, got {(h, w)}.")
        top, left = (H - h) // 2, (W - w) // 2
        return x[..., top : top + h, left : left + w]

    def __repr__(self) -> str:
        return f"CenterCrop({self.size})"


class ResizeCenterCrop(Compose):
    """ImageNet evaluation: shorter side to ``resize_size`` (256), then the central ``crop_size`` (224).

    Examples:
        >>> ResizeCenterCrop()(torch.rand(3, 300, 400)).shape
        torch.Size([3, 224, 224])
    """

    def __init__(self, resize_size: int = 256, crop_size: int | Sequence[int] = 224) -> None:
        super().__init__([Resize(resize_size), CenterCrop(crop_size)])
        self.resize_size = resize_size
        self.output_size = _pair(crop_size, "crop_size", "ResizeCenterCrop")

    def __repr__(self) -> str:
        return f"ResizeCenterCrop({self.resize_size}, {self.output_size})"


class Normalize(Transform):
    """``(x - mean) / std`` per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(
                f"`Normalize`: `std` must be positive and as long as `mean`, got mean={tuple(mean)!r}, "
                f"std={tuple(std)!r}."
            )
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)

    def apply(self, x: Tensor, u: Tensor | None = None) -> Tensor:
        if x.shape[-3] != len(self.mean):
            raise ValueError(
                f"`Normalize`: `input` must have {len(self.mean)} channels, got {x.shape[-3]}."
            )
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device)[:, None, None]
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device)[:, None, None]
        return (x - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


# ------------------------------------------------------------------------------ functional forms


def random_crop(
    x: Tensor,
    size: int | Sequence[int],
    *,
    padding: int = 0,
    padding_mode: str = "zeros",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Functional :class:`RandomCrop`; one offset per image of a batch.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> random_crop(torch.rand(8, 3, 32, 32), 32, padding=4, generator=g).shape
        torch.Size([8, 3, 32, 32])
    """
    return RandomCrop(size, padding=padding, padding_mode=padding_mode)(x, generator)


def horizontal_flip(
    x: Tensor, *, p: float = 0.5, generator: torch.Generator | None = None
) -> Tensor:
    """Functional :class:`RandomHorizontalFlip` (``p=1`` always flips).

    Examples:
        >>> horizontal_flip(torch.tensor([[[1., 2., 3.]]]), p=1.0)
        tensor([[[3., 2., 1.]]])
    """
    return RandomHorizontalFlip(p)(x, generator)


def resize(x: Tensor, size: int | Sequence[int]) -> Tensor:
    """Functional :class:`Resize`.

    Examples:
        >>> resize(torch.rand(2, 3, 40, 80), 20).shape
        torch.Size([2, 3, 20, 40])
    """
    return Resize(size)(x)


def center_crop(x: Tensor, size: int | Sequence[int]) -> Tensor:
    """Functional :class:`CenterCrop`.

    Examples:
        >>> center_crop(torch.arange(16.).view(1, 4, 4), 2)
        tensor([[[ 5.,  6.],
                 [ 9., 10.]]])
    """
    return CenterCrop(size)(x)


def resize_center_crop(
    x: Tensor, resize_size: int = 256, crop_size: int | Sequence[int] = 224
) -> Tensor:
    """Functional :class:`ResizeCenterCrop`."""
    return ResizeCenterCrop(resize_size, crop_size)(x)


def normalize(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Functional :class:`Normalize`.

    Examples:
        >>> normalize(torch.ones(1, 2, 2), [0.5], [0.25])
        tensor([[[2., 2.],
                 [2., 2.]]])
    """
    return Normalize(mean, std)(x)


# ----------------------------------------------------------------------------- data set defaults


def channel_stats(images: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of a ``uint8`` stack ``(N, C, H, W)``, on the ``[0, 1]`` scale.

    Examples:
        >>> channel_stats(torch.tensor([[[[0, 255]]]], dtype=torch.uint8))
        ((0.5,), (0.5,))
    """
    # Exact and memory-light: a 256-bin histogram per channel instead of a float copy.
    values = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = torch.bincount(images[:, c].reshape(-1), minlength=256).to(torch.float64)
        mean = float((hist * values).sum() / hist.sum())
        var = float((hist * (values - mean) ** 2).sum() / hist.sum())
        means.append(mean)
        stds.append(var**0.5)
    return tuple(means), tuple(stds)


def default_transform(dataset: object, *, train: bool, normalize: bool = True) -> Compose:
    """The usual batch transform for a data set from :func:`antialias.data.load_dataset`.

    Training: random crop with 4 pixels of zero padding (2 for 28x28 sets) and, except for MNIST
    digits, a horizontal flip. Folder sets (already resized and centre-cropped per image) get the
    flip only. Then normalisation by the set's own channel statistics (ImageNet's for folders).

    Args:
        dataset: a data set from :func:`antialias.data.load_dataset`.
        train: add the random augmentation.
        normalize: append :class:`Normalize`.

    Returns:
        A :class:`Compose` for batches (pass it to ``make_loader(transform=...)``).
    """
    images = getattr(dataset, "images", None)
    size = getattr(dataset, "image_size", None)
    name = str(getattr(dataset, "name", ""))
    steps: list[Transform] = []
    if train and images is not None and size is not None:
        steps.append(RandomCrop(size, padding=2 if max(size) <= 28 else 4))
    if train and not name.startswith("mnist"):
        steps.append(RandomHorizontalFlip())
    if normalize:
        if images is not None:
            mean, std = channel_stats(images)
        else:
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        steps.append(Normalize(mean, std))
    return Compose(steps)
