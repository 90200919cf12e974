"""One-pixel logit change of convert()ed networks on local reproductions of issue 10's cases (random weights).

Run from the repository root::

    .venv/bin/python benchmarks/bench_convert_real_world.py            # 48 photo crops, 128 px
    .venv/bin/python benchmarks/bench_convert_real_world.py --quick    # 16 crops

Three small networks, written here in the style of the zoos the issue tried (no timm/torchvision):

* ``fused``: an EfficientNet-like net whose norms are timm-style fused ``BatchNormAct2d`` (a
  ``BatchNorm2d`` subclass holding ``.act``). *before*: convert as it was, which did not see the
  fused activation (reproduced by disabling the fused-layer recognition): blur-first at every strided
  conv. *after*: the paper's placement. *torchvision-style*: the same weights with separate BN and
  SiLU modules, converted (what the issue's torchvision efficientnet_b0 got).
* ``patch``: a ConvNeXt-like net with a ``k4 s4`` patch stem and ``k2 s2`` downsamplers.
  *before*: ``filter_size=4`` at every stride (the old default). *after*: the stride-aware default.
* ``tfsame``: an EfficientNet-Lite-port-like net, ``nn.ZeroPad2d((0, 1, 0, 1))`` before each
  padding-free strided conv. *before*: the pad kept with the conv at stride 1 (the old behaviour,
  reproduced by disabling the pad recomputation). *after*: pads recomputed (``input_size`` given).

Inputs: random crops of scikit-image photos; each crop ``x`` is compared with the crop one pixel to
the right and one pixel down. Reported: mean ``|logit(x) - logit(shifted x)|`` over classes, crops
and both shifts; the same relative to the mean ``|logit|``; and the share of predictions that flip.
BatchNorm statistics are set from the crops first (cumulative average), so activations are in range.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager

import numpy as np
import skimage.data
import torch
import torch.nn.functional as F
from torch import nn

from antialias.convert import convert

SIZE = 128
CLASSES = 1000


# --------------------------------------------------------------------------- networks


class BatchNormAct2d(nn.BatchNorm2d):
    """timm-style fused norm + activation: BatchNorm2d, then ``self.act`` (written here, not timm's code)."""

    def __init__(self, channels: int, act: type[nn.Module] | None = nn.SiLU) -> None:
        super().__init__(channels)
        self.act = act() if act is not None else nn.Identity()

    def forward(self, x):
        return self.act(super().forward(x))


def _norm_act(channels: int, fused: bool, act: type[nn.Module] | None) -> nn.Module:
    if fused:
        return BatchNormAct2d(channels, act)
    return nn.Sequential(nn.BatchNorm2d(channels), act() if act is not None else nn.Identity())


class ConvNormAct(nn.Module):
    def __init__(self, cin, cout, k, stride, fused, groups=1, act: type[nn.Module] | None = nn.SiLU) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.bn = _norm_act(cout, fused, act)

    def forward(self, x):
        return self.bn(self.conv(x))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, fused, act, expand=4) -> None:
        super().__init__()
        mid = cin * expand
        self.pw = ConvNormAct(cin, mid, 1, 1, fused, act=act)
        self.dw = ConvNormAct(mid, mid, 3, stride, fused, groups=mid, act=act)
        self.proj = ConvNormAct(mid, cout, 1, 1, fused, act=None)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.proj(self.dw(self.pw(x)))
        return x + y if self.residual else y


class EffNetLike(nn.Module):
    def __init__(self, fused: bool, act: type[nn.Module] = nn.SiLU) -> None:
        super().__init__()
        self.stem = ConvNormAct(3, 16, 3, 2, fused, act=act)
        cfg = [(16, 24, 2), (24, 24, 1), (24, 40, 2), (40, 40, 1), (40, 80, 2), (80, 80, 1), (80, 112, 2)]
        self.blocks = nn.Sequential(*[InvertedResidual(a, b, s, fused, act) for a, b, s in cfg])
        self.head = ConvNormAct(112, 320, 1, 1, fused, act=act)
        self.fc = nn.Linear(320, CLASSES)

    def forward(self, x):
        return self.fc(self.head(self.blocks(self.stem(x))).mean((2, 3)))


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x):
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps).permute(
            0, 3, 1, 2
        )


class ConvNeXtBlock(nn.Module):
    def __init__(self, c) -> None:
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, 1, 3, groups=c)
        self.norm = LayerNorm2d(c)
        self.pw1 = nn.Conv2d(c, 4 * c, 1)
        self.act = nn.GELU()
        self.pw2 = nn.Conv2d(4 * c, c, 1)

    def forward(self, x):
        return x + self.pw2(self.act(self.pw1(self.norm(self.dw(x)))))


class PatchNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        dims = (32, 64, 128)
        self.stem = nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0]))
        stages = []
        for i, c in enumerate(dims):
            down = [] if i == 0 else [LayerNorm2d(dims[i - 1]), nn.Conv2d(dims[i - 1], c, 2, 2)]
            stages.append(nn.Sequential(*down, ConvNeXtBlock(c), ConvNeXtBlock(c)))
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(dims[-1])
        self.fc = nn.Linear(dims[-1], CLASSES)

    def forward(self, x):
        return self.fc(self.norm(self.stages(self.stem(x)).mean((2, 3))))


class PadConvBnAct(nn.Module):
    def __init__(self, cin, cout, stride, groups=1) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 0, 1)) if stride == 2 else nn.ZeroPad2d(1)
        self.conv = nn.Conv2d(cin, cout, 3, stride, 0, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU6()

    def forward(self, x):
        return self.act(self.bn(self.conv(self.pad(x))))


class TFSameNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        chans = [(3, 16, 2), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2)]
        self.body = nn.Sequential(*[PadConvBnAct(a, b, s) for a, b, s in chans])
        self.fc = nn.Linear(128, CLASSES)

    def forward(self, x):
        return self.fc(self.body(x).mean((2, 3)))


# --------------------------------------------------------------------------- data and metric


def crops(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` random (SIZE+1)-px crops of scikit-image photos, normalised per channel: (n, 3, S+1, S+1)."""
    gen = np.random.default_rng(seed)
    photos = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "cat"):
        img = getattr(skimage.data, name)()
        photos.append(torch.from_numpy(np.ascontiguousarray(img[..., :3])).permute(2, 0, 1).float() / 255)
    out = []
    for i in range(n):
        img = photos[i % len(photos)]
        top = int(gen.integers(0, img.shape[1] - SIZE - 1))
        left = int(gen.integers(0, img.shape[2] - SIZE - 1))
        out.append(img[:, top : top + SIZE + 1, left : left + SIZE + 1])
    x = torch.stack(out)
    return (x - x.mean((0, 2, 3), keepdim=True)) / x.std((0, 2, 3), keepdim=True)


def calibrate(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """BatchNorm running statistics from ``x`` (cumulative average), then eval mode."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for chunk in x[:, :, :SIZE, :SIZE].split(16):
            model(chunk)
    return model.eval()


def shift_change(model: nn.Module, x: torch.Tensor) -> tuple[float, float, float]:
    """(mean |dlogit|, mean |dlogit| / mean |logit|, flip rate) for 1-px shifts right and down."""
    with torch.no_grad():
        base = torch.cat([model(c) for c in x[:, :, :SIZE, :SIZE].split(16)])
        diffs, flips = [], []
        for shifted in (x[:, :, :SIZE, 1:], x[:, :, 1:, :SIZE]):
            z = torch.cat([model(c) for c in shifted.split(16)])
            diffs.append((z - base).abs().mean(1))
            flips.append((z.argmax(1) != base.argmax(1)).float())
    d = torch.cat(diffs).mean().item()
    return d, d / base.abs().mean().item(), torch.cat(flips).mean().item()


@contextmanager
def _patched(module_name: str, attr: str, value):
    mod = sys.modules[module_name]
    old = getattr(mod, attr)
    setattr(mod, attr, value)
    try:
        yield
    finally:
        setattr(mod, attr, old)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 crops instead of 48")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    x = crops(16 if args.quick else 48)
    size = (1, 3, SIZE, SIZE)
    rows: list[tuple[str, str, tuple[float, float, float], str]] = []

    def add(net: str, variant: str, model: nn.Module, report=None) -> None:
        placements = ""
        if report is not None:
            counts: dict[str, int] = {}
            for site in report.sites:
                counts[site.placement] = counts.get(site.placement, 0) + 1
            placements = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        rows.append((net, variant, shift_change(model, x), placements))

    for act in (nn.SiLU, nn.ReLU):
        net = f"fused-{act.__name__}"
        fused = calibrate(EffNetLike(fused=True, act=act), x)
        add(net, "baseline", fused)
        with _patched("antialias.convert._activations", "NORM_BASES", ()):
            before, rep = convert(fused, input_size=size)
        add(net, "before (fused act not seen)", before, rep)
        after, rep = convert(fused, input_size=size)
        add(net, "after", after, rep)
        plain = EffNetLike(fused=False, act=act)
        mapped = {k.replace(".bn.", ".bn.0."): v for k, v in fused.state_dict().items()}
        plain.load_state_dict(mapped)
        tv, rep = convert(plain.eval(), input_size=size)
        add(net, "torchvision-style (separate BN, act)", tv, rep)

    patch = PatchNet().eval()
    add("patch", "baseline", patch)
    before, rep = convert(patch, filter_size=4, input_size=size)
    add("patch", "before (filter_size=4 at every stride)", before, rep)
    after, rep = convert(patch, input_size=size)
    add("patch", "after (stride-aware)", after, rep)

    tf = calibrate(TFSameNet(), x)
    add("tfsame", "baseline", tf)
    with _patched("antialias.convert._convert", "_pad_plan", lambda *a, **k: None):
        before, rep = convert(tf, input_size=size)
    add("tfsame", "before (pad kept at stride 1)", before, rep)
    after, rep = convert(tf, input_size=size)
    add("tfsame", "after (pads recomputed)", after, rep)
    noex, rep = convert(tf)
    add("tfsame", "after, no input_size (blur-first)", noex, rep)

    print(f"{len(x)} crops of {SIZE} px, shifts of 1 px right and down; random weights")
    print(f"{'net':12} {'variant':40} {'|dlogit|':>9} {'relative':>9} {'flips':>7}  placements")
    for net, variant, (d, rel, flips), placements in rows:
        print(f"{net:12} {variant:40} {d:9.4f} {rel:9.4f} {flips:7.1%}  {placements}")


if __name__ == "__main__":
    main()
