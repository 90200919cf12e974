"""The downsampling methods of :func:`antialias.convert` besides BlurPool (``method=``), and upsampling.

For ``method`` in ``("aps", "lps", "ideal", "adaptive")`` every strided site gets the method's layer
(:func:`antialias.downsample.make_downsampler`) at the site's stride, on 2-D sites only:

- strided conv -> [norm] -> activation: the conv at stride 1, then the layer after the activation
  (placement ``"after-activation"``, as BlurPool's);
- strided 1x1 conv without padding (a shortcut): the layer, then the conv at stride 1
  (``"sampler-then-1x1"``); with ``aps``/``lps`` its phase is the main branch's (see :func:`link`);
- any other strided conv: the conv at stride 1, then the layer (``"after-conv"``: the conv's cost grows
  by ``s_h * s_w``; a blur-first equivalent does not exist for a selection);
- strided max/avg pool: the same pool at stride 1, then the layer (``"drop-in"``); with circular padding
  the stride-1 pool wraps around (so it stays circularly equivariant).

With ``upsample=True``, ``nn.Upsample(mode="nearest")`` at an integer scale becomes
:class:`~antialias.downsample.BlurUpsample2d` (``blurpool``, ``ideal``, ``adaptive``) or the phase-aware
:class:`~antialias.downsample.PolyphaseUpsample2d` (``aps``, ``lps``), and a strided
``nn.ConvTranspose2d`` becomes :class:`~antialias.downsample.BlurConvTranspose2d` (same keys; not
phase-aware).
"""

from __future__ import annotations

import math
import operator
from typing import Any, cast

import torch.nn.functional as F
from torch import Tensor, nn

from antialias import downsample as _D
from antialias.convert._report import ConvertReport, ConvertSite
from antialias.downsample import upsample as _U

#: Class name shown in the report per method.
LABELS = {
    "blurpool": "BlurPool2d",
    "aps": "APS2d",
    "lps": "LPS2d",
    "ideal": "IdealDownsample2d",
    "adaptive": "AdaptiveDownsample2d",
}

#: Methods whose layers choose a phase that shortcuts and decoders must share.
POLYPHASE = ("aps", "lps")


class PoolDown2d(nn.Module):
    """A strided pool replaced by the same pool at stride 1 (child ``pool``), then a downsampler (``down``).

    With ``circular=True`` the input is first padded circularly by the window's span (``pad``) and the
    pool runs without padding, so the stride-1 pool keeps the map size and commutes with circular shifts.
    """

    def __init__(self, pool: nn.Module, down: nn.Module, pad: tuple[int, int, int, int] | None) -> None:
        super().__init__()
        self.pool = pool
        self.down = down
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad, mode="circular")
        return self.down(self.pool(x))

    def extra_repr(self) -> str:
        return f"circular_pad={self.pad}" if self.pad is not None else ""


class _PostDownMixin:
    """A plain ``nn.Conv2d`` at stride 1 followed by its child ``down`` (same ``weight``/``bias`` keys)."""

    down: nn.Module

    def forward(self, input: Tensor) -> Tensor:
        return self.down(super().forward(input))  # type: ignore[misc]


class PostDownConv2d(_PostDownMixin, nn.Conv2d):
    """``nn.Conv2d`` at stride 1, then its ``down`` layer (installed by ``convert(method=...)``)."""


def to_post_down(conv: nn.Conv2d, down: nn.Module) -> nn.Module:
    """Turn a plain ``nn.Conv2d`` into :class:`PostDownConv2d` in place (same object, same keys)."""
    conv.__class__ = PostDownConv2d
    conv.stride = (1, 1)
    conv.add_module("down", down)
    return conv


def infer_channels(model: nn.Module, name: str) -> int | None:
    """The channels entering module ``name``, read off the last module registered before it that states
    them (``out_channels`` of a conv, ``num_features`` of a norm); None when ``name`` is not a module."""
    last: int | None = None
    inside: list[str] = []  # converted layers (a sampler's own convs say nothing about the map)
    for path, mod in model.named_modules():
        if path == name:
            return last
        if any(path.startswith(p + ".") for p in inside):
            continue
        if isinstance(mod, LEAVES) and not isinstance(mod, PostDownConv2d):
            inside.append(path)
            continue
        for attr in ("out_channels", "num_features"):
            value = getattr(mod, attr, None)
            if isinstance(value, int):
                last = value
    return None


def pool_down_size(length: int, k: int, s: int, p: int, d: int, circular: bool) -> int:
    """Output length of :class:`PoolDown2d` on one axis: ``ceil(L' / s)``, ``L'`` the stride-1 pool's."""
    inner = length if circular else length + 2 * p - d * (k - 1)
    return math.ceil(inner / s)


def make_pool_down(
    is_max: bool, params: tuple, down: nn.Module, circular: bool, count_include_pad: bool = True
) -> PoolDown2d:
    k, _s, p, d, _ceil = params
    if circular:
        span_h, span_w = d[0] * (k[0] - 1), d[1] * (k[1] - 1)
        pad = (span_w // 2, span_w - span_w // 2, span_h // 2, span_h - span_h // 2)
        pool: nn.Module = nn.MaxPool2d(k, 1, 0, d) if is_max else nn.AvgPool2d(k, 1, 0)
        return PoolDown2d(pool, down, pad)
    pool = nn.MaxPool2d(k, 1, p, d) if is_max else nn.AvgPool2d(k, 1, p, count_include_pad=count_include_pad)
    return PoolDown2d(pool, down, None)


class Linker:
    """Collects the polyphase samplers and decoder upsamplers of one conversion, in conversion order
    (the ``torch.fx`` graph's, i.e. execution order, for traced modules), and wires them together once
    every site is converted (:meth:`link`)."""

    def __init__(self) -> None:
        # (site name, APS2d/LPS2d, whether it samples a residual shortcut)
        self.samplers: list[tuple[str, nn.Module, bool]] = []
        self.ups: list[tuple[str, int, nn.Module]] = []  # (site name, samplers before it, PolyphaseUpsample2d)

    def leader(self, name: str, module: nn.Module) -> None:
        self.samplers.append((name, module, False))

    def follower(self, name: str, module: nn.Module) -> None:
        self.samplers.append((name, module, True))

    def up(self, name: str, module: nn.Module) -> None:
        self.ups.append((name, len(self.samplers), module))

    def _partner(self, i: int) -> int | None:
        """The main-branch sampler a shortcut sampler ``i`` pairs with, or None."""
        name = self.samplers[i][0]
        parts = name.split(".")
        for depth in range(len(parts) - 1, 0, -1):  # nearest enclosing module first; never the root
            prefix = ".".join(parts[:depth]) + "."
            inside = [j for j, (n, _, short) in enumerate(self.samplers) if not short and n.startswith(prefix)]
            if inside:
                before = [j for j in inside if j < i]
                return before[-1] if before else inside[0]
        return None

    def link(
        self, model: nn.Module, report: ConvertReport, filter_size: Any, padding_mode: str
    ) -> dict[int, nn.Module]:
        """Residual shortcuts share their main branch's phase; decoders restore the encoders' in mirror order.

        A shortcut sampler (a strided 1x1 conv, placement ``"sampler-then-1x1"``) pairs with the main-branch
        sampler of its nearest enclosing module that holds one (the root does not count): the last one
        converted before it, else the first after it (``layer2.0.downsample.0`` pairs with
        ``layer2.0.conv1``'s sampler in a BasicBlock, ``layer2.0.conv2``'s in a Bottleneck). Of the pair,
        the one that runs first (earlier in the ``torch.fx`` graph: torchvision computes the main branch
        first, this library's zoo the shortcut) keeps its sampler and chooses; the other becomes a
        :class:`~antialias.downsample.PhaseFollow2d` on its link (so an LPS follower has no scoring network:
        no new keys there). Both choices give exact circular-shift invariance; the paper's is the main
        branch's. A shortcut with no partner keeps its own choice (noted in the report).

        The ``j``-th upsampler (forward order) restores the phase of the unmatched sampler ``j``-th from
        the last converted before it (a U-Net's mirror order) whose stride matches; shortcut followers
        do not count.
        """
        notes: dict[str, str] = {}
        replaced: dict[int, nn.Module] = {}  # id(old sampler) -> its PhaseFollow2d
        follows: dict[int, int] = {}  # follower sampler -> the sampler whose link it reads
        for i, (name, _, short) in enumerate(self.samplers):
            if not short:
                continue
            j = self._partner(i)
            if j is None:
                notes[name] = "no polyphase sampler in its block: it keeps its own phase choice"
                continue
            first, second = min(i, j), max(i, j)
            if second in follows or first in follows:
                notes[name] = "its block's sampler already pairs with another shortcut: it keeps its own phase"
                continue
            follows[second] = first
        for second, first in follows.items():
            lead_name, lead, _ = self.samplers[first]
            name, old, _ = self.samplers[second]
            new = _D.PhaseFollow2d(cast(Any, lead).link, getattr(old, "filter_size", None), padding_mode)
            ref = next(iter(old.buffers()), None)
            if ref is not None:
                new = new.to(device=ref.device, dtype=ref.dtype)
            _replace(model, old, new)
            replaced[id(old)] = new
            notes[name] = f"takes the phase chosen by `{lead_name}` (residual pair)"
            notes.setdefault(lead_name, f"its phase is shared with `{name}` (residual pair)")
        used: set[int] = set()
        for name, before, up in self.ups:
            match = None
            for i in reversed(range(before)):
                if i in used or i in follows or (self.samplers[i][2] and i not in follows.values()):
                    continue  # taken, a follower, or an unpaired shortcut
                if tuple(cast(Any, self.samplers[i][1]).stride) == tuple(cast(Any, up).stride):
                    match = i
                    break
            if match is None:
                notes[name] = "no unmatched polyphase sampler of this stride before it: upsampling at phase 0"
                continue
            used.add(match)
            up.link = cast(Any, self.samplers[match][1]).link
            notes[name] = f"restores the phase chosen by `{self.samplers[match][0]}`"
        for k, site in enumerate(report.sites):
            if site.name in notes:
                note = f"{site.note}; {notes[site.name]}" if site.note else notes[site.name]
                report.sites[k] = ConvertSite(site.name, site.kind, site.old, site.new, site.placement, note)
        return replaced


def _replace(model: nn.Module, old: nn.Module, new: nn.Module) -> None:
    """Put ``new`` wherever ``model`` holds ``old`` as a child (``torch.fx.GraphModule`` attributes included)."""
    for parent in model.modules():
        for child_name, child in list(parent.named_children()):
            if child is old:
                setattr(parent, child_name, new)


def slice_stride(node: Any) -> tuple[int, int] | None:
    """``(s_h, s_w)`` when ``node`` is ``x[:, :, ::s_h, ::s_w]`` (a plain subsampling, e.g. an option-A
    shortcut) with some stride > 1, else None."""
    if node.op != "call_function" or node.target is not operator.getitem or len(node.args) != 2:
        return None
    index = node.args[1]
    if not isinstance(index, tuple) or len(index) != 4 or not all(isinstance(i, slice) for i in index):
        return None
    full = slice(None, None, None)
    if index[0] != full or index[1] != full:
        return None
    steps = []
    for sl in index[2:]:
        if sl.start not in (None, 0) or sl.stop is not None or not isinstance(sl.step, (int, type(None))):
            return None
        steps.append(1 if sl.step is None else sl.step)
    if any(st < 1 for st in steps) or all(st == 1 for st in steps):
        return None
    return steps[0], steps[1]


def upsample_site(mod: nn.Module) -> tuple[str, tuple[int, int]] | None:
    """``("upsample"|"convtranspose", stride)`` for a 2-D upsampling module convert handles, else None."""
    if isinstance(mod, nn.Upsample) and mod.mode == "nearest" and mod.size is None:
        sf = mod.scale_factor
        factors = tuple(sf) if isinstance(sf, (tuple, list)) else (sf, sf)
        if len(factors) == 2 and all(float(f).is_integer() and f >= 1 for f in factors):  # type: ignore[arg-type, operator]
            s = (int(factors[0]), int(factors[1]))  # type: ignore[arg-type]
            return ("upsample", s) if s != (1, 1) else None
        return None
    if type(mod) is nn.ConvTranspose2d and any(v > 1 for v in mod.stride):
        return "convtranspose", (int(mod.stride[0]), int(mod.stride[1]))
    return None


def new_upsampler(method: str, mod: nn.Module, stride: tuple[int, int], padding_mode: str) -> nn.Module:
    """The anti-aliased replacement of ``mod`` (see :func:`upsample_site`)."""
    if isinstance(mod, nn.ConvTranspose2d):
        return _U.to_blur_conv_transpose(mod, None, padding_mode)
    if method in POLYPHASE:
        # linked to its encoder downsampler by Linker.link; unlinked it upsamples at phase 0
        return _D.PolyphaseUpsample2d(None, None, padding_mode, stride=stride)
    return _D.BlurUpsample2d(stride, None, padding_mode)


#: Modules convert never traces into (their forward checks shapes, or they are already converted).
LEAVES: tuple[type[nn.Module], ...] = (
    _D.APS2d,
    _D.LPS2d,
    _D.IdealDownsample2d,
    _D.AdaptiveDownsample2d,
    _D.PhaseFollow2d,
    _D.BlurUpsample2d,
    _D.PolyphaseUpsample2d,
    _D.BlurConvTranspose2d,
    PoolDown2d,
    PostDownConv2d,
)
