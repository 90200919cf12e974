"""antialias.eval.feature_distance_maps against the definition computed the slow, obvious way.

Per shift: roll the input, run the model, upsample every recorded map by the author's recursive 2x scheme,
roll the unshifted image's upsampled map by the same shift, and compare position by position. Random small
models (strided convs, max-pools, MaxBlurPool, shared modules), sizes (non-square, down to 1x1 maps), steps,
both distances, any shifts per batch and memory bounds: the fast path (shifts batched, maps rolled back inside
the upsampling, small maps through channel Gram matrices) must give the same maps.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import antialias.eval._equivariance_distances as kernels
import antialias.eval.equivariance as equivariance
from antialias.eval import default_layers, feature_distance_maps
from antialias.layers import MaxBlurPool2d

EPS = 1e-8


def upsample_2x(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The author's description, literally: per axis, interleave each value with the mean of it and its
    circular successor until the size is reached (power-of-two factors)."""
    for dim, target in ((2, size[0]), (3, size[1])):
        while x.shape[dim] < target:
            mid = (x + x.roll(-1, dim)) / 2
            x = torch.stack((x, mid), dim=dim + 1).flatten(dim, dim + 1)
    return x


def dense_max(x: torch.Tensor, k: int | tuple[int, int]) -> torch.Tensor:
    """Stride-1 circular max over the kh x kw window starting at each position."""
    kh, kw = (k, k) if isinstance(k, int) else k
    rolled = [x.roll((-a, -b), (-2, -1)) for a in range(kh) for b in range(kw)]
    return torch.stack(rolled).amax(0)


def position_distance(a: torch.Tensor, b: torch.Tensor, distance: str) -> torch.Tensor:
    """(N, C, H, W) maps -> (N, H, W) distances of the channel vectors at each position."""
    na, nb = a.norm(dim=1), b.norm(dim=1)
    if distance == "cosine":
        d = 1 - (a * b).sum(1) / (na * nb).clamp_min(EPS)
        return torch.where((na < EPS) & (nb < EPS), torch.zeros_like(d), d)
    return (a - b).norm(dim=1) / (na + nb).clamp_min(EPS)


def reference_maps(model: nn.Module, images: torch.Tensor, step: int, distance: str, split_max: bool):
    """Labels and (L, Sh, Sw) maps, one forward per shift (float64 throughout)."""
    modules = dict(model.named_modules())
    names = default_layers(model)
    h, w = images.shape[-2:]

    def features(x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        out: list[tuple[str, int, str, torch.Tensor]] = []
        calls: dict[str, int] = {}

        def hook(name):
            def fn(module, inputs, output):
                calls[name] = calls.get(name, 0) + 1
                if split_max and isinstance(module, (nn.MaxPool2d, MaxBlurPool2d)):
                    out.append((name, calls[name], ".densemax", dense_max(inputs[0], module.kernel_size)))
                out.append((name, calls[name], "", output))
            return fn

        handles = [modules[n].register_forward_hook(hook(n)) for n in names]
        with torch.no_grad():
            model(x)
        for handle in handles:
            handle.remove()
        return [(name + (f"#{call}" if calls[name] > 1 else "") + dense, upsample_2x(f.double(), (h, w)))
                for name, call, dense, f in out]

    base = features(images)
    grid_h, grid_w = range(0, h, step), range(0, w, step)
    maps = torch.zeros(len(base), len(grid_h), len(grid_w), dtype=torch.float64)
    for i, dh in enumerate(grid_h):
        for j, dw in enumerate(grid_w):
            got = features(images.roll((dh, dw), (-2, -1)))
            for layer, ((_, a), (_, b)) in enumerate(zip(got, base, strict=True)):
                maps[layer, i, j] = position_distance(a, b.roll((dh, dw), (-2, -1)), distance).mean()
    return [label for label, _ in base], maps


class Shared(nn.Module):
    """A ReLU called after every block (one map per call) around strided convs and pools."""

    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.act = nn.ReLU()

    def forward(self, x):
        for block in self.blocks:
            x = self.act(block(x))
        return x


def random_net(seed: int, in_channels: int, kinds: list[str], width: int) -> nn.Module:
    torch.manual_seed(seed)
    blocks: list[nn.Module] = []
    c = in_channels
    for kind in kinds:
        if kind == "conv":
            blocks.append(nn.Conv2d(c, width, 3, padding=1, padding_mode="circular"))
        elif kind == "conv_s2":
            blocks.append(nn.Sequential(nn.Conv2d(c, width, 3, stride=2, padding=1), nn.BatchNorm2d(width)))
        elif kind == "maxpool":
            blocks.append(nn.Sequential(nn.Conv2d(c, width, 1), nn.MaxPool2d(2)))
        else:  # "maxblurpool"
            pool = MaxBlurPool2d(2, channels=width, filter_size=3, padding_mode="circular")
            blocks.append(nn.Sequential(nn.Conv2d(c, width, 1), pool))
        c = width
    net = Shared(blocks).eval()
    with torch.no_grad():  # non-trivial batch norm statistics
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return net


@st.composite
def cases(draw):
    h = draw(st.sampled_from([4, 8, 16]))
    w = draw(st.sampled_from([4, 8, 16]))
    downs = draw(st.integers(0, {4: 2, 8: 3, 16: 4}[min(h, w)]))
    downsamplers = draw(st.lists(st.sampled_from(["conv_s2", "maxpool", "maxblurpool"]), min_size=downs,
                                 max_size=downs))
    kinds = draw(st.permutations(["conv", *downsamplers]))
    return {
        "size": (h, w), "kinds": list(kinds), "width": draw(st.integers(1, 6)),
        "images": draw(st.integers(1, 2)), "in_channels": draw(st.integers(1, 3)),
        "step": draw(st.integers(1, max(h, w) // 2)), "distance": draw(st.sampled_from(["cosine", "l2"])),
        "shifts_per_batch": draw(st.none() | st.integers(1, 7)), "split_max": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


@settings(max_examples=25, deadline=None)
@given(cases())
def test_maps_equal_the_definition_computed_shift_by_shift(case):
    h, w = case["size"]
    step = min(case["step"], h, w)
    net = random_net(case["seed"], case["in_channels"], case["kinds"], case["width"])
    x = torch.rand(case["images"], case["in_channels"], h, w, generator=torch.Generator().manual_seed(case["seed"]))
    labels, want = reference_maps(net, x, step, case["distance"], case["split_max"])
    got = feature_distance_maps(net, x, step=step, distance=case["distance"], split_max=case["split_max"],
                                shifts_per_batch=case["shifts_per_batch"], max_memory_gib=None)
    assert got.layers == labels
    torch.testing.assert_close(got.maps.double(), want, rtol=1e-5, atol=2e-6)


def test_both_paths_run_and_gram_sub_batches_give_the_definition(monkeypatch):
    """Maps at the input size go the direct way, small ones through Gram matrices; when a Gram step does not
    fit the memory a step may hold, the shifts of a forward are split (spies count what each call got)."""
    net = random_net(3, 2, ["conv", "conv_s2", "maxpool", "conv_s2"], 12)
    x = torch.rand(2, 2, 16, 16, generator=torch.Generator().manual_seed(1))
    _, want = reference_maps(net, x, 3, "l2", True)
    seen: dict[str, list[int]] = {"gram": [], "direct": []}
    gram, direct = equivariance._gram_distances, equivariance._direct_distances

    def spy_gram(feats, ref, mats, distance):
        seen["gram"].append(feats.shape[0] // ref.shape[0])
        return gram(feats, ref, mats, distance)

    def spy_direct(feats, ref, rolls, size, cc, distance):
        seen["direct"].append(feats.shape[0] // ref.shape[0])
        return direct(feats, ref, rolls, size, cc, distance)

    monkeypatch.setattr(equivariance, "_gram_distances", spy_gram)
    monkeypatch.setattr(equivariance, "_direct_distances", spy_direct)
    # Without a bound a step of B shifts may hold (2 B + 4) * 2 images * 16 * 16 * 4 bytes * 12 channels
    monkeypatch.setattr(equivariance, "_gram_bytes_per_shift", lambda *a: 2 * 16 * 16 * 4 * 12 * 16 // 3)
    lines: list[str] = []
    got = feature_distance_maps(net, x, step=3, distance="l2", shifts_per_batch=6, max_memory_gib=None,
                                log=lines.append)
    torch.testing.assert_close(got.maps.double(), want, rtol=1e-5, atol=2e-6)
    # 64 shifted images per comparison at most: 5 forwards of 6 shifts of 2 images, then the last 5 shifts
    assert "6 shifts per forward, 12 channels per upsampling step, 5 forwards per comparison" in lines[0]
    assert set(seen["direct"]) == {1, 30, 5}  # and the zero shift alone
    assert set(seen["gram"]) == {1, 12, 6, 2}  # 30 = 12 + 12 + 6, 5 = 2 + 2 + 1: what fits a step


@pytest.mark.parametrize("distance", ["cosine", "l2"])
def test_at_224_like_the_cli(distance):
    """224 = 7 x 32: maps of 112 down to 7 (Gram path) and shifts that are no multiple of any stride."""
    net = random_net(0, 3, ["conv_s2", "maxpool", "conv_s2", "maxblurpool", "conv_s2"], 16)
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    assert kernels._gram_is_cheaper(16, (7, 7), (224, 224))  # the 7x7 maps: Gram path, the others direct
    assert not kernels._gram_is_cheaper(16, (14, 14), (224, 224))
    _, want = reference_maps(net, x, 75, distance, True)
    got = feature_distance_maps(net, x, step=75, distance=distance)
    assert got.maps.shape == (len(want), 3, 3)
    torch.testing.assert_close(got.maps.double(), want, rtol=1e-5, atol=2e-6)
    assert float(want[-1].max()) > 1e-3  # not equivariant: the comparison has teeth


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.sampled_from([(8, 8), (4, 8), (2, 2), (1, 4), (1, 1)]), st.integers(1, 9),
       st.sampled_from(["cosine", "l2"]), st.booleans(), st.integers(0, 2**16))
def test_gram_distances_equal_direct_distances(m, low, c, distance, same, seed):
    """The two private paths on random maps, including identical ones (l2 near 0 must not cancel badly)."""
    g = torch.Generator().manual_seed(seed)
    size = (16, 16)
    shifts = [(0, 0)] + [(int(a), int(b)) for a, b in torch.randint(0, 16, (5, 2), generator=g)]
    ref = torch.randn(m, c, *low, generator=g).relu()  # zeros included
    if same:  # the base map for every shift: at the zero shift the distance is 0 (l2 must not cancel badly)
        feats = torch.cat([ref for _ in shifts])
    else:
        feats = torch.randn(len(shifts) * m, c, *low, generator=g)
    rolls = kernels._rolled_interpolation(shifts, low, size, ref.device)
    want = kernels._direct_distances(feats, ref, rolls, size, c, distance)
    mats = kernels._gram_matrices(shifts, low, size, ref.device)
    got = kernels._gram_distances(feats, ref, mats, distance)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=2e-6)
