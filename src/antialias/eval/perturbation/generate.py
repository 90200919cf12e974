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
snow       31     seeded snowflakes falling over the image (below); frame 0 is the first snowy frame
tilt       31     the image plane seen from a 3-D angle: yaw (about the vertical axis) and pitch (about
                  the horizontal one) both ``-15..+15`` degrees, 1 degree per frame (frame 15 head-on),
                  through a pinhole 2 half-sides in front of it (homography; bilinear, zero fill)
========== ====== ==================================================================================

Deviations, stated once: ImageNet-P translates the 256 px image and centre-crops 224 (so the fill is
mostly real content); here the given image is shifted with zero fill. Frame counts and ranges other
than translate's are ImageNet-P's at difficulty 1 for both presets (CIFAR-10-P's were not confirmed).
The zoom and motion blur parameters are our choice (ImageNet-P's were not confirmed). The validation
perturbations are not generated (they are read from CIFAR-10-P files).

Snow and tilt: Hendrycks & Dietterich (ICLR 2019, section 4.1 and Figure 2) describe tilt as "viewpoint
variation through minor 3D rotations", a temporal sequence of 31 frames (``T = 0..30``), and snow as a
temporal sequence too (each frame a small change of the previous one, so flips are counted between
consecutive frames, not against a clean frame). Every number below is our choice (ImageNet-P's were not
confirmed): tilt's ``+-15`` degree range of both angles and the camera distance; and snow's, with ``S``
the shorter side and ``r = max(1, S / 112)``: ``round(H W / (40 r^2))`` flakes per image at uniform
positions, each a Gaussian dot of sigma ``0.5 r``, ``0.8 r`` or ``1.2 r`` px (probabilities 0.5, 0.3,
0.2) and brightness ``U(0.6, 1)``, falling ``0.01 S U(0.6, 1.4)`` px per frame, drifting sideways with a
per-image wind ``0.01 S U(-0.5, 0.5)`` plus ``0.01 S U(-0.15, 0.15)`` per flake, wrapping around the
image borders (the density stays constant), and streaked by a motion blur twice the mean per-frame
motion long along its direction; the flake layer ``L`` (clipped to ``[0, 1]``) is screen-blended,
``y = b + L (1 - b)``, over the image hazed 15% of the way to light grey, ``b = x + 0.15 (0.8 - x)``,
the same for every channel (white flakes, grey or RGB images).

Seeding: the noise (and the snow) of image ``i`` of the stream is drawn from a generator seeded by the
project's one scheme (:mod:`antialias.data.seeding`): ``derived_seed(seed, PERTURBATION, perturbation index, i)``
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
    """The seed of the noise (or snow) of image ``index`` of the stream under ``perturbation``.

    Examples:
        >>> a, b = perturbation_seed(0, "shot_noise", 3), perturbation_seed(1, "shot_noise", 3)
        >>> a == perturbation_seed(0, "shot_noise", 3) and a != b
        True
    """
    return derived_seed(seed, PERTURBATION, GENERATED_PERTURBATIONS.index(perturbation), index)


# --------------------------------------------------------------------------- building blocks


def _warp(images: Tensor, grid: Tensor) -> Tensor:
    """Sample every image at every ``(T, H, W, 2)`` grid: ``(N, C, H, W)`` -> ``(N, T, C, H, W)``, zero fill."""
    n, c, h, w = images.shape
    t = grid.shape[0]
    src = images.unsqueeze(1).expand(n, t, c, h, w).reshape(n * t, c, h, w)
    grid = grid.to(images).repeat(n, 1, 1, 1)  # (N T, H, W, 2)
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.view(n, t, c, h, w)


def _affine(images: Tensor, thetas: Tensor) -> Tensor:
    """Warp every image by every ``(T, 2, 3)`` theta: ``(N, C, H, W)`` -> ``(N, T, C, H, W)``, zero fill."""
    _, c, h, w = images.shape
    grid = F.affine_grid(thetas.to(images), [thetas.shape[0], c, h, w], align_corners=False)  # (T, H, W, 2)
    return _warp(images, grid)


def _tilt_grid(h: int, w: int, yaw_deg: Tensor, pitch_deg: Tensor, distance: float = 2.0) -> Tensor:
    """``(T, H, W, 2)`` sampling grid of the image plane turned by ``yaw`` then ``pitch`` and projected back.

    Coordinates are isotropic, 1 = half the longer side, origin at the centre, ``y`` down. The plane
    point ``(u, v, 0)`` turns to ``R (u, v, 0)`` with ``R = R_y(yaw) R_x(pitch)`` and is seen through a
    pinhole ``distance`` in front of the plane: ``(X, Y, Z) -> distance (X, Y) / (Z + distance)``. This
    is the homography ``H = [[d r11, d r12, 0], [d r21, d r22, 0], [r31, r32, d]]``; an output pixel
    samples the source at ``H^-1 (x, y, 1)``. At yaw = pitch = 0, ``H = d I``: the identity.
    """
    yaw, pitch = torch.deg2rad(yaw_deg.double()), torch.deg2rad(pitch_deg.double())
    t = len(yaw)
    zero, one = torch.zeros(t, dtype=torch.float64), torch.ones(t, dtype=torch.float64)
    r_y = torch.stack([torch.stack([yaw.cos(), zero, yaw.sin()], -1), torch.stack([zero, one, zero], -1),
                       torch.stack([-yaw.sin(), zero, yaw.cos()], -1)], -2)  # fmt: skip
    r_x = torch.stack([torch.stack([one, zero, zero], -1), torch.stack([zero, pitch.cos(), -pitch.sin()], -1),
                       torch.stack([zero, pitch.sin(), pitch.cos()], -1)], -2)  # fmt: skip
    r = r_y @ r_x  # (T, 3, 3)
    hom = torch.zeros(t, 3, 3, dtype=torch.float64)
    hom[:, :2, :2] = distance * r[:, :2, :2]
    hom[:, 2, :2] = r[:, 2, :2]
    hom[:, 2, 2] = distance
    # pixel centres in grid_sample's normalised coordinates (align_corners=False), then isotropic
    sx, sy = w / max(h, w), h / max(h, w)
    xs = (torch.arange(w, dtype=torch.float64) * 2 + 1) / w - 1
    ys = (torch.arange(h, dtype=torch.float64) * 2 + 1) / h - 1
    gy, gx = torch.meshgrid(ys * sy, xs * sx, indexing="ij")
    pts = torch.stack([gx, gy, torch.ones_like(gx)], -1).view(1, h * w, 3)  # (1, H W, 3)
    src = pts @ torch.linalg.inv(hom).transpose(1, 2)  # (T, H W, 3)
    z = src[..., 2:]
    behind = z <= 1e-9  # never at these angles; sampled as zero fill rather than divided by ~0
    uv = torch.where(behind, torch.full_like(src[..., :2], 3.0), src[..., :2] / z.clamp_min(1e-9))
    uv = uv / torch.tensor([sx, sy], dtype=torch.float64)
    return uv.view(t, h, w, 2)


def _snow_layer(params: Tensor, h: int, w: int, frames: int, dtype: torch.dtype) -> Tensor:
    """``(N, T, H, W)`` flake layers in ``[0, 1]`` from ``(N, K + 1, 6)`` flake parameters (see :func:`_snow_params`).

    Flake ``k`` is a Gaussian dot of amplitude ``a`` and sigma ``s`` at ``(x0 + t vx, y0 + t vy)`` on
    the torus ``[0, W) x [0, H)``, evaluated as separable profiles (``(N, T, K, H)`` times
    ``(N, T, K, W)``); the image's motion blur (last row: direction and length) is a box filter along
    that direction, applied as its Fourier transform, a sinc, on the periodic layer.
    """
    device = params.device
    flakes, blur = params[:, :-1].to(dtype), params[:, -1].to(dtype)  # (N, K, 6), (N, 6)
    x0, y0, vx, vy, sigma, amp = flakes.unbind(-1)  # each (N, K)
    t = torch.arange(frames, dtype=dtype, device=device).view(1, -1, 1)  # (1, T, 1)

    rate = (-0.5 / sigma.square()).view(sigma.shape[0], 1, -1, 1)  # (N, 1, K, 1)

    def profile(p0: Tensor, v: Tensor, size: int) -> Tensor:
        pos = (p0.unsqueeze(1) + t * v.unsqueeze(1)).unsqueeze(-1)  # (N, T, K, 1)
        d = torch.arange(size, dtype=dtype, device=device) - (pos - size / 2)
        d = torch.remainder(d, size).sub_(size / 2)  # signed distance on the torus, (N, T, K, size)
        return d.square_().mul_(rate).exp_()  # in place: these are the largest tensors here

    y_profile = profile(y0, vy, h).mul_(amp.view(amp.shape[0], 1, -1, 1))
    layer = torch.einsum("ntky,ntkx->ntyx", y_profile, profile(x0, vx, w))
    ux, uy, length = blur[:, 0], blur[:, 1], blur[:, 2]  # (N,)
    fx = torch.fft.rfftfreq(w, dtype=dtype, device=device).view(1, 1, -1)  # cycles per px
    fy = torch.fft.fftfreq(h, dtype=dtype, device=device).view(1, -1, 1)
    box = torch.sinc(length.view(-1, 1, 1) * (fx * ux.view(-1, 1, 1) + fy * uy.view(-1, 1, 1)))  # (N, H, W/2+1)
    layer = torch.fft.irfft2(torch.fft.rfft2(layer) * box.unsqueeze(1), s=(h, w))
    return layer.clamp(0, 1)


def _snow_params(h: int, w: int, seed: int, index: int) -> Tensor:
    """``(K + 1, 6)`` float64: ``K`` flakes ``(x0, y0, vx, vy, sigma, amplitude)`` and the image's blur
    ``(ux, uy, length, 0, 0, 0)``, drawn from the generator of :func:`perturbation_seed` ``(seed, "snow", index)``.
    """
    side = min(h, w)
    r = max(1.0, side / 112)
    k = max(1, round(h * w / (40 * r * r)))
    v0 = 0.01 * side
    g = torch.Generator().manual_seed(perturbation_seed(seed, "snow", index))
    u = torch.rand(k, 6, generator=g, dtype=torch.float64)
    wind = v0 * (torch.rand(1, generator=g, dtype=torch.float64) - 0.5)
    x0, y0 = u[:, 0] * w, u[:, 1] * h
    vx = wind + v0 * 0.3 * (u[:, 2] - 0.5)
    vy = v0 * (0.6 + 0.8 * u[:, 3])
    size_class = (u[:, 4] > 0.5).long() + (u[:, 4] > 0.8).long()  # 0, 1, 2 with probabilities 0.5, 0.3, 0.2
    sigma = r * torch.tensor([0.5, 0.8, 1.2], dtype=torch.float64)[size_class]
    amp = 0.6 + 0.4 * u[:, 5]
    mean_v = torch.cat([wind, torch.tensor([v0], dtype=torch.float64)])
    speed = float(mean_v.norm())
    blur = torch.tensor([float(mean_v[0]) / speed, float(mean_v[1]) / speed, 2 * speed, 0, 0, 0], dtype=torch.float64)
    return torch.cat([torch.stack([x0, y0, vx, vy, sigma, amp], -1), blur[None]])


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


def _tilt_sequence(images: Tensor, frames: int) -> Tensor:
    h, w = images.shape[-2:]
    angles = torch.linspace(-15, 15, frames, dtype=torch.float64)
    return _warp(images, _tilt_grid(h, w, angles, angles))


#: Snow's elements per rendering chunk (images x frames x flakes x side): bounds the profiles' memory.
_SNOW_CHUNK = 1 << 22


def _snow_sequence(images: Tensor, frames: int, seed: int, first_index: int) -> Tensor:
    """Snowy frames; image ``i``'s flakes from :func:`perturbation_seed` ``(seed, "snow", first_index + i)``."""
    n, _, h, w = images.shape
    dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
    params = torch.stack([_snow_params(h, w, seed, first_index + i) for i in range(n)])  # (N, K + 1, 6)
    params = params.to(images.device)
    step = max(1, _SNOW_CHUNK // (frames * params.shape[1] * max(h, w)))
    layer = torch.cat([_snow_layer(params[i : i + step], h, w, frames, dtype) for i in range(0, n, step)])
    x = images.to(dtype).unsqueeze(1)  # (N, 1, C, H, W)
    base = x + 0.15 * (0.8 - x)  # a winter haze
    # screen blend of white flakes, base + layer (1 - base) = 1 - (1 - base)(1 - layer): (N, T, C, H, W)
    out = (1 - base) * (1 - layer).unsqueeze(2)
    return out.neg_().add_(1).clamp_(0, 1).to(images.dtype)


#: The deterministic perturbations: ``(images, frames) -> (N, T, C, H, W)``.
_SEQUENCES: dict[str, Callable[[Tensor, int], Tensor]] = {
    "rotate": _rotate_sequence,
    "scale": _scale_sequence,
    "brightness": _brightness_sequence,
    "zoom_blur": _zoom_blur_sequence,
    "motion_blur": _motion_blur_sequence,
    "tilt": _tilt_sequence,
}


def perturbation_sequence(
    images: Tensor, perturbation: str, *, preset: str = "auto", seed: int = 0, first_index: int = 0
) -> Tensor:
    """The frames of ``perturbation`` for every image (the table in the module docstring).

    Args:
        images: ``(N, C, H, W)`` floats in ``[0, 1]``.
        perturbation: one of :data:`~antialias.eval.GENERATED_PERTURBATIONS`.
        preset: ``"imagenet"``, ``"cifar"`` or ``"auto"`` (by image size).
        seed: seed of the noise and snow; image ``i`` draws from :func:`perturbation_seed` of
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
    if perturbation == "snow":
        return _snow_sequence(images, frames, seed, first_index)
    return _noise(images, perturbation, frames, seed, first_index)
