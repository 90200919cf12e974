"""ImageNet-C corruptions generated on the fly, through the optional ``imagecorruptions`` library.

Install the extra with ``pip install "antialias[corruptions]"`` (the maintained
``imagecorruptions-imaug`` fork); nothing else in antialias needs it, and pre-made sets (ImageNet-C
folders, CIFAR-10-C files, :mod:`antialias.eval.corruption.readers`) are read without it.

Deviations from ImageNet-C, stated once: on-the-fly corruptions use the library's ImageNet-C
parameters at any image size (CIFAR-10-C used milder, re-tuned parameters: use the released files
to compare with published CIFAR numbers); they are not JPEG-compressed afterwards (the released
ImageNet-C is, at quality 85). The library needs ``HxWx3`` uint8 images of at least 32x32: grey
images are replicated to 3 channels and mapped back by the channel mean; images with a side under
16 px are first enlarged by nearest-neighbour repetition (integer factor ``ceil(32 / min side)``)
and mapped back by average pooling; sides in 16..31 px are reflect-padded to 32 and cropped back.

Seeding: image ``i`` of the stream is seeded by the project's one scheme
(:mod:`antialias.data.seeding`): ``numpy_seed(seed, CORRUPTION, corruption index, severity, i)``,
the derived seed reduced to the 32 bits NumPy's legacy seeding takes, so results do not depend on
the batch size; the global NumPy state is restored.
(Before this scheme the seed came from ``np.random.SeedSequence``: corrupted images, and so the
errors of random corruptions, differ slightly from runs made then.)
"""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from antialias.data.seeding import CORRUPTION, numpy_seed
from antialias.eval._names import ALL_CORRUPTIONS, check_names, check_severities

__all__ = ["INSTALL_HINT", "corrupt_images", "corruption_seed", "load_imagecorruptions"]

INSTALL_HINT = 'pip install "antialias[corruptions]"'
#: Corruptions whose library function takes its own ``seed`` argument (besides NumPy's global state).
_SEEDED = ("glass_blur", "impulse_noise")

# (N, C, H, W) -> library layout and back: (channels, enlargement factor, (left, right, top, bottom) padding).
_Layout = tuple[int, int, tuple[int, int, int, int]]


def load_imagecorruptions() -> ModuleType:
    """The ``imagecorruptions`` module; an ``ImportError`` naming the extra to install when it is missing."""
    try:
        import imagecorruptions  # optional dependency (the `corruptions` extra): imported only when needed
    except ImportError as exc:
        raise ImportError(
            "Generating corruptions on the fly needs the optional `imagecorruptions` library (the maintained "
            f"`imagecorruptions-imaug` fork): {INSTALL_HINT}. Pre-made sets (ImageNet-C folders, CIFAR-10-C "
            "files) do not need it."
        ) from exc
    return imagecorruptions


def corruption_seed(seed: int, corruption: str, severity: int, index: int) -> int:
    """The 32-bit seed of image ``index`` of the stream under ``corruption`` at ``severity``.

    Examples:
        >>> corruption_seed(0, "fog", 1, 7) == corruption_seed(0, "fog", 1, 7) != corruption_seed(0, "fog", 1, 8)
        True
    """
    return numpy_seed(seed, CORRUPTION, ALL_CORRUPTIONS.index(corruption), severity, index)


def _to_library(images: Tensor) -> tuple[np.ndarray, _Layout]:
    """``(N, C, H, W)`` floats -> ``(N, H', W', 3)`` uint8 of at least 32x32, and how to map back."""
    n, c, h, w = images.shape
    x = images.detach().float().cpu().clamp(0, 1)
    if c == 1:
        x = x.expand(n, 3, h, w)
    f = 1 if min(h, w) >= 16 else math.ceil(32 / min(h, w))
    if f > 1:
        x = x.repeat_interleave(f, 2).repeat_interleave(f, 3)  # (N, 3, fH, fW)
    ph, pw = max(0, 32 - h * f), max(0, 32 - w * f)
    pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    if ph or pw:
        x = F.pad(x, pads, mode="reflect")  # (N, 3, >=32, >=32)
    array = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    return array, (c, f, pads)


def _from_library(array: np.ndarray, layout: _Layout) -> Tensor:
    """The library's ``(N, H', W', 3)`` uint8 back to ``(N, C, H, W)`` floats (inverse of :func:`_to_library`)."""
    c, f, (left, right, top, bottom) = layout
    x = torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).float().div_(255)
    x = x[..., top : x.shape[-2] - bottom, left : x.shape[-1] - right]
    if f > 1:
        x = F.avg_pool2d(x, f)
    return x.mean(1, keepdim=True) if c == 1 else x


def _corrupt_each(
    lib: ModuleType, array: np.ndarray, corruption: str, severity: int, seed: int, first_index: int
) -> np.ndarray:
    """Corrupt every ``(H, W, 3)`` image of ``array`` under its own seed; the global NumPy state is restored."""
    out = np.empty_like(array)
    state = np.random.get_state()
    try:
        for i in range(array.shape[0]):
            image_seed = corruption_seed(seed, corruption, severity, first_index + i)
            np.random.seed(image_seed)
            kwargs = {"seed": image_seed} if corruption in _SEEDED else {}
            out[i] = lib.corrupt(array[i], severity=severity, corruption_name=corruption, **kwargs)
    finally:
        np.random.set_state(state)
    return out


def corrupt_images(images: Tensor, corruption: str, severity: int, *, seed: int = 0, first_index: int = 0) -> Tensor:
    """Corrupt a batch with an ImageNet-C corruption (needs ``pip install "antialias[corruptions]"``).

    Args:
        images: ``(N, C, H, W)`` floats in ``[0, 1]``, ``C`` in {1, 3}, any size (see the module
            docstring for images under 32x32 and grey images).
        corruption: one of the 19 names (:data:`~antialias.eval.ALL_CORRUPTIONS`).
        severity: 1..5.
        seed: run seed; image ``i`` is seeded by :func:`corruption_seed` from
            ``(seed, corruption, severity, first_index + i)``.
        first_index: position of the first image in the whole stream.

    Shape:
        ``(N, C, H, W)`` -> ``(N, C, H, W)`` float32 in ``[0, 1]`` (quantised to 1/255 steps).

    Raises:
        ImportError: the ``corruptions`` extra is missing (the message says how to install it).
    """
    where = "corrupt_images"
    check_names(where, "corruption", [corruption], ALL_CORRUPTIONS)
    check_severities(where, [severity])
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"`{where}`: `images` must be a (N, C, H, W) tensor with C in {{1, 3}}, "
            f"got {getattr(images, 'shape', images)!r}."
        )
    lib = load_imagecorruptions()
    array, layout = _to_library(images)
    out = _corrupt_each(lib, array, corruption, severity, seed, first_index)
    return _from_library(out, layout).to(images.device)
