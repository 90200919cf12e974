"""Anti-alias an arbitrary network: ``convert(model) -> (model, report)`` (Zhang, ICML 2019).

Every strided downsampling site of ``model`` is given a low-pass filter while every existing weight
is kept:

- ``MaxPoolNd`` with stride > 1 -> ``MaxBlurPoolNd`` with the same window, padding, dilation and
  ``ceil_mode`` (placement ``"drop-in"``);
- ``AvgPoolNd`` with stride > 1 -> ``BlurPoolNd`` at the pool's stride, where its output size is
  that of the avg-pool (``"drop-in"``; otherwise skipped and reported);
- a strided ``ConvNd`` followed in the ``torch.fx`` graph by optional norm layers and an activation
  -> the conv at stride 1, the same norm and activation, then ``BlurPoolNd`` at the conv's stride:
  the paper's placement, blur after the nonlinearity (``"after-activation"``);
- a strided 1x1 conv without padding and with no such pattern (a shortcut) -> ``BlurPoolNd`` at its
  stride, then the conv at stride 1 (``"blurpool-then-1x1"``; both are linear, so this equals
  blurring after the conv, at ``1/s**2`` of the conv cost);
- any other strided conv -> blur at stride 1, then the conv at its stride (``"before-conv"``, the
  cheap variant; a deviation from the paper, named as such in the report).

Keys: the conv keeps its object and its ``weight``/``bias``; a blur is added either as the child
``blur`` of the conv (which becomes ``antialias.PreBlurConvNd``), as ``nn.Sequential(act, blur)``
in place of a parameterless activation module called once, or, where the activation is a function
or a module called several times (torchvision's ``BasicBlock`` reuses ``self.relu``), by rewriting
the forward of the module that calls it into a ``torch.fx.GraphModule`` that holds the same children.
Blur filters are non-persistent buffers, so ``state_dict()`` keys and values are unchanged.

A module ``torch.fx`` cannot trace (data-dependent control flow) is handled child by child: each
child is traced on its own, and the strided convs and pools called directly by the untraceable
forward get module-level replacements (paper placement only inside an ``nn.Sequential``, whose
order is its execution order; blur-first otherwise). The report lists every such fallback.
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import inspect
import math
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
from torch import Tensor, nn
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from antialias import filters as _filters
from antialias import functional as _F
from antialias import _convert_layers as _L
from antialias._convert_layers import PreBlurConv1d, PreBlurConv2d, PreBlurConv3d
from antialias.filters import FilterSpec

__all__ = [
    "KINDS",
    "PLACEMENTS",
    "ConvertReport",
    "ConvertSite",
    "PreBlurConv1d",
    "PreBlurConv2d",
    "PreBlurConv3d",
    "convert",
]

#: What ``replace=`` may name.
KINDS = ("maxpool", "avgpool", "conv")

#: Placements a report can name: ``drop-in`` (pools), ``after-activation`` (the paper's),
#: ``blurpool-then-1x1`` (shortcuts), ``before-conv`` (blur-first), ``skipped``.
PLACEMENTS = ("drop-in", "after-activation", "blurpool-then-1x1", "before-conv", "skipped")

_WHERE = "convert"


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class ConvertSite:
    """One downsampling site: where it is, what it was, what it became and how."""

    name: str
    kind: str
    old: str
    new: str
    placement: str
    note: str = ""


@dataclass
class ConvertReport:
    """What :func:`convert` did. ``print(report)`` gives one block per site and the costs.

    Attributes:
        sites: The converted sites, in graph (or module) order.
        skipped: Strided sites left as they were, each with the reason.
        traced: Modules converted from a ``torch.fx`` graph (``"<root>"`` for the whole model).
        fallbacks: Modules ``torch.fx`` could not trace, with the error; their direct children
            got module-level replacements.
        rewritten: Modules whose forward was rewritten as a ``torch.fx.GraphModule``.
        input_size: Shape of the example input the costs were measured on, or None.
        flops_before, flops_after: ``FlopCounterMode`` totals (convolutions and matmuls), or None.
        params_before, params_after: Parameter counts.
    """

    filter_size: Any
    padding_mode: str
    sites: list[ConvertSite] = field(default_factory=list)
    skipped: list[ConvertSite] = field(default_factory=list)
    traced: list[str] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)
    input_size: tuple[int, ...] | None = None
    flops_before: int | None = None
    flops_after: int | None = None
    params_before: int = 0
    params_after: int = 0

    def placements(self) -> dict[str, str]:
        """Site name -> placement, for the converted sites."""
        return {s.name: s.placement for s in self.sites}

    def __str__(self) -> str:
        how = "torch.fx graph" if not self.fallbacks else "torch.fx graph with module-level fallback"
        lines = [
            f"antialias.convert: {len(self.sites)} site(s) converted, {len(self.skipped)} skipped "
            f"({how}; filter_size={self.filter_size!r}, padding_mode={self.padding_mode!r})"
        ]
        for site in self.sites:
            lines.append(f"  {site.name}  [{site.kind}, {site.placement}]")
            lines.append(f"      {site.old}  ->  {site.new}")
            if site.note:
                lines.append(f"      note: {site.note}")
        if self.skipped:
            lines.append("skipped:")
            for site in self.skipped:
                lines.append(f"  {site.name}  [{site.kind}] {site.old}: {site.note}")
        for item in self.fallbacks:
            lines.append(f"fallback: {item}")
        for item in self.rewritten:
            lines.append(f"rewritten as torch.fx.GraphModule: {item}")
        if self.flops_before is not None and self.flops_after is not None:
            ratio = self.flops_after / self.flops_before if self.flops_before else float("nan")
            lines.append(
                f"cost at input {self.input_size}: FLOPs {_human(self.flops_before)} -> "
                f"{_human(self.flops_after)} (x{ratio:.2f}); params {self.params_before:,} -> {self.params_after:,}"
            )
        else:
            lines.append(f"params {self.params_before:,} -> {self.params_after:,} (pass input_size= for FLOPs)")
        return "\n".join(lines)


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3f}{unit} ({n:,})"
    return f"{n:,}"


# --------------------------------------------------------------------------- context


@dataclass
class _Options:
    filter_size: Any
    padding_mode: str
    replace: frozenset[str]
    min_channels: int
    exclude: tuple[str, ...]


class _Ctx:
    def __init__(self, options: _Options, report: ConvertReport, model: nn.Module) -> None:
        self.opt = options
        self.report = report
        # (site name, output shapes recorded before, module whose output must match afterwards)
        self.checks: list[tuple[str, list[tuple[int, ...]], nn.Module]] = []
        self.observed: dict[int, list[tuple[tuple[int, ...], tuple[int, ...]]]] = {}
        self.handled: set[int] = set()
        registered = Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
        self.shared = {k for k, v in registered.items() if v > 1}
        first = next(iter(model.parameters()), None)
        if first is None:
            first = next(iter(model.buffers()), None)
        self.factory = {"device": first.device, "dtype": first.dtype} if first is not None and first.is_floating_point() else {}

    def excluded(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.opt.exclude)

    def skip(self, name: str, kind: str, old: str, why: str) -> None:
        self.report.skipped.append(ConvertSite(name, kind, old, old, "skipped", why))

    def done(self, name: str, kind: str, old: str, new: str, placement: str, note: str = "") -> None:
        self.report.sites.append(ConvertSite(name, kind, old, new, placement, note))

    def check(self, name: str, before: nn.Module | None, after: nn.Module) -> None:
        if before is not None and id(before) in self.observed:
            self.checks.append((name, [out for _, out in self.observed[id(before)]], after))

    def blurpool(self, nd: int, channels: int | None, strides: tuple[int, ...], blur_axes: tuple[int, ...]) -> nn.Module:
        return _L.BLURPOOLS[nd](
            channels, _L.axis_filter(self.opt.filter_size, blur_axes), strides, self.opt.padding_mode, **self.factory
        )


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else prefix or name


# --------------------------------------------------------------------------- tracing


class _DeepTracer(fx.Tracer):
    """Traces through containers; stops at pools, convs, norms, activations and antialias layers."""

    _LEAVES = (
        *_L.AA_LEAVES, *_L.MAXPOOLS, *_L.AVGPOOLS, *_L.CONVS, *_L.NORM_MODULES, *_L.ACT_MODULES,
    )

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, self._LEAVES) or super().is_leaf_module(m, module_qualified_name)


class _ShallowTracer(fx.Tracer):
    """Traces only the root's own forward: every submodule is a leaf."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return True


def _owner_key(node: fx.Node) -> str:
    """nn_module_stack key of the module whose forward made ``node`` ("" for the traced root)."""
    stack = list(node.meta.get("nn_module_stack", {}).keys())
    if node.op == "call_module" and stack:
        stack = stack[:-1]  # the leaf's own entry
    return stack[-1] if stack else ""


def _rel_target(node: fx.Node, owner_path: str) -> Any:
    if node.op == "call_module" and owner_path:
        return node.target[len(owner_path) + 1 :]
    return node.target


@dataclass
class _Locator:
    op: str
    target: Any
    index: int


def _locate(graph: fx.Graph, node: fx.Node, owner_key: str) -> _Locator:
    owner_path = owner_key.split("@")[0]
    rel = _rel_target(node, owner_path)
    index = 0
    for other in graph.nodes:
        if other is node:
            break
        if other.op == node.op and _owner_key(other) == owner_key and _rel_target(other, owner_path) == rel:
            index += 1
    return _Locator(node.op, rel, index)


def _hint(loc: _Locator) -> str:
    return loc.target if isinstance(loc.target, str) else getattr(loc.target, "__name__", "op")


def _find(graph: fx.Graph, loc: _Locator) -> fx.Node | None:
    seen = 0
    for node in graph.nodes:
        if node.op == loc.op and node.target == loc.target:
            if seen == loc.index:
                return node
            seen += 1
    return None


# --------------------------------------------------------------------------- descriptions


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
        return _join(prefix, node.target)
    if node.op == "call_method":
        return f".{node.target}()"
    return f"{getattr(node.target, '__name__', str(node.target))}()"


# --------------------------------------------------------------------------- pools


def _pool_params(mod: nn.Module, nd: int, is_max: bool) -> tuple:
    k = _L.ntuple(mod.kernel_size, nd)
    s = _L.ntuple(mod.stride if mod.stride is not None else mod.kernel_size, nd)
    p = _L.ntuple(mod.padding, nd)
    d = _L.ntuple(mod.dilation, nd) if is_max else (1,) * nd
    return k, s, p, d, bool(mod.ceil_mode)


def _pool_fits(ctx: _Ctx, is_max: bool, params: tuple, observed: list) -> tuple[bool, str]:
    """Whether the blur version has the pool's output size; a note when it holds only for the example."""
    k, s, p, d, ceil_mode = params
    if is_max and ctx.opt.padding_mode != "circular":
        return True, ""  # MaxBlurPool reproduces max-pool's size arithmetic exactly
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


def _new_pool(ctx: _Ctx, nd: int, is_max: bool, params: tuple, channels: int | None) -> nn.Module:
    k, s, p, d, ceil_mode = params
    if is_max:
        return _L.MAXBLURPOOLS[nd](
            k, s, p, d, ceil_mode, channels=channels,
            filter_size=_L.axis_filter(ctx.opt.filter_size, s), padding_mode=ctx.opt.padding_mode, **ctx.factory,
        )
    return ctx.blurpool(nd, channels, s, s)


def _channels(ctx: _Ctx, mod: nn.Module) -> int | None:
    shapes = {inp[1] for inp, _ in ctx.observed.get(id(mod), []) if len(inp) > 1}
    return shapes.pop() if len(shapes) == 1 else None


def _pool_module(ctx: _Ctx, mod: nn.Module, name: str) -> nn.Module | None:
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
    fits, note = _pool_fits(ctx, is_max, params, ctx.observed.get(id(mod), []))
    if not fits:
        ctx.skip(name, kind, old, note)
        return None
    new = _new_pool(ctx, nd, is_max, params, channels)
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
    old = f"{node.target.__name__}({', '.join(f'{k}={v}' for k, v in args.items() if k != 'input')})"
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
    params = (k, s, _L.ntuple(args.get("padding", 0), nd), _L.ntuple(args.get("dilation", 1), nd) if is_max else (1,) * nd,
              bool(args.get("ceil_mode", False)))
    fits, note = _pool_fits(ctx, is_max, params, [])
    if not fits:
        ctx.skip(name, kind, old, note)
        return None
    new = _new_pool(ctx, nd, is_max, params, None)
    ctx.done(name, kind, old, f"{type(new).__name__}(k={_t(k)}, s={_t(s)}, p={_t(params[2])})" if is_max
             else f"{type(new).__name__}(s={_t(s)})", "drop-in")
    return new


# --------------------------------------------------------------------------- convs


def _conv_nd(mod: nn.Module) -> int | None:
    for cls, nd in _L.CONVS.items():
        if isinstance(mod, cls):
            return nd
    return None


def _conv_gate(ctx: _Ctx, mod: nn.Module, name: str) -> bool:
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
    return True


def _blur_first(ctx: _Ctx, mod: nn.Module, name: str, note: str = "") -> bool:
    """Module-level blur-first: the conv becomes its ``PreBlurConvNd`` (same object, same keys)."""
    nd = _conv_nd(mod)
    old = _desc(mod)
    if type(mod) not in _L.CONVS:
        return False
    stride = tuple(mod.stride)
    pointwise = all(v == 1 for v in mod.kernel_size) and (mod.padding == "valid" or not any(mod.padding))
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
        return isinstance(modules.get(node.target), _L.NORM_MODULES)
    return node.op == "call_function" and node.target in _L.NORM_FUNCTIONS


def _is_act(node: fx.Node, src: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if not node.args or node.args[0] is not src:
        return False
    if node.op == "call_module":
        return isinstance(modules.get(node.target), _L.ACT_MODULES)
    if node.op == "call_method":
        return node.target in _L.ACT_METHODS
    return node.op == "call_function" and node.target in _L.ACT_FUNCTIONS


def _follow(node: fx.Node, modules: dict[str, nn.Module]) -> tuple[list[fx.Node], fx.Node] | None:
    """The ``[norm...] -> activation`` chain the conv output flows through alone, or None."""
    chain: list[fx.Node] = []
    cur = node
    while len(cur.users) == 1:
        nxt = next(iter(cur.users))
        if _is_act(nxt, cur, modules):
            return chain, nxt
        if not _is_norm(nxt, cur, modules):
            return None
        chain.append(nxt)
        cur = nxt
    return None


def _stateless(mod: nn.Module) -> bool:
    return not mod.state_dict()


# --------------------------------------------------------------------------- graph rewrite of an owner


@dataclass
class _Edit:
    how: str  # "after" | "before" | "replace"
    loc: _Locator
    module: nn.Module
    hint: str


def _unique(names: set[str], hint: str) -> str:
    base = "".join(c if c.isalnum() or c == "_" else "_" for c in hint) or "aa"
    name, i = base, 1
    while name in names:
        name, i = f"{base}_{i}", i + 1
    names.add(name)
    return name


def _rewrite_owner(owner: nn.Module, edits: list[_Edit]) -> tuple[fx.GraphModule, dict[int, str]] | None:
    """Trace ``owner``'s own forward, apply ``edits`` and return the GraphModule (None if impossible)."""
    try:
        graph = _ShallowTracer().trace(owner)
    except Exception:  # noqa: BLE001 - any failure means: do it another way (the caller reports it)
        return None
    names = set(owner._modules) | set(owner._parameters) | set(owner._buffers) | set(vars(owner))
    added: dict[str, nn.Module] = {}
    where: dict[int, str] = {}
    nodes = [_find(graph, e.loc) for e in edits]
    if any(n is None for n in nodes):
        return None
    for edit, node in zip(edits, nodes):
        name = _unique(names, edit.hint)
        added[name] = edit.module
        where[id(edit.module)] = name
        if edit.how == "after":
            with graph.inserting_after(node):
                new = graph.call_module(name, (node,))
            node.replace_all_uses_with(new, delete_user_cb=lambda user, new=new: user is not new)
        elif edit.how == "before":
            with graph.inserting_before(node):
                new = graph.call_module(name, (node.args[0],))
            node.args = (new, *node.args[1:])
        else:  # replace a functional pool
            with graph.inserting_before(node):
                new = graph.call_module(name, (node.args[0] if node.args else node.kwargs["input"],))
            node.replace_all_uses_with(new)
            graph.erase_node(node)
    graph.lint()
    root: dict[str, Any] = {}
    for node in graph.nodes:
        if node.op in ("call_module", "get_attr") and node.target not in added:
            root[node.target] = owner.get_submodule(node.target) if node.op == "call_module" else _getattr(owner, node.target)
    root.update(added)
    gm = fx.GraphModule(root, graph, class_name=type(owner).__name__)
    # The same children, parameters and buffers as the owner, in its order, so that state_dict keys,
    # their order and unused children all survive; then the added blurs.
    gm._modules = OrderedDict(owner._modules)
    gm._modules.update(added)
    gm._parameters = OrderedDict(owner._parameters)
    gm._buffers = OrderedDict(owner._buffers)
    gm._non_persistent_buffers_set = set(owner._non_persistent_buffers_set)
    for key, value in vars(owner).items():
        if not key.startswith("_") and key not in vars(gm) and key != "training":
            setattr(gm, key, value)
    gm.train(owner.training)
    return gm, where


def _getattr(module: nn.Module, target: str) -> Any:
    obj: Any = module
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


# --------------------------------------------------------------------------- traced conversion


def _convert_traced(ctx: _Ctx, unit: nn.Module, graph: fx.Graph, prefix: str) -> nn.Module:
    modules = dict(unit.named_modules(remove_duplicate=False))
    calls = Counter(n.target for n in graph.nodes if n.op == "call_module")
    edits: dict[str, list[_Edit]] = defaultdict(list)
    pending: list[tuple[int, str, str, str, str]] = []  # (position, name, old, new, placement) awaiting a rewrite

    def owner_of(node: fx.Node) -> str | None:
        key = _owner_key(node)
        return None if "@" in key else key  # an owner called twice cannot be rewritten per call

    for node in list(graph.nodes):
        if node.op == "call_function" and (node.target in _L.FUNCTIONAL_MAXPOOLS or node.target in _L.FUNCTIONAL_AVGPOOLS):
            key = owner_of(node)
            name = _join(prefix, _join(_owner_key(node).split("@")[0], node.name))
            if key is None:
                ctx.skip(name, "pool", str(node.target), "functional pool in a module called more than once")
                continue
            new = _functional_pool(ctx, node, name)
            if new is not None:
                loc = _locate(graph, node, key)
                edits[key].append(_Edit("replace", loc, new, f"{_hint(loc)}_aa"))
            continue
        if node.op != "call_module":
            continue
        mod = modules.get(node.target)
        if mod is None or id(mod) in ctx.handled:
            continue
        name = _join(prefix, node.target)
        if isinstance(mod, (*_L.MAXPOOLS, *_L.AVGPOOLS)):
            ctx.handled.add(id(mod))
            new = _pool_module(ctx, mod, name)
            if new is not None:
                _set(unit, node.target, new, modules)
            continue
        nd = _conv_nd(mod)
        if nd is None or all(v == 1 for v in mod.stride):
            continue
        ctx.handled.add(id(mod))
        if not _conv_gate(ctx, mod, name):
            continue
        src = node.args[0] if node.args else None
        if isinstance(src, fx.Node) and src.op == "call_module" and isinstance(modules.get(src.target), _L._layers._BlurPoolNd) \
                and all(v == 1 for v in modules[src.target].stride):
            ctx.skip(name, "conv", _desc(mod), "already anti-aliased (a stride-1 blur feeds it)")
            continue
        pattern = _follow(node, modules) if calls[node.target] == 1 else None
        if pattern is not None:
            chain, act = pattern
            stride = tuple(mod.stride)
            blur = ctx.blurpool(nd, mod.out_channels, stride, stride)
            old = _desc(mod)
            path = " -> ".join(_node_desc(n, prefix) for n in [*chain, act])
            new_desc = f"{_desc(mod, stride=(1,) * nd)} -> {path} -> BlurPool{nd}d(s={_t(stride)})"
            act_mod = modules.get(act.target) if act.op == "call_module" else None
            if act_mod is not None and calls[act.target] == 1 and _stateless(act_mod) and id(act_mod) not in ctx.shared:
                mod.stride = (1,) * nd
                _set(unit, act.target, nn.Sequential(act_mod, blur), modules)
                ctx.done(name, "conv", old, new_desc, "after-activation")
                ctx.check(name, mod, blur)
                continue
            key = owner_of(act)
            if key is not None:
                mod.stride = (1,) * nd
                loc = _locate(graph, act, key)
                edits[key].append(_Edit("after", loc, blur, f"{_hint(loc)}_blur"))
                pending.append((len(ctx.report.sites), name, old, new_desc, "after-activation"))
                ctx.check(name, mod, blur)
                continue
            if _blur_first(ctx, mod, name, "paper placement impossible: its activation runs in a module called more than once"):
                continue
            ctx.skip(name, "conv", _desc(mod), "activation in a module called more than once, and not a plain nn.ConvNd")
            continue
        if _blur_first(ctx, mod, name):
            continue
        key = owner_of(node)  # a conv subclass: insert the blur before it in its caller's graph
        if key is None:
            ctx.skip(name, "conv", _desc(mod), "a custom conv class in a module called more than once")
            continue
        stride = tuple(mod.stride)
        loc = _locate(graph, node, key)
        edits[key].append(_Edit("before", loc, ctx.blurpool(nd, mod.in_channels, (1,) * nd, stride), f"{_hint(loc)}_blur"))
        pending.append((len(ctx.report.sites), name, _desc(mod), f"BlurPool{nd}d(s=1) -> {_desc(mod)}", "before-conv"))

    for position, name, old, new_desc, placement in reversed(pending):
        note = "blur inserted in the caller's forward (torch.fx.GraphModule)"
        ctx.report.sites.insert(position, ConvertSite(name, "conv", old, new_desc, placement, note))

    # Deepest owners first, so an outer owner's GraphModule holds the already rewritten inner one.
    for key in sorted(edits, key=lambda k: -len(k.split("@")[0].split("."))) :
        path = key.split("@")[0]
        owner = unit.get_submodule(path) if path else unit
        result = _rewrite_owner(owner, edits[key])
        if result is None:
            raise RuntimeError(
                f"{_WHERE}: could not rewrite the forward of `{_join(prefix, path) or '<root>'}` "
                f"({type(owner).__name__}) although the whole model traced; please report this."
            )
        gm, _ = result
        ctx.report.rewritten.append(f"{_join(prefix, path) or '<root>'} ({type(owner).__name__})")
        if not path:
            unit = gm
        else:
            _set(unit, path, gm, modules)
    return unit


def _set(root: nn.Module, target: str, new: nn.Module, modules: dict[str, nn.Module] | None = None) -> None:
    parent_path, _, leaf = target.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, leaf, new)
    if modules is not None:
        modules[target] = new


# --------------------------------------------------------------------------- module-level fallback


def _convert_modules(ctx: _Ctx, module: nn.Module, prefix: str) -> None:
    children = list(module.named_children())
    for i, (name, child) in enumerate(children):
        full = _join(prefix, name)
        if id(child) in ctx.handled:
            continue
        if isinstance(child, (*_L.MAXPOOLS, *_L.AVGPOOLS)):
            ctx.handled.add(id(child))
            new = _pool_module(ctx, child, full)
            if new is not None:
                setattr(module, name, new)
        elif _conv_nd(child) is not None and any(v > 1 for v in child.stride):
            ctx.handled.add(id(child))
            if _conv_gate(ctx, child, full):
                _conv_fallback(ctx, module, child, full, children[i + 1 :])
        elif isinstance(child, (*_L.AA_LEAVES, *_L.NORM_MODULES, *_L.ACT_MODULES)):
            continue
        else:
            new = _convert_unit(ctx, child, full)
            if new is not child:
                setattr(module, name, new)


def _conv_fallback(ctx: _Ctx, parent: nn.Module, conv: nn.Module, name: str, following: list) -> None:
    nd = _conv_nd(conv)
    if isinstance(parent, nn.Sequential) and type(parent).forward is nn.Sequential.forward:
        for act_name, nxt in following:
            if isinstance(nxt, _L.ACT_MODULES):
                if _stateless(nxt) and id(nxt) not in ctx.shared:
                    stride = tuple(conv.stride)
                    old = _desc(conv)
                    blur = ctx.blurpool(nd, conv.out_channels, stride, stride)
                    conv.stride = (1,) * nd
                    setattr(parent, act_name, nn.Sequential(nxt, blur))
                    ctx.done(name, "conv", old, f"{_desc(conv)} -> ... -> {type(nxt).__name__} -> BlurPool{nd}d(s={_t(stride)})",
                             "after-activation", "module-level fallback: order taken from the nn.Sequential")
                    ctx.check(name, conv, blur)
                    return
                break
            if not isinstance(nxt, _L.NORM_MODULES):
                break
    if not _blur_first(ctx, conv, name, "module-level fallback (no graph): blur-first"):
        ctx.skip(name, "conv", _desc(conv), "module-level fallback cannot wrap a custom conv class without changing its keys")


def _convert_unit(ctx: _Ctx, unit: nn.Module, prefix: str) -> nn.Module:
    """Convert ``unit`` (named ``prefix`` in the model); returns it or its replacement."""
    label = prefix or "<root>"
    if isinstance(unit, (*_L.MAXPOOLS, *_L.AVGPOOLS)):
        ctx.handled.add(id(unit))
        new = _pool_module(ctx, unit, label)
        return unit if new is None else new
    if _conv_nd(unit) is not None:
        ctx.handled.add(id(unit))
        if any(v > 1 for v in unit.stride) and _conv_gate(ctx, unit, label) and not _blur_first(ctx, unit, label):
            ctx.skip(label, "conv", _desc(unit), "a custom conv class on its own: nothing to attach the blur to")
        return unit
    if isinstance(unit, (*_L.AA_LEAVES, *_L.NORM_MODULES, *_L.ACT_MODULES)):
        return unit
    try:
        graph = _DeepTracer().trace(unit)
    except Exception as exc:  # noqa: BLE001 - any tracing failure selects the fallback, and is reported
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        ctx.report.fallbacks.append(
            f"{label} ({type(unit).__name__}): torch.fx could not trace it ({type(exc).__name__}: {reason[:120]}); "
            "its children were converted one by one"
        )
        _convert_modules(ctx, unit, prefix)
        return unit
    ctx.report.traced.append(label)
    return _convert_traced(ctx, unit, graph, prefix)


# --------------------------------------------------------------------------- measuring


def _run(model: nn.Module, args: tuple) -> tuple[Any, int]:
    """Run once in eval mode without gradients (no BatchNorm statistics change); output and FLOPs."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = model(*args)
    finally:
        for m, mode in modes:
            m.training = mode
    return out, counter.get_total_flops()


def _record(modules: Iterable[nn.Module], store: dict[int, list]) -> list:
    def hook(mod: nn.Module, inputs: tuple, output: Any) -> None:
        if inputs and isinstance(inputs[0], Tensor) and isinstance(output, Tensor):
            store.setdefault(id(mod), []).append((tuple(inputs[0].shape), tuple(output.shape)))

    return [m.register_forward_hook(hook) for m in modules]


def _shapes(out: Any) -> list[tuple[int, ...]]:
    return [tuple(t.shape) for t in tree_leaves(out) if isinstance(t, Tensor)]


# --------------------------------------------------------------------------- public


def convert(
    model: nn.Module,
    *,
    filter_size: FilterSpec | Sequence[FilterSpec] = 4,
    padding_mode: str = "reflect",
    replace: Iterable[str] | str = KINDS,
    min_channels: int = 1,
    exclude: Iterable[str] | str = (),
    example_input: Tensor | tuple | None = None,
    input_size: Sequence[int] | None = None,
    inplace: bool = False,
) -> tuple[nn.Module, ConvertReport]:
    """Anti-alias every strided pool and conv of ``model`` (Zhang, ICML 2019), keeping its weights.

    See the module docstring for the rules and placements. Only strides change and non-persistent
    blur buffers are added: ``state_dict()`` keys and values are those of ``model``. Every replaced
    site keeps its output shape (checked on the example input when one is given). Converting a
    converted model changes nothing.

    Args:
        model: Any ``nn.Module``.
        filter_size: Blur filter (binomial taps, a name such as ``"tri4"``, or a custom 1-D tensor).
        padding_mode: Padding of the blurs (``"reflect"``, ``"replicate"``, ``"zeros"``, ``"circular"``).
        replace: Which kinds to convert, a subset of ``("maxpool", "avgpool", "conv")``.
        min_channels: Leave convs (and pools, where the example input shows their channels) with
            fewer input channels alone; ``min_channels=4`` keeps an RGB stem strided.
        exclude: Module names (``fnmatch`` patterns, e.g. ``"layer4.*"``) to leave alone.
        example_input: A tensor (or tuple of forward arguments) to check shapes and count FLOPs on.
        input_size: Shape of a random example input, instead of ``example_input``.
        inplace: Modify ``model`` itself instead of a deep copy. Always use the returned model: a
            model whose own forward had to be rewritten comes back as a ``torch.fx.GraphModule``.

    Returns:
        ``(converted, report)``; ``print(report)`` lists each site and the costs.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``, or an option has the wrong type.
        ValueError: an unknown kind or padding mode, a bad filter, ``min_channels < 1``, or an
            example input the model cannot run.
        RuntimeError: a converted site changed its output shape (a bug: please report it).

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
        >>> new, report = convert(net, input_size=(1, 3, 32, 32))
        >>> sorted(report.placements().items())
        [('0', 'after-activation'), ('3', 'drop-in')]
        >>> new(torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 8, 8, 8])
    """
    options, example = _validate(model, filter_size, padding_mode, replace, min_channels, exclude,
                                 example_input, input_size, inplace)
    target = model if inplace else copy.deepcopy(model)
    report = ConvertReport(filter_size=filter_size, padding_mode=padding_mode)
    ctx = _Ctx(options, report, target)
    report.params_before = sum(p.numel() for p in target.parameters())
    out_before = None
    if example is not None:
        report.input_size = tuple(example[0].shape) if isinstance(example[0], Tensor) else None
        watched = [m for m in target.modules() if isinstance(m, (*_L.MAXPOOLS, *_L.AVGPOOLS, *_L.CONVS))]
        handles = _record(watched, ctx.observed)
        try:
            out_before, report.flops_before = _run(target, example)
        except Exception as exc:  # noqa: BLE001 - re-raised with the argument to blame
            raise ValueError(
                f"{_WHERE}: the model failed on the example input of shape {report.input_size} "
                f"({type(exc).__name__}: {exc}). Pass an `example_input`/`input_size` the model accepts."
            ) from exc
        finally:
            for h in handles:
                h.remove()

    converted = _convert_unit(ctx, target, "")
    report.params_after = sum(p.numel() for p in converted.parameters())

    if example is not None:
        after: dict[int, list] = {}
        handles = _record([m for _, _, m in ctx.checks], after)
        try:
            out_after, report.flops_after = _run(converted, example)
        finally:
            for h in handles:
                h.remove()
        for name, before_shapes, module in ctx.checks:
            got = [out for _, out in after.get(id(module), [])]
            if got != before_shapes:
                raise RuntimeError(
                    f"{_WHERE}: site `{name}` changed its output shape from {before_shapes} to {got}; "
                    "this is a bug, please report it (exclude the site with `exclude=` meanwhile)."
                )
        if _shapes(out_after) != _shapes(out_before):
            raise RuntimeError(
                f"{_WHERE}: the output shape changed from {_shapes(out_before)} to {_shapes(out_after)}; "
                "this is a bug, please report it."
            )
    return converted, report


def _validate(model, filter_size, padding_mode, replace, min_channels, exclude, example_input, input_size, inplace):
    if not isinstance(model, nn.Module):
        raise TypeError(f"{_WHERE}: `model` must be a torch.nn.Module, got {type(model).__name__}.")
    if isinstance(filter_size, (tuple, list)):
        for spec in filter_size:
            _filters.filter_row(spec, where=_WHERE)
    else:
        _filters.filter_row(filter_size, where=_WHERE)
    _F._check_padding_mode(padding_mode, _WHERE)
    kinds = (replace,) if isinstance(replace, str) else replace
    if not isinstance(kinds, Iterable):
        raise TypeError(f"{_WHERE}: `replace` must be an iterable of kinds from {KINDS}, got {replace!r}.")
    kinds = tuple(kinds)
    for kind in kinds:
        if kind not in KINDS:
            close = difflib.get_close_matches(str(kind), KINDS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{_WHERE}: `replace` must name kinds from {KINDS}, got {kind!r}.{hint}")
    if isinstance(min_channels, bool) or not isinstance(min_channels, int):
        raise TypeError(f"{_WHERE}: `min_channels` must be an int, got {min_channels!r}.")
    if min_channels < 1:
        raise ValueError(f"{_WHERE}: `min_channels` must be >= 1, got {min_channels!r}.")
    patterns = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    if not all(isinstance(p, str) for p in patterns):
        raise TypeError(f"{_WHERE}: `exclude` must be module names or fnmatch patterns (str), got {exclude!r}.")
    if not isinstance(inplace, bool):
        raise TypeError(f"{_WHERE}: `inplace` must be a bool, got {inplace!r}.")
    if example_input is not None and input_size is not None:
        raise ValueError(f"{_WHERE}: pass `example_input` or `input_size`, not both.")
    example = None
    if input_size is not None:
        if (
            not isinstance(input_size, (tuple, list, torch.Size))
            or not input_size
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in input_size)
        ):
            raise ValueError(f"{_WHERE}: `input_size` must be a tuple of positive ints such as (1, 3, 224, 224), got {input_size!r}.")
        ref = next(iter(model.parameters()), None)
        factory = {"device": ref.device, "dtype": ref.dtype} if ref is not None and ref.is_floating_point() else {}
        gen = torch.Generator().manual_seed(0)
        example = (torch.randn(tuple(input_size), generator=gen).to(**factory),)
    elif example_input is not None:
        example = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
        if not example or not isinstance(example[0], Tensor):
            raise TypeError(f"{_WHERE}: `example_input` must be a tensor or a tuple of forward arguments, got {example_input!r}.")
    options = _Options(filter_size, padding_mode, frozenset(kinds), min_channels, patterns)
    return options, example
