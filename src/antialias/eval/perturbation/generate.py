"""ImageNet-P style perturbation sequences generated with torch ops, on any image size.

Sequences (``preset="imagenet"`` for ImageNet-P at 224 px, ``"cifar"`` as CIFAR-10-P at 32 px,
``"auto"``: ``"imagenet"`` when the shorter side is at least 128 px):

========== ====== ==================================================================================
name       frames frame ``t``
========== ====== ==================================================================================
translate  41/16  horizontal shift by ``-20..+20`` px (cifar: ``-7..+8``), 1 px per frame, zero fill
rotate     31     rotation by ``-15..+15`` degrees about the centre (bilinear, zero fill)
scale      31     zoom by ``0.40..1.15`` (0.025 per frame) about the centre (bilinear, zero fill)
brightness 31     HSV value ``+ (-0.30..+0.30)`` in 0.02 steps, clipped (hue and saturation kept)
gaussian_  31     frame 0 clean; ``clip(x + 0.03 N(0, 1))``
noise
shot_noise 31     frame 0 clean; ``clip(Poisson(300 x) / 300)``
zoom_blur  31     mean of the image zoomed by ``1, 1.01, .., 1 + 0.01 t`` (frame 0 clean)
motion_blur 31    a centred line blur of length ``max(3, odd(15 * side / 224))`` px at angle
                  ``-45 + 3 t`` degrees (replicate padding)
========== ====== ==================================================================================

Deviations, stated once: ImageNet-P translates the 256 px image and centre-crops 224 (so the fill is
mostly real content); here the given image is shifted with zero fill. Frame counts and ranges other
than translate's are ImageNet-P's at difficulty 1 for both presets (CIFAR-10-P's were not confirmed).
The zoom and motion blur parameters are our choice (ImageNet-P's were not confirmed). Snow, tilt
and the validation perturbations are not generated (they are read from CIFAR-10-P files).

Seeding: the noise of image ``i`` of the stream is drawn from a generator seeded by the project's one
scheme (:mod:`antialias.data.seeding`): ``derived_seed(seed, PERTURBATION, perturbation index, i)``
(:func:`perturbation_seed`), so results do not depend on the batch size. (Before this scheme the seed
came from ``np.random.SeedSequence``: noise frames, and so noise flip rates, differ slightly from
runs made then.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from antialias.data.seeding import PERTURBATION, derived_seed
from antialias.eval._names import GENERATED_PERTURBATIONS, check_names

__all__ = ["PRESETS", "perturbation_seed", "perturbation_sequence", "resolve_preset", "sequence_length"]

PRESETS = ("auto", "imagenet", "cifar")


def resolve_preset(preset: str, h: int, w: int, where: str) -> str:
    """``preset`` checked, ``"auto"`` resolved by the ``h x w`` image size."""
    if preset not in PRESETS:
        raise ValueError(f"`{where}`: `preset` must be one of {PRESETS}, got {preset!r}.")
    if preset == "auto":
        return "imagenet" if min(h, w) >= 128 else "cifar"
    return preset


def sequence_length(perturbation: str, preset: str) -> int:
    """Frames of a generated sequence: translate 41 (imagenet) or 16 (cifar), the others 31."""
    if perturbation == "translate":
        return 41 if preset == "imagenet" else 16
    return 31


def perturbation_seed(seed: int, perturbation: str, index: int) -> int:
    """The seed of the noise of image ``index`` of the stream under ``perturbation``.

    Examples:
        >>> a, b = perturbation_seed(0, "shot_noise", 3), perturbation_seed(1, "shot_noise", 3)
        >>> a == perturbation_seed(0, "shot_noise", 3) and a != b
        True
    """
    return derived_seed(seed, PERTURBATION, GENERATED_PERTURBATIONS.index(perturbation), index)


# --------------------------------------------------------------------------- building blocks


def _affine(images: Tensor, thetas: Tensor) -> Tensor:
    """Warp every image by every ``(T, 2, 3)`` theta: ``(N, C, H, W)`` -> ``(N, T, C, H, W)``, zero fill."""
    n, c, h, w = images.shape
    t = thetas.shape[0]
    grid = F.affine_grid(thetas.to(images), [t, c, h, w], align_corners=False)  # (T, H, W, 2)
    src = images.unsqueeze(1).expand(n, t, c, h, w).reshape(n * t, c, h, w)
    out = F.grid_sample(src, grid.repeat(n, 1, 1, 1), mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.view(n, t, c, h, w)


def _zoom_thetas(factors: Tensor) -> Tensor:
    theta = torch.zeros(len(factors), 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / factors
    return theta


def _translate(images: Tensor, shifts: Sequence[int]) -> Tensor:
    # out[..., x] = in[..., x - d] with zeros outside: exact integer shifts, no resampling.
    w = images.shape[-1]
    p = max(abs(d) for d in shifts)
    padded = F.pad(images, (p, p))
    return torch.stack([padded[..., p - d : p - d + w] for d in shifts], 1)


def _brightness(images: Tensor, offsets: Tensor) -> Tensor:
    # Adding to the HSV value V = max over channels keeps hue and saturation: every channel scales by
    # V'/V; a black pixel (V = 0, no hue) becomes grey V'.
    v = images.amax(1, keepdim=True).unsqueeze(1)  # (N, 1, 1, H, W)
    new_v = (v + offsets.view(1, -1, 1, 1, 1).to(images)).clamp(0, 1)  # (N, T, 1, H, W)
    x = images.unsqueeze(1)
    ratio = torch.where(v > 0, new_v / v.clamp_min(1e-12), torch.zeros_like(new_v))
    return torch.where(v > 0, x * ratio, new_v.expand(-1, -1, images.shape[1], -1, -1)).clamp(0, 1)


def _line_kernels(length: int, angles_deg: Tensor) -> Tensor:
    """``(T, 1, k, k)`` normalised line kernels of ``length`` px through the centre, bilinear-splatted."""
    k = length
    c = (k - 1) / 2
    kernels = torch.zeros(len(angles_deg), k, k, dtype=torch.float64)
    steps = torch.linspace(-c, c, 4 * k, dtype=torch.float64)
    for i, a in enumerate(angles_deg.tolist()):
        ys, xs = c - steps * math.sin(math.radians(a)), c + steps * math.cos(math.radians(a))
        y0, x0 = ys.floor().long(), xs.floor().long()
        fy, fx = ys - y0, xs - x0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                yy, xx = (y0 + dy).clamp(0, k - 1), (x0 + dx).clamp(0, k - 1)
                kernels[i].index_put_((yy, xx), wy * wx, accumulate=True)
    return (kernels / kernels.sum((1, 2), keepdim=True)).unsqueeze(1)


def _motion_blur(images: Tensor, length: int, angles: Tensor) -> Tensor:
    n, c, h, w = images.shape
    kernels = _line_kernels(length, angles).to(images)  # (T, 1, k, k)
    p = length // 2
    x = F.pad(images.reshape(n * c, 1, h, w), (p, p, p, p), mode="replicate")
    return F.conv2d(x, kernels).view(n, c, -1, h, w).transpose(1, 2)  # (N, T, C, H, W)


def _noise(images: Tensor, name: str, frames: int, seed: int, first_index: int) -> Tensor:
    """Frame 0 clean, then ``frames - 1`` noisy copies, each image under its own :func:`perturbation_seed`."""
    out = []
    for i, image in enumerate(images):
        g = torch.Generator().manual_seed(perturbation_seed(seed, name, first_index + i))
        x = image.detach().float().cpu().unsqueeze(0).expand(frames - 1, *image.shape)
        if name == "gaussian_noise":
            noisy = x + 0.03 * torch.randn(x.shape, generator=g)
        else:
            noisy = torch.poisson(x * 300.0, generator=g) / 300.0
        out.append(torch.cat([image.detach().float().cpu()[None], noisy.clamp(0, 1)]))
    return torch.stack(out).to(images.device, images.dtype)


# --------------------------------------------------------------------------- one sequence maker per perturbation


def _translate_sequence(images: Tensor, preset: str, where: str) -> Tensor:
    shifts = range(-20, 21) if preset == "imagenet" else range(-7, 9)
    w = images.shape[-1]
    if max(abs(s) for s in shifts) >= w:
        raise ValueError(
            f"`{where}`: translate shifts up to {max(abs(s) for s in shifts)} px need images wider than that, got {w}."
        )
    return _translate(images, list(shifts))


def _rotate_sequence(images: Tensor, frames: int) -> Tensor:
    h, w = images.shape[-2:]
    rad = torch.deg2rad(torch.linspace(-15, 15, frames, dtype=torch.float64))
    theta = torch.zeros(frames, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = theta[:, 1, 1] = rad.cos()
    theta[:, 0, 1] = -rad.sin() * h / w  # normalised coordinates: keep angles true for H != W
    theta[:, 1, 0] = rad.sin() * w / h
    return _affine(images, theta)


def _scale_sequence(images: Tensor, frames: int) -> Tensor:
    return _affine(images, _zoom_thetas(torch.linspace(0.40, 1.15, frames, dtype=torch.float64)))


def _brightness_sequence(images: Tensor, frames: int) -> Tensor:
    return _brightness(images, torch.linspace(-0.30, 0.30, frames, dtype=torch.float64))


def _zoom_blur_sequence(images: Tensor, frames: int) -> Tensor:
    zoomed = _affine(images, _zoom_thetas(1 + 0.01 * torch.arange(frames, dtype=torch.float64)))
    counts = torch.arange(1, frames + 1, dtype=images.dtype, device=images.device).view(1, -1, 1, 1, 1)
    return zoomed.cumsum(1) / counts


def _motion_blur_sequence(images: Tensor, frames: int) -> Tensor:
    h, w = images.shape[-2:]
    length = max(3, 2 * round(15 * min(h, w) / 224 / 2) + 1)
    return _motion_blur(images, length, -45 + 3 * torch.arange(frames, dtype=torch.float64))


#: The deterministic perturbations: ``(images, frames) -> (N, T, C, H, W)``.
_SEQUENCES: dict[str, Callable[[Tensor, int], Tensor]] = {
    "rotate": _rotate_sequence,
    "scale": _scale_sequence,
    "brightness": _brightness_sequence,
    "zoom_blur": _zoom_blur_sequence,
    "motion_blur": _motion_blur_sequence,
}


def perturbation_sequence(
    images: Tensor, perturbation: str, *, preset: str = "auto", seed: int = 0, first_index: int = 0
) -> Tensor:
    """The frames of ``perturbation`` for every image (the table in the module docstring).

    Args:
        images: ``(N, C, H, W)`` floats in ``[0, 1]``.
        perturbation: one of :data:`~antialias.eval.GENERATED_PERTURBATIONS`.
        preset: ``"imagenet"``, ``"cifar"`` or ``"auto"`` (by image size).
        seed: noise seed; image ``i`` draws from :func:`perturbation_seed` of
            ``(seed, perturbation, first_index + i)``.
        first_index: position of the first image in the stream.

    Shape:
        ``(N, C, H, W)`` -> ``(N, T, C, H, W)`` with ``T`` the perturbation's frame count.

    Examples:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> tuple(perturbation_sequence(x, "translate").shape), tuple(perturbation_sequence(x, "rotate").shape)
        ((2, 16, 3, 32, 32), (2, 31, 3, 32, 32))
    """
    where = "perturbation_sequence"
    check_names(where, "perturbation", [perturbation], GENERATED_PERTURBATIONS)
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        raise ValueError(
            f"`{where}`: `images` must be a float (N, C, H, W) tensor, got {getattr(images, 'shape', images)!r}."
        )
    h, w = images.shape[-2:]
    preset = resolve_preset(preset, h, w, where)
    frames = sequence_length(perturbation, preset)
    if perturbation == "translate":
        return _translate_sequence(images, preset, where)
    if perturbation in _SEQUENCES:
        return _SEQUENCES[perturbation](images, frames)
    return _noise(images, perturbation, frames, seed, first_index)
