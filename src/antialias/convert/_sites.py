"""Per-site decisions of :func:`antialias.convert`: options, context, pools and convs."""

from __future__ import annotations

import fnmatch
import inspect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import torch.fx as fx
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.pooling import _MaxPoolNd

from antialias import downsample as _D
from antialias.convert import _activations as _A
from antialias.convert import _filters as _cf
from antialias.convert import _layers as _L
from antialias.convert import _methods as _M
from antialias.convert._graph import _path
from antialias.convert._report import ConvertReport, ConvertSite


@dataclass
class _Options:
    filter_size: Any
    padding_mode: str
    replace: frozenset[str]
    min_channels: int
    exclude: tuple[str, ...]
    method: str = "blurpool"  # convert(method=...): see _methods
    method_options: dict[str, Any] = field(default_factory=dict)
    upsample: bool = False


class _Ctx:
    def __init__(self, options: _Options, report: ConvertReport, model: nn.Module) -> None:
        self.opt = options
        self.report = report
        self.model = model
        # (site name, output shapes recorded before, module whose output must match afterwards)
        self.checks: list[tuple[str, list[tuple[int, ...]], nn.Module]] = []
        self.observed: dict[int, list[tuple[tuple[int, ...], tuple[int, ...]]]] = {}
        self.handled: set[int] = set()
        self.linker = _M.Linker()  # polyphase leaders, shortcut followers, decoder upsamplers (aps/lps)
        registered = Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
        self.shared = {k for k, v in registered.items() if v > 1}
        first: Tensor | None = next(iter(model.parameters()), None)
        if first is None:
            first = next(iter(model.buffers()), None)
        self.factory: dict[str, Any] = (
            {"device": first.device, "dtype": first.dtype} if first is not None and first.is_floating_point() else {}
        )

    def sampler(self, channels: int | None, strides: tuple[int, int], name: str, follower: bool = False) -> nn.Module:
        """The layer of ``convert(method=...)`` at ``strides`` (a polyphase leader unless ``follower``)."""
        new = _D.make_downsampler(
            self.opt.method, channels, strides, filter_size=_L.axis_filter(self.opt.filter_size, strides),
            padding_mode=self.opt.padding_mode, **self.opt.method_options, **self.factory,
        )
        if self.opt.method in _M.POLYPHASE and not follower:
            self.linker.leader(name, new)
        return new

    def label(self, nd: int) -> str:
        """The class name the report shows for the method's layer."""
        return f"BlurPool{nd}d" if self.opt.method == "blurpool" else _M.LABELS[self.opt.method]

    def note_filter(self, strides: tuple[int, ...]) -> None:
        """Record in the report which filter the default rule gave a stride above 2 (patch stems)."""
        for s in strides:
            if s > 2 and s not in self.report.stride_filters:
                self.report.stride_filters[s] = _cf.describe(self.opt.filter_size, (s,))

    def excluded(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.opt.exclude)

    def skip(self, name: str, kind: str, old: str, why: str) -> None:
        self.report.skipped.append(ConvertSite(name, kind, old, old, "skipped", why))

    def done(self, name: str, kind: str, old: str, new: str, placement: str, note: str = "") -> None:
        self.report.sites.append(ConvertSite(name, kind, old, new, placement, note))

    def check(self, name: str, before: nn.Module | None, after: nn.Module) -> None:
        if before is not None and id(before) in self.observed:
            self.checks.append((name, [out for _, out in self.observed[id(before)]], after))

    def blurpool(
        self, nd: int, channels: int | None, strides: tuple[int, ...], blur_axes: tuple[int, ...],
        name: str = "", follower: bool = False,
    ) -> nn.Module:
        if self.opt.method != "blurpool" and nd == 2 and tuple(strides) == tuple(blur_axes):
            return self.sampler(channels, (strides[0], strides[1]), name, follower)
        self.note_filter(blur_axes)
        return _L.BLURPOOLS[nd](
            channels, _L.axis_filter(self.opt.filter_size, blur_axes), strides, self.opt.padding_mode, **self.factory
        )


#: The pooling modules convert replaces (``_L.MAXPOOLS`` and ``_L.AVGPOOLS``).
PoolModule = _MaxPoolNd | nn.AvgPool1d | nn.AvgPool2d | nn.AvgPool3d
POOL_TYPES = (_MaxPoolNd, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)  # for isinstance; mypy narrows with it


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else prefix or name


def _t(value: Any) -> str:
    if isinstance(value, (tuple, list)) and len(set(value)) == 1:
        return str(value[0])
    return str(tuple(value)) if isinstance(value, (tuple, list)) else str(value)


def _desc(mod: nn.Module, **override: Any) -> str:
    get = lambda name: override.get(name, getattr(mod, name))  # noqa: E731
    if isinstance(mod, nn.modules.conv._ConvNd):
        return (
            f"{type(mod).__name__}({mod.in_channels}->{mod.out_channels}, k={_t(mod.kernel_size)}, "
            f"s={_t(get('stride'))}, p={_t(mod.padding)})"
        )
    text = f"{type(mod).__name__}(k={_t(mod.kernel_size)}, s={_t(mod.stride)}, p={_t(mod.padding)}"
    if getattr(mod, "ceil_mode", False):
        text += ", ceil_mode=True"
    return text + ")"


def _node_desc(node: fx.Node, prefix: str) -> str:
    if node.op == "call_module":
        return _join(prefix, _path(node))
    if node.op == "call_method":
        return f".{node.target}()"
    return f"{getattr(node.target, '__name__', str(node.target))}()"


def _pool_params(mod: PoolModule, nd: int, is_max: bool) -> tuple:
    k = _L.ntuple(mod.kernel_size, nd)
    s = _L.ntuple(mod.stride if mod.stride is not None else mod.kernel_size, nd)
    p = _L.ntuple(mod.padding, nd)
    d = _L.ntuple(mod.dilation, nd) if is_max and isinstance(mod, _MaxPoolNd) else (1,) * nd
    return k, s, p, d, bool(mod.ceil_mode)


def _pool_fits(ctx: _Ctx, is_max: bool, params: tuple, observed: list) -> tuple[bool, str]:
    """Whether the blur version has the pool's output size; a note when it holds only for the example."""
    k, s, p, d, ceil_mode = params
    if ctx.opt.method != "blurpool":
        return _method_pool_fits(ctx, params, observed)
    if ctx.opt.padding_mode != "circular":
        return True, ""  # MaxBlurPool and AvgBlurPool reproduce the pool's size arithmetic exactly
    nd = len(k)
    if all(_L.always_same_size(k[i], s[i], p[i], d[i], ceil_mode) for i in range(nd)):
        return True, ""
    if observed and all(
        tuple(out[2:]) == tuple(_L.blur_out(n, s[i]) for i, n in enumerate(inp[2:])) for inp, out in observed
    ):
        return True, f"output size equals ceil(L/{_t(s)}) only for inputs like the example {observed[0][0]}"
    return False, (
        f"its output size differs from ceil(L/{_t(s)}) for some input sizes; pass example_input= to check "
        "yours, or replace it by hand"
    )


def _method_pool_fits(ctx: _Ctx, params: tuple, observed: list) -> tuple[bool, str]:
    """Whether ``pool at stride 1 -> method's layer`` has the pool's output size (see _methods)."""
    k, s, p, d, ceil_mode = params
    circ = ctx.opt.padding_mode == "circular"

    def same(length: int, i: int) -> bool:
        return _L.pool_out(length, k[i], s[i], p[i], d[i], ceil_mode) == _M.pool_down_size(
            length, k[i], s[i], p[i], d[i], circ
        )

    low = [max(1, d[i] * (k[i] - 1) + 1 - 2 * p[i]) for i in range(2)]
    if all(same(n, i) for i in range(2) for n in range(low[i], low[i] + 2 * s[i] + 2)):
        return True, ""
    if observed and all(all(same(n, i) for i, n in enumerate(inp[2:])) for inp, _ in observed):
        return True, f"same output size only for inputs like the example {observed[0][0]}"
    return False, "its output size differs from the stride-1 pool then the sampler's; replace it by hand"


def _new_pool(ctx: _Ctx, nd: int, is_max: bool, params: tuple, channels: int | None, name: str = "",
              count_include_pad: bool = True) -> nn.Module:
    k, s, p, d, ceil_mode = params
    if ctx.opt.method != "blurpool":
        down = ctx.sampler(channels, (s[0], s[1]), name)
        return _M.make_pool_down(is_max, params, down, ctx.opt.padding_mode == "circular", count_include_pad)
    if is_max:
        ctx.note_filter(s)
        return _L.MAXBLURPOOLS[nd](
            k, s, p, d, ceil_mode, channels=channels,
            filter_size=_L.axis_filter(ctx.opt.filter_size, s), padding_mode=ctx.opt.padding_mode, **ctx.factory,
        )
    if all(_L.always_same_size(k[i], s[i], p[i], 1, ceil_mode) for i in range(nd)):
        return ctx.blurpool(nd, channels, s, s)
    if ctx.opt.padding_mode == "circular":  # circular blur-pool keeps ceil(L/s): the example said it fits
        return ctx.blurpool(nd, channels, s, s)
    ctx.note_filter(s)  # the avg-pool's exact output size for every input (see _layers.AvgBlurPoolNd)
    return _L.AVGBLURPOOLS[nd](
        k, s, p, ceil_mode, count_include_pad, channels=channels,
        filter_size=_L.axis_filter(ctx.opt.filter_size, s), padding_mode=ctx.opt.padding_mode, **ctx.factory,
    )


def _channels(ctx: _Ctx, mod: nn.Module) -> int | None:
    shapes = {inp[1] for inp, _ in ctx.observed.get(id(mod), []) if len(inp) > 1}
    return shapes.pop() if len(shapes) == 1 else None


def _pool_module(ctx: _Ctx, mod: PoolModule, name: str) -> nn.Module | None:
    """The replacement of a pool module, or None (skipped or not strided)."""
    is_max = isinstance(mod, tuple(_L.MAXPOOLS))
    nd = next(n for cls, n in {**_L.MAXPOOLS, **_L.AVGPOOLS}.items() if isinstance(mod, cls))
    kind = "maxpool" if is_max else "avgpool"
    params = _pool_params(mod, nd, is_max)
    if all(v == 1 for v in params[1]):
        return None
    old = _desc(mod)
    if kind not in ctx.opt.replace:
        return None
    if ctx.excluded(name):
        ctx.skip(name, kind, old, "excluded by `exclude`")
        return None
    channels = _channels(ctx, mod)
    if channels is not None and channels < ctx.opt.min_channels:
        ctx.skip(name, kind, old, f"{channels} input channels < min_channels={ctx.opt.min_channels}")
        return None
    if is_max and mod.return_indices:
        ctx.skip(name, kind, old, "return_indices=True (max-unpooling needs the max-pool's indices)")
        return None
    if ctx.opt.method != "blurpool" and nd != 2:
        ctx.skip(name, kind, old, f"method {ctx.opt.method!r} converts 2-D sites only")
        return None
    fits, note = _pool_fits(ctx, is_max, params, ctx.observed.get(id(mod), []))
    if not fits:
        ctx.skip(name, kind, old, note)
        return None
    if ctx.opt.method != "blurpool" and channels is None:
        channels = _M.infer_channels(ctx.model, name)
    if ctx.opt.method == "adaptive" and channels is None:
        ctx.skip(name, kind, old, "input channels unknown (pass example_input=): the adaptive filter needs them")
        return None
    new = _new_pool(ctx, nd, is_max, params, channels, name, bool(getattr(mod, "count_include_pad", True)))
    if ctx.opt.method != "blurpool":
        pooled = f"{type(mod).__name__}(k={_t(params[0])}, s=1)"
        ctx.done(name, kind, old, f"{pooled} -> {ctx.label(nd)}(s={_t(params[1])})", "drop-in", note)
        ctx.check(name, mod, new)
        return new
    ctx.done(name, kind, old, f"{type(new).__name__}(k={_t(params[0])}, s={_t(params[1])}, p={_t(params[2])})"
             if is_max else f"{type(new).__name__}(s={_t(params[1])})", "drop-in", note)
    ctx.check(name, mod, new)
    return new


_MAXPOOL_SIG = inspect.Signature(
    [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d) for n, d in (
        ("input", inspect.Parameter.empty), ("kernel_size", inspect.Parameter.empty), ("stride", None),
        ("padding", 0), ("dilation", 1), ("ceil_mode", False), ("return_indices", False))]
)
_AVGPOOL_SIG = inspect.Signature(
    [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d) for n, d in (
        ("input", inspect.Parameter.empty), ("kernel_size", inspect.Parameter.empty), ("stride", None),
        ("padding", 0), ("ceil_mode", False), ("count_include_pad", True), ("divisor_override", None))]
)


def _functional_pool(ctx: _Ctx, node: fx.Node, name: str) -> nn.Module | None:
    is_max = node.target in _L.FUNCTIONAL_MAXPOOLS
    nd = (_L.FUNCTIONAL_MAXPOOLS if is_max else _L.FUNCTIONAL_AVGPOOLS)[node.target]
    kind = "maxpool" if is_max else "avgpool"
    try:
        bound = (_MAXPOOL_SIG if is_max else _AVGPOOL_SIG).bind(*node.args, **node.kwargs)
    except TypeError:
        return None
    args = dict(bound.arguments)
    shown = ", ".join(f"{k}={v}" for k, v in args.items() if k != "input")
    old = f"{getattr(node.target, '__name__', node.target)}({shown})"
    if kind not in ctx.opt.replace:
        return None
    if any(isinstance(v, fx.Node) for k, v in args.items() if k != "input"):
        ctx.skip(name, kind, old, "pooling arguments computed at run time")
        return None
    k = _L.ntuple(args["kernel_size"], nd)
    stride = args.get("stride")
    s = k if stride is None or stride == [] else _L.ntuple(stride, nd)
    if all(v == 1 for v in s):
        return None
    if ctx.excluded(name):
        ctx.skip(name, kind, old, "excluded by `exclude`")
        return None
    if args.get("return_indices"):
        ctx.skip(name, kind, old, "return_indices=True")
        return None
    params = (
        k,
        s,
        _L.ntuple(args.get("padding", 0), nd),
        _L.ntuple(args.get("dilation", 1), nd) if is_max else (1,) * nd,
        bool(args.get("ceil_mode", False)),
    )
    if ctx.opt.method != "blurpool" and nd != 2:
        ctx.skip(name, kind, old, f"method {ctx.opt.method!r} converts 2-D sites only")
        return None
    fits, note = _pool_fits(ctx, is_max, params, [])
    if not fits:
        ctx.skip(name, kind, old, note)
        return None
    channels = _M.infer_channels(ctx.model, name) if ctx.opt.method != "blurpool" else None
    if ctx.opt.method == "adaptive" and channels is None:
        ctx.skip(name, kind, old, "its input channels are unknown: the adaptive filter needs them")
        return None
    new = _new_pool(ctx, nd, is_max, params, channels, name, bool(args.get("count_include_pad", True)))
    ctx.done(name, kind, old, f"{type(new).__name__}(k={_t(k)}, s={_t(s)}, p={_t(params[2])})" if is_max
             else f"{type(new).__name__}(s={_t(s)})", "drop-in")
    return new


def _conv_nd(mod: nn.Module) -> int | None:
    for cls, nd in _L.CONVS.items():
        if isinstance(mod, cls):
            return nd
    return None


def _is_conv(mod: nn.Module) -> TypeGuard[_ConvNd]:
    """Whether ``mod`` is an ``nn.Conv1d/2d/3d`` (or a subclass): what ``_conv_nd`` gives a size for."""
    return _conv_nd(mod) is not None


def _conv_gate(ctx: _Ctx, mod: _ConvNd, name: str) -> bool:
    """Whether a strided conv is to be converted (records the skip if not)."""
    if "conv" not in ctx.opt.replace:
        return False
    if isinstance(mod, _L.PREBLUR_TYPES):
        ctx.skip(name, "conv", _desc(mod), "already anti-aliased (blur before the conv)")
        return False
    if ctx.excluded(name):
        ctx.skip(name, "conv", _desc(mod), "excluded by `exclude`")
        return False
    if mod.in_channels < ctx.opt.min_channels:
        ctx.skip(name, "conv", _desc(mod), f"{mod.in_channels} input channels < min_channels={ctx.opt.min_channels}")
        return False
    if isinstance(mod.padding, str) and mod.padding != "valid":
        ctx.skip(name, "conv", _desc(mod), f"padding={mod.padding!r}")
        return False
    if ctx.opt.method != "blurpool" and len(mod.kernel_size) != 2:
        ctx.skip(name, "conv", _desc(mod), f"method {ctx.opt.method!r} converts 2-D sites only")
        return False
    return True


def _blur_first(ctx: _Ctx, mod: _ConvNd, name: str, note: str = "") -> bool:
    """Module-level blur-first: the conv becomes its ``PreBlurConvNd`` (same object, same keys)."""
    old = _desc(mod)
    if type(mod) not in _L.CONVS:
        return False
    nd = _L.CONVS[type(mod)]
    stride = tuple(mod.stride)
    pointwise = all(v == 1 for v in mod.kernel_size) and (mod.padding == "valid" or not any(mod.padding))
    if ctx.opt.method != "blurpool":
        return _method_first(ctx, mod, name, note, pointwise)
    if pointwise:
        blur = ctx.blurpool(nd, mod.in_channels, stride, stride)
        _L.to_preblur(mod, nd, blur, (1,) * nd)
        ctx.done(name, "conv", old, f"BlurPool{nd}d(s={_t(stride)}) -> {_desc(mod)}", "blurpool-then-1x1", note)
    else:
        blur = ctx.blurpool(nd, mod.in_channels, (1,) * nd, stride)
        _L.to_preblur(mod, nd, blur, stride)
        ctx.done(name, "conv", old, f"BlurPool{nd}d(s=1) -> {_desc(mod)}", "before-conv",
                 note or "no conv -> [norm] -> activation pattern follows it")
    ctx.check(name, mod, mod)
    return True


def _is_norm(node: fx.Node, src: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if not node.args or node.args[0] is not src:
        return False
    if node.op == "call_module":
        return isinstance(modules.get(_path(node)), _L.NORM_MODULES)
    return node.op == "call_function" and node.target in _L.NORM_FUNCTIONS


def _is_act(node: fx.Node, src: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Whether ``node`` applies an activation to ``src`` (see ``_activations``: fused norm + act included)."""
    if not node.args or node.args[0] is not src:
        return False
    return _A.is_activation_node(node, modules)


def _follow(node: fx.Node, modules: dict[str, nn.Module]) -> tuple[list[fx.Node], fx.Node] | None:
    """The ``[norm...] -> activation`` chain the conv output flows through alone, or None.

    The activation is a module, a fused norm + activation module, a function or method, or the node
    closing a gated pointwise region such as ``x * sigmoid(x)`` (``_activations.gated_activation``).
    """
    chain: list[fx.Node] = []
    cur = node
    while True:
        if len(cur.users) == 1:
            nxt = next(iter(cur.users))
            if _is_act(nxt, cur, modules):
                return chain, nxt
            if _is_norm(nxt, cur, modules):
                chain.append(nxt)
                cur = nxt
                continue
        if not cur.users:
            return None
        gate = _A.gated_activation(cur, modules)
        return (chain, gate) if gate is not None else None


def _stateless(mod: nn.Module) -> bool:
    return not mod.state_dict()


# --------------------------------------------------------------------------- fixed paddings before a strided conv

_PAD_MODULES = (
    nn.modules.padding._ConstantPadNd, nn.modules.padding._ReflectionPadNd,
    nn.modules.padding._ReplicationPadNd, nn.modules.padding._CircularPadNd,
)
_PAD_CLASSES: dict[str, dict[int, type[nn.Module]]] = {
    "constant": {1: nn.ConstantPad1d, 2: nn.ConstantPad2d, 3: nn.ConstantPad3d},
    "reflect": {1: nn.ReflectionPad1d, 2: nn.ReflectionPad2d, 3: nn.ReflectionPad3d},
    "replicate": {1: nn.ReplicationPad1d, 2: nn.ReplicationPad2d, 3: nn.ReplicationPad3d},
    "circular": {1: nn.CircularPad1d, 2: nn.CircularPad2d, 3: nn.CircularPad3d},
}
_PAD_SIG = inspect.Signature(
    [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d) for n, d in (
        ("input", inspect.Parameter.empty), ("pad", inspect.Parameter.empty), ("mode", "constant"), ("value", None))]
)


@dataclass
class _PadPlan:
    """A fixed padding feeding a strided conv, recomputed for the conv at stride 1."""

    node: fx.Node
    module: nn.Module | None  # the pad module, or None for an ``F.pad`` call (replaced in its owner's graph)
    new: tuple[int, ...]  # F.pad order: last axis first, (before, after) per axis
    mode: str
    value: float
    note: str

    def apply(self) -> nn.Module | None:
        """Set the new padding on the module; for ``F.pad``, return the pad module to put in its place."""
        if self.module is not None:
            setattr(self.module, "padding", self.new)  # noqa: B010 (nn.Module types attributes as Tensor | Module)
            return None
        nd = len(self.new) // 2
        cls: Any = _PAD_CLASSES[self.mode][nd]
        return cls(self.new, self.value) if self.mode == "constant" else cls(self.new)


def _pad_of(
    node: fx.Node, modules: dict[str, nn.Module]
) -> tuple[nn.Module | None, tuple[int, ...], str, float] | None:
    """``(module or None, pads, mode, value)`` when ``node`` is a fixed padding (module or ``F.pad``)."""
    if node.op == "call_module":
        mod = modules.get(_path(node))
        if isinstance(mod, _PAD_MODULES):
            pads = tuple(int(v) for v in mod.padding)
            mode = "constant" if isinstance(mod, nn.modules.padding._ConstantPadNd) else (
                "reflect" if isinstance(mod, nn.modules.padding._ReflectionPadNd)
                else "replicate" if isinstance(mod, nn.modules.padding._ReplicationPadNd) else "circular"
            )
            return mod, pads, mode, float(getattr(mod, "value", 0.0))
        return None
    if node.op == "call_function" and node.target is F.pad:
        try:
            bound = _PAD_SIG.bind(*node.args, **node.kwargs)
        except TypeError:
            return None
        args = bound.arguments
        pads, mode, value = args["pad"], args.get("mode", "constant"), args.get("value")
        if not isinstance(pads, (tuple, list)) or not all(isinstance(v, int) for v in pads) or mode not in _PAD_CLASSES:
            return None
        if value is not None and not isinstance(value, (int, float)):
            return None
        return None, tuple(pads), str(mode), float(value or 0.0)
    return None


def _conv_out(length: int, pad: int, k_eff: int, s: int) -> int:
    return (length + pad - k_eff) // s + 1


def _pad_plan(
    ctx: _Ctx, node: fx.Node, modules: dict[str, nn.Module], calls: Counter, mod: _ConvNd
) -> _PadPlan | str | None:
    """Recompute a fixed padding that feeds the strided conv ``node`` for the conv at stride 1.

    A padding computed for stride ``s`` (TF-"same" style ``nn.ZeroPad2d((0, 1, 0, 1))`` before a
    ``k3 s2`` conv with ``padding=0``) would leave the stride-1 map a pixel short (223 for 224). Each
    subsampled axis gets "same" padding for stride 1 instead: total ``k_eff - 1`` split
    ``(floor, ceil)``, so the map keeps the input's size ``L`` and the blur gives ``ceil(L / s)``. That
    is the conv's old output size exactly when ``floor((L + P - k_eff) / s) + 1 == ceil(L / s)``: for
    every ``L`` when the old total ``P`` was ``k_eff - 1`` already, else only for some sizes; then the
    example input (or none) decides.

    Returns:
        None (no fixed padding feeds the conv, or nothing to change), a plan, or the reason it cannot
        be recomputed (the caller then keeps the conv strided: blur-first, or skips the site).
    """
    src = node.args[0] if node.args else None
    if not isinstance(src, fx.Node):
        return None
    found = _pad_of(src, modules)
    if found is None:
        return None
    pad_mod, pads, mode, value = found
    nd = len(mod.kernel_size)
    if mod.padding != "valid" and any(mod.padding):
        return None  # the conv pads too: leave both (only a padding-free conv is recognised as TF-same style)
    old_text = f"{type(pad_mod).__name__ if pad_mod is not None else 'F.pad'}({pads})"
    if len(src.users) != 1 or (pad_mod is not None and (calls[src.target] != 1 or id(pad_mod) in ctx.shared)):
        return f"fixed padding {old_text} before it is also used elsewhere: it cannot be recomputed for stride 1"
    if len(pads) % 2 or len(pads) // 2 > nd:
        return None
    full = list(pads) + [0] * (2 * nd - len(pads))
    new = list(full)
    observed = [inp for inp, _ in ctx.observed.get(id(mod), [])]
    always = True
    for axis in range(nd):  # spatial axis, outermost first; F.pad lists the last axis first
        s = int(mod.stride[axis])
        if s == 1:
            continue
        j = 2 * (nd - 1 - axis)
        k_eff = int(mod.dilation[axis]) * (int(mod.kernel_size[axis]) - 1) + 1
        total = k_eff - 1
        new[j], new[j + 1] = total // 2, total - total // 2
        before = full[j] + full[j + 1]
        if before != total:
            always = False
            for shape in observed:
                length = shape[2 + axis] - before  # the conv saw the padded map
                if _conv_out(length, before, k_eff, s) != -(-length // s):
                    return (
                        f"fixed padding {old_text} before it: recomputed for stride 1 it would change the "
                        f"output size at the example input {shape}; kept strided"
                    )
    if tuple(new) == tuple(full):
        return None
    if not always and not observed:
        return (
            f"fixed padding {old_text} before it was computed for stride {_t(mod.stride)}; recomputed for stride 1 "
            "the output size would change for some input sizes: pass input_size= or example_input= to check "
            "yours and get the paper's placement"
        )
    note = f"fixed padding {old_text} recomputed for stride 1: {tuple(new)} ('same': total k-1, floor/ceil)"
    if not always:
        note += f"; same output size only for inputs like the example {observed[0]}"
    return _PadPlan(src, pad_mod, tuple(new), mode, value, note)


def _into_fused(ctx: _Ctx, mod: nn.Module, blur: nn.Module) -> str | None:
    """Put ``blur`` after the activation child of a fused norm + activation ``mod`` (keys unchanged).

    Returns the report's note, or None when ``mod`` is not fused or its child cannot be wrapped (it
    has state or is shared); the caller then inserts the blur after ``mod`` in its owner's forward.
    """
    fused = _A.fused_activation(mod)
    if fused is None or id(mod) in ctx.shared:
        return None
    child_name, child = fused
    if not _stateless(child) or id(child) in ctx.shared:
        return None
    setattr(mod, child_name, nn.Sequential(child, blur))
    return f"fused norm + activation ({type(mod).__name__}): the blur follows its `{child_name}`"


def _method_first(ctx: _Ctx, mod: _ConvNd, name: str, note: str, pointwise: bool) -> bool:
    """``_blur_first`` for ``convert(method=...)``: sampler then 1x1 conv, or conv then sampler."""
    old = _desc(mod)
    stride = (int(mod.stride[0]), int(mod.stride[1]))
    label = f"{ctx.label(2)}(s={_t(stride)})"
    if pointwise:
        down = ctx.sampler(mod.in_channels, stride, name, follower=True)
        _L.to_preblur(mod, 2, down, (1, 1))
        if ctx.opt.method in _M.POLYPHASE:
            ctx.linker.follower(name, down)
        ctx.done(name, "conv", old, f"{label} -> {_desc(mod)}", "sampler-then-1x1", note)
    else:
        down = ctx.sampler(mod.out_channels, stride, name)
        _M.to_post_down(mod, down)  # type: ignore[arg-type]
        ctx.done(name, "conv", old, f"{_desc(mod)} -> {label}", "after-conv",
                 note or "no conv -> [norm] -> activation pattern follows it")
    ctx.check(name, mod, mod)
    return True


def _upsample_module(ctx: _Ctx, mod: nn.Module, name: str, calls: int = 1) -> nn.Module | None:
    """The anti-aliased replacement of an upsampling module (``convert(upsample=True)``), or None."""
    site = _M.upsample_site(mod)
    if site is None:
        return None
    kind, stride = site
    old = repr(mod) if kind == "upsample" else _desc(mod)
    if ctx.excluded(name):
        ctx.skip(name, kind, old, "excluded by `exclude`")
        return None
    method = ctx.opt.method if calls == 1 else "blurpool"  # one phase per call: a shared module cannot follow one
    new = _M.new_upsampler(method, mod, stride, ctx.opt.padding_mode).to(**ctx.factory)
    note = "" if calls == 1 else "called more than once: not phase-aware"
    if isinstance(new, _D.PolyphaseUpsample2d):
        ctx.linker.up(name, new)
    shown = f"{_desc(mod)} -> blur" if kind == "convtranspose" else f"{type(new).__name__}(s={_t(stride)})"
    ctx.done(name, kind, old, shown, "after-upsample" if kind == "convtranspose" else "drop-in", note)
    return new
