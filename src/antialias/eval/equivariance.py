"""Internal shift-equivariance: per-layer feature distance maps (Zhang, ICML 2019, VGG13-bn on CIFAR).

For each chosen layer ``F_l`` and each circular shift ``(dh, dw)`` of the input ``X``, the distance
between ``Shift(F_l(X))`` and ``F_l(Shift(X))``, averaged over positions and images. Feature maps
smaller than the input are first upsampled to the input size by the author's recursive 2x circular
interpolation, per axis ``(A, B, C, D) -> (A, (A+B)/2, B, (B+C)/2, C, (C+D)/2, D, (D+A)/2)``, so a
shift of the input is a shift of every map. Max-pools are split into the dense (stride-1, circular)
max and the pool's output, as in the paper's figure.

The distance (not published) is a parameter: ``"cosine"`` (default; 1 - cosine similarity of the
channel vectors at each position) or ``"l2"`` (``|a - b| / (|a| + |b|)`` per position, in [0, 1]).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from antialias.layers import _BlurPoolNd, _MaxBlurPoolNd

__all__ = ["EquivarianceResult", "circular_upsample", "default_layers", "feature_distance_maps"]

DISTANCES = ("cosine", "l2")
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Hardswish, nn.Mish, nn.Tanh, nn.Sigmoid)


def circular_upsample(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Upsample ``(N, C, h, w)`` to ``size`` by circular linear interpolation.

    For power-of-two factors this equals the author's recursive 2x scheme
    ``(A, B, ...) -> (A, (A+B)/2, B, ...)`` exactly (midpoints of a piecewise-linear periodic
    signal lie on it), computed in one pass per axis; other integer factors interpolate the same way.

    Examples:
        >>> circular_upsample(torch.tensor([[[[0., 2., 4., 6.]]]]), (1, 8))
        tensor([[[[0., 1., 2., 3., 4., 5., 6., 3.]]]])
    """
    h, w = x.shape[-2:]
    if size[0] % h or size[1] % w:
        raise ValueError(
            f"circular_upsample: a feature map of size {h}x{w} cannot be upsampled to {size[0]}x{size[1]} by "
            "an integer factor. Use an input size that is a power-of-two multiple of every layer's size "
            "(e.g. 32x32: pad 28x28 images by 2)."
        )
    if (h, w) == tuple(size):
        return x
    # Two small GEMMs with the (size, n) interpolation matrices: ~2x faster than F.interpolate here.
    rows = _interpolation_matrix(h, size[0], x.dtype, x.device)  # (H, h)
    cols = _interpolation_matrix(w, size[1], x.dtype, x.device)  # (W, w)
    return rows @ x @ cols.T


@functools.lru_cache(maxsize=64)
def _interpolation_matrix(n: int, size: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(size, n)``: row ``i`` linearly interpolates the circle of ``n`` samples at ``i * n / size``."""
    pos = torch.arange(size, dtype=torch.float64) * n / size
    low = pos.floor().long()
    frac = pos - low
    out = torch.zeros(size, n, dtype=torch.float64)
    out[torch.arange(size), low % n] += 1 - frac
    out[torch.arange(size), (low + 1) % n] += frac
    return out.to(dtype=dtype, device=device)


def default_layers(model: nn.Module) -> list[str]:
    """Names of every conv, norm, activation and pooling module, in module order."""
    kinds = (nn.Conv2d, nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, *_ACTIVATIONS,
             nn.MaxPool2d, nn.AvgPool2d, _BlurPoolNd, _MaxBlurPoolNd)
    return [name for name, module in model.named_modules() if name and isinstance(module, kinds)]


def _dense_max(module: nn.Module, x: Tensor) -> Tensor | None:
    """The stride-1 circular max of a max-pool's input (the first half of the paper's split)."""
    if not isinstance(module, (nn.MaxPool2d, _MaxBlurPoolNd)):
        return None
    k = module.kernel_size
    kh, kw = (k, k) if isinstance(k, int) else k
    padded = F.pad(x, (0, kw - 1, 0, kh - 1), mode="circular") if (kh, kw) != (1, 1) else x
    return F.max_pool2d(padded, (kh, kw), 1)


def _distance(a: Tensor, b: Tensor, norm_a: Tensor, norm_b: Tensor, kind: str) -> Tensor:
    """Mean over positions of the per-position distance of ``(N, C, H, W)`` maps -> ``(N,)``.

    ``norm_a``, ``norm_b``: the channel norms ``(N, H, W)``, computed once by the caller.
    """
    eps = 1e-8
    if kind == "cosine":
        d = 1 - (a * b).sum(1) / (norm_a * norm_b).clamp_min(eps)
        # Two all-zero vectors (common after ReLU) are identical: distance 0, not 1.
        d = d.masked_fill((norm_a < eps) & (norm_b < eps), 0.0)
    else:
        d = (a - b).norm(dim=1) / (norm_a + norm_b).clamp_min(eps)
    return d.flatten(1).mean(1)


@dataclass
class EquivarianceResult:
    """Distance maps: ``maps[l, i, j]`` for layer ``layers[l]`` and shift ``(shifts_h[i], shifts_w[j])``."""

    layers: list[str]
    maps: Tensor  # (L, Sh, Sw)
    shifts_h: list[int]
    shifts_w: list[int]
    distance: str
    num_images: int
    kinds: list[str]  # what each layer is: the module's class name, or "dense max"

    @property
    def means(self) -> dict[str, float]:
        return {name: float(m.mean()) for name, m in zip(self.layers, self.maps, strict=True)}

    def to_dict(self) -> dict:
        return {
            "layers": self.layers, "maps": self.maps.tolist(), "shifts_h": self.shifts_h, "shifts_w": self.shifts_w,
            "distance": self.distance, "num_images": self.num_images, "means": self.means, "kinds": self.kinds,
        }


def feature_distance_maps(
    model: nn.Module,
    images: Tensor,
    *,
    layers: Sequence[str] | None = None,
    step: int = 1,
    distance: str = "cosine",
    shifts_per_batch: int = 8,
    split_max: bool = True,
    device: torch.device | str = "cpu",
) -> EquivarianceResult:
    """Feature distance between ``Shift(F_l(X))`` and ``F_l(Shift(X))`` for every shift on a grid.

    Args:
        model: Any network; hooks read the outputs of the named modules.
        images: ``(M, C, H, W)`` inputs, already preprocessed as the model expects.
        layers: Module names (default :func:`default_layers`); unknown names get suggestions.
        step: Grid spacing of the shifts ``(dh, dw)`` in ``{0, step, 2 step, ...} < (H, W)``; 1 is
            every shift (the paper's 32x32 maps).
        distance: ``"cosine"`` or ``"l2"`` (see the module docstring).
        shifts_per_batch: Shifted copies of all M images per forward.
        split_max: Also record each max-pool's dense max (named ``"<layer>.densemax"``).
        device: Where to run.

    Returns:
        An :class:`EquivarianceResult` with one map per recorded layer, in forward order.
    """
    if distance not in DISTANCES:
        raise ValueError(f"feature_distance_maps: `distance` must be one of {DISTANCES}, got {distance!r}.")
    if images.ndim != 4:
        raise ValueError(f"feature_distance_maps: `images` must be (M, C, H, W), got shape {tuple(images.shape)}.")
    modules = dict(model.named_modules())
    names = list(layers) if layers is not None else default_layers(model)
    for name in names:
        if name not in modules:
            close = difflib.get_close_matches(name, list(modules), n=3)
            raise ValueError(
                f"feature_distance_maps: no layer named {name!r}." + (f" Did you mean {close}?" if close else "")
            )
    h, w = images.shape[-2:]
    if not 1 <= step <= min(h, w):
        raise ValueError(f"feature_distance_maps: `step` must be in 1..{min(h, w)}, got {step!r}.")

    store: dict[str, Tensor] = {}
    order: list[str] = []
    kinds = {name + ".densemax": "dense max" for name in names}
    kinds.update({name: type(modules[name]).__name__ for name in names})

    def hook_for(name: str) -> Callable[[nn.Module, tuple[Tensor, ...], Tensor], None]:
        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            if split_max and (dense := _dense_max(module, inputs[0])) is not None:
                store[name + ".densemax"] = circular_upsample(dense.float(), (h, w))
            store[name] = circular_upsample(output.float(), (h, w))
        return hook

    handles = [modules[name].register_forward_hook(hook_for(name)) for name in names]
    model = model.to(device).eval()
    images = images.to(device)
    try:
        with torch.inference_mode():
            model(images)
            order.extend(store)  # forward order, dense max before its pool
            base = dict(store)
            base_norm = {name: (f * f).sum(1).sqrt() for name, f in base.items()}  # (M, H, W), rolled per shift
            shifts = [(dh, dw) for dh in range(0, h, step) for dw in range(0, w, step)]
            totals = torch.zeros(len(order), len(shifts))
            m = images.shape[0]
            for start in range(0, len(shifts), shifts_per_batch):
                chunk = shifts[start : start + shifts_per_batch]
                store.clear()
                model(torch.cat([images.roll(shift, (-2, -1)) for shift in chunk]))  # (B*M, C, H, W)
                for li, name in enumerate(order):
                    feats = store[name].view(len(chunk), m, *store[name].shape[1:])
                    norms = (feats * feats).sum(2).sqrt()  # (B, M, H, W); faster than .norm over a strided dim
                    for b, shift in enumerate(chunk):
                        expected = base[name].roll(shift, (-2, -1))
                        expected_norm = base_norm[name].roll(shift, (-2, -1))
                        d = _distance(feats[b], expected, norms[b], expected_norm, distance)
                        totals[li, start + b] = d.mean().cpu()
    finally:
        for handle in handles:
            handle.remove()
    grid_h, grid_w = list(range(0, h, step)), list(range(0, w, step))
    maps = totals.view(len(order), len(grid_h), len(grid_w))
    return EquivarianceResult(order, maps, grid_h, grid_w, distance, images.shape[0], [kinds[n] for n in order])
