"""Anti-alias an arbitrary network: ``convert(model) -> (model, report)`` (Zhang, ICML 2019).

Every strided downsampling site of ``model`` is given a low-pass filter while every existing weight
is kept:

- ``MaxPoolNd`` with stride > 1 -> ``MaxBlurPoolNd`` with the same window, padding, dilation and
  ``ceil_mode`` (placement ``"drop-in"``);
- ``AvgPoolNd`` with stride > 1 -> ``BlurPoolNd`` at the pool's stride where its output size is
  that of the avg-pool for every input size, else :class:`AvgBlurPool2d` (and 1-D/3-D): the blur on
  the avg-pool's windows with exactly its output size, so no example input is needed (``"drop-in"``);
- a strided ``ConvNd`` followed in the ``torch.fx`` graph by optional norm layers and an activation
  -> the conv at stride 1, the same norm and activation, then ``BlurPoolNd`` at the conv's stride:
  the paper's placement, blur after the nonlinearity (``"after-activation"``);
- a strided 1x1 conv without padding and with no such pattern (a shortcut) -> ``BlurPoolNd`` at its
  stride, then the conv at stride 1 (``"blurpool-then-1x1"``; both are linear, so this equals
  blurring after the conv, at ``1/s**2`` of the conv cost);
- any other strided conv -> blur at stride 1, then the conv at its stride (``"before-conv"``, the
  cheap variant; a deviation from the paper, named as such in the report).

The activation may be a torch module, a fused norm + activation layer (timm's ``BatchNormAct2d`` and
the like, found by behaviour; the blur goes after its ``act`` child), a module registered with
:func:`~antialias.convert.register_activation`, a function or method (``F.silu``, ``x.relu()``) or a gated
form (``x * sigmoid(x)``); see ``_activations``. A fixed padding feeding the strided conv (TF-"same"
``nn.ZeroPad2d((0, 1, 0, 1))`` or ``F.pad``) is recomputed for stride 1 ("same": total ``k - 1``,
floor/ceil) where the output size provably stays, or stays for the example input; otherwise the conv
keeps its stride and gets the blur first, with the reason in the report. Blur filters are
stride-aware by default (``filter_size="auto"``, see ``_filters``): tri4 at stride 2, ``3s - 2`` taps at
stride ``s``.

Keys: the conv keeps its object and its ``weight``/``bias``; a blur is added either as the child
``blur`` of the conv (which becomes :class:`PreBlurConv2d` and its 1-D/3-D siblings), as ``nn.Sequential(act, blur)``
in place of a parameterless activation module called once, or, where the activation is a function
or a module called several times (torchvision's ``BasicBlock`` reuses ``self.relu``), by rewriting
the forward of the module that calls it into a ``torch.fx.GraphModule`` that holds the same children.
Blur filters are non-persistent buffers, so ``state_dict()`` keys and values are unchanged.

``method=`` other than ``"blurpool"`` puts APS, LPS, the ideal low-pass or the adaptive filter at the
same sites (rules, placements and residual phase pairing in :mod:`antialias.convert._methods`);
``upsample=True`` also converts ``nn.Upsample(mode="nearest")`` and strided ``nn.ConvTranspose2d``.

A module ``torch.fx`` cannot trace (data-dependent control flow) is handled child by child: each
child is traced on its own, and the strided convs and pools called directly by the untraceable
forward get module-level replacements (paper placement only inside an ``nn.Sequential``, whose
order is its execution order; blur-first otherwise). The report lists every such fallback.

Against the published anti-aliased ImageNet models (``antialias.models.get_model(arch, filter_size=k)``,
the reference's layout), ``convert(baseline, min_channels=4)`` computes the same function given the
same weights for VGG, DenseNet and MobileNetV2 (``min_channels=4`` keeps the RGB stem strided, as
the reference does), and for ResNet everywhere but the stem max-pool: convert keeps
``MaxPool2d(3, 2, 1)``'s window as ``MaxBlurPool2d(3, 2, 1)`` (a dense 3x3 max), where the reference
uses ``MaxPool2d(2, 1)`` then BlurPool. DenseNet's ``AvgPool2d(2)`` transitions floor odd sizes
where BlurPool rounds up; they become :class:`AvgBlurPool2d`, equal to the reference's BlurPool
wherever the sizes agree (even sizes) and flooring like the avg-pool elsewhere.
``tests/convert/test_convert.py`` checks all of this.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.fx as fx
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import flop_registry

from antialias import downsample as _D
from antialias import functional as _F
from antialias.convert import _activations as _A
from antialias.convert import _filters as _cf
from antialias.convert import _layers as _L
from antialias.convert import _methods as _M
from antialias.convert._graph import _DeepTracer, _Edit, _hint, _locate, _owner_key, _path, _rewrite_owner, _set
from antialias.convert._report import ConvertReport, ConvertSite
from antialias.convert._sites import (
    POOL_TYPES,
    _blur_first,
    _conv_gate,
    _conv_nd,
    _Ctx,
    _desc,
    _follow,
    _functional_pool,
    _into_fused,
    _is_conv,
    _join,
    _node_desc,
    _Options,
    _pad_plan,
    _PadPlan,
    _pool_module,
    _stateless,
    _t,
    _upsample_module,
)
from antialias.filters import FilterSpec

__all__ = ["KINDS", "METHODS", "PLACEMENTS", "convert"]

#: What ``replace=`` may name.
KINDS = ("maxpool", "avgpool", "conv")

#: Placements a report can name: ``drop-in`` (pools), ``after-activation`` (the paper's),
#: ``blurpool-then-1x1`` (shortcuts), ``before-conv`` (blur-first), ``skipped``; with another
#: ``method``: ``sampler-then-1x1`` (shortcuts) and ``after-conv`` (conv at stride 1, then the sampler);
#: with ``upsample=True``: ``after-upsample`` (a transposed conv, then the blur; an ``nn.Upsample`` is
#: ``drop-in``).
PLACEMENTS = (
    "drop-in", "after-activation", "blurpool-then-1x1", "before-conv", "sampler-then-1x1", "after-conv",
    "after-upsample", "skipped",
)

#: What ``method=`` may name (``antialias.downsample.METHODS``).
METHODS = _D.METHODS

_WHERE = "`convert`"  # starts every error message, as STYLE.md asks


# --------------------------------------------------------------------------- traced conversion


def _convert_traced(ctx: _Ctx, unit: nn.Module, graph: fx.Graph, prefix: str) -> nn.Module:
    modules = dict(unit.named_modules(remove_duplicate=False))
    calls = Counter(n.target for n in graph.nodes if n.op == "call_module")
    edits: dict[str, list[_Edit]] = defaultdict(list)
    pending: list[tuple[int, str, str, str, str]] = []  # (position, name, old, new, placement) awaiting a rewrite
    pad_notes: dict[str, str] = {}  # site name -> how its fixed padding was recomputed

    def owner_of(node: fx.Node) -> str | None:
        key = _owner_key(node)
        return None if "@" in key else key  # an owner called twice cannot be rewritten per call

    for node in list(graph.nodes):
        if ctx.opt.method != "blurpool" and _M.slice_stride(node) is not None:
            _slice_site(ctx, node, prefix, graph, edits, owner_of(node))
            continue
        if node.op == "call_function" and (
            node.target in _L.FUNCTIONAL_MAXPOOLS or node.target in _L.FUNCTIONAL_AVGPOOLS
        ):
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
        mod = modules.get(_path(node))
        if mod is None or id(mod) in ctx.handled:
            continue
        name = _join(prefix, _path(node))
        if ctx.opt.upsample and _M.upsample_site(mod) is not None:
            ctx.handled.add(id(mod))
            new = _upsample_module(ctx, mod, name, calls[node.target])
            if new is not None and new is not mod:
                _set(unit, _path(node), new, modules)
            continue
        if isinstance(mod, POOL_TYPES):
            ctx.handled.add(id(mod))
            new = _pool_module(ctx, mod, name)
            if new is not None:
                _set(unit, _path(node), new, modules)
            continue
        nd = _conv_nd(mod)
        if nd is None or all(v == 1 for v in mod.stride):
            continue
        ctx.handled.add(id(mod))
        if not _conv_gate(ctx, mod, name):
            continue
        src = node.args[0] if node.args else None
        if (
            isinstance(src, fx.Node)
            and src.op == "call_module"
            and isinstance(modules.get(_path(src)), _L._layers._BlurPoolNd)
            and all(v == 1 for v in modules[_path(src)].stride)
        ):
            ctx.skip(name, "conv", _desc(mod), "already anti-aliased (a stride-1 blur feeds it)")
            continue
        pattern = _follow(node, modules) if calls[node.target] == 1 else None
        # The conv goes to stride 1 in the paper's placement, and with another method ("after-conv") unless 1x1.
        after_conv = ctx.opt.method != "blurpool" and type(mod) in _L.CONVS and any(k > 1 for k in mod.kernel_size)
        pad = _pad_plan(ctx, node, modules, calls, mod) if pattern is not None or after_conv else None
        if isinstance(pad, _PadPlan) and pad.module is None and owner_of(pad.node) is None:
            pad = "fixed padding (F.pad) before it runs in a module called more than once: it cannot be recomputed"
        if isinstance(pad, str):  # a padding computed for the stride that cannot be recomputed: keep the stride
            if ctx.opt.method == "blurpool" and _blur_first(ctx, mod, name, pad):
                continue
            ctx.skip(name, "conv", _desc(mod), pad)
            continue

        def stride_one(mod: _ConvNd = mod, nd: int = nd, pad: _PadPlan | None = pad, name: str = name) -> str:
            """The conv at stride 1, its fixed padding recomputed; the report's note for the padding."""
            mod.stride = (1,) * nd
            if pad is None:
                return ""
            new_pad = pad.apply()
            if new_pad is not None:  # an F.pad call: a pad module takes its place in the owner's forward
                key = owner_of(pad.node)
                if key is not None:  # checked above
                    loc = _locate(graph, pad.node, key)
                    edits[key].append(_Edit("replace", loc, new_pad, f"{_hint(loc)}_same"))
            pad_notes[name] = pad.note
            return pad.note

        if pattern is not None:
            chain, act = pattern
            stride = tuple(mod.stride)
            blur = ctx.blurpool(nd, mod.out_channels, stride, stride, name)
            old = _desc(mod)
            path = " -> ".join(_node_desc(n, prefix) for n in [*chain, act])
            new_desc = f"{_desc(mod, stride=(1,) * nd)} -> {path} -> {ctx.label(nd)}(s={_t(stride)})"
            act_mod = modules.get(_path(act)) if act.op == "call_module" else None
            fused_note = _into_fused(ctx, act_mod, blur) if act_mod is not None and calls[act.target] == 1 else None
            if fused_note is not None:
                note = stride_one()
                ctx.done(name, "conv", old, new_desc, "after-activation", "; ".join(filter(None, [fused_note, note])))
                ctx.check(name, mod, blur)
                continue
            if act_mod is not None and calls[act.target] == 1 and _stateless(act_mod) and id(act_mod) not in ctx.shared:
                note = stride_one()
                _set(unit, _path(act), nn.Sequential(act_mod, blur), modules)
                ctx.done(name, "conv", old, new_desc, "after-activation", note)
                ctx.check(name, mod, blur)
                continue
            key = owner_of(act)
            if key is not None:
                stride_one()
                loc = _locate(graph, act, key)
                edits[key].append(_Edit("after", loc, blur, f"{_hint(loc)}_blur"))
                pending.append((len(ctx.report.sites), name, old, new_desc, "after-activation"))
                ctx.check(name, mod, blur)
                continue
            if _blur_first(
                ctx, mod, name, "paper placement impossible: its activation runs in a module called more than once"
            ):
                continue
            ctx.skip(
                name, "conv", _desc(mod), "activation in a module called more than once, and not a plain nn.ConvNd"
            )
            continue
        if _blur_first(ctx, mod, name):
            if isinstance(pad, _PadPlan) and after_conv and all(v == 1 for v in mod.stride):
                note = stride_one()  # the method's layer follows the conv, now at stride 1: its padding too
                site = ctx.report.sites[-1]
                ctx.report.sites[-1] = dataclasses.replace(site, note="; ".join(filter(None, [site.note, note])))
            continue
        key = owner_of(node)  # a conv subclass: insert the blur before it in its caller's graph
        if ctx.opt.method != "blurpool":
            ctx.skip(name, "conv", _desc(mod), f"a custom conv class: method {ctx.opt.method!r} cannot wrap it")
            continue
        if key is None:
            ctx.skip(name, "conv", _desc(mod), "a custom conv class in a module called more than once")
            continue
        stride = tuple(mod.stride)
        loc = _locate(graph, node, key)
        edits[key].append(
            _Edit("before", loc, ctx.blurpool(nd, mod.in_channels, (1,) * nd, stride), f"{_hint(loc)}_blur")
        )
        pending.append((len(ctx.report.sites), name, _desc(mod), f"BlurPool{nd}d(s=1) -> {_desc(mod)}", "before-conv"))

    for position, name, old, new_desc, placement in reversed(pending):
        note = "blur inserted in the caller's forward (torch.fx.GraphModule)"
        if name in pad_notes:
            note = f"{note}; {pad_notes[name]}"
        ctx.report.sites.insert(position, ConvertSite(name, "conv", old, new_desc, placement, note))

    # Deepest owners first, so an outer owner's GraphModule holds the already rewritten inner one.
    for key in sorted(edits, key=lambda k: -len(k.split("@")[0].split("."))) :
        path = key.split("@")[0]
        owner = unit.get_submodule(path) if path else unit
        result = _rewrite_owner(owner, edits[key])
        if result is None:
            raise RuntimeError(
                f"{_WHERE}: could not rewrite the forward of `{_join(prefix, path) or '<root>'}` "
                f"({type(owner).__name__}) although the whole model traced; please report this, and leave its sites "
                f"alone meanwhile with exclude='{_join(prefix, path) or '*'}*'."
            )
        gm, _ = result
        ctx.report.rewritten.append(f"{_join(prefix, path) or '<root>'} ({type(owner).__name__})")
        if not path:
            unit = gm
        else:
            _set(unit, path, gm, modules)
    return unit


def _slice_site(
    ctx: _Ctx, node: fx.Node, prefix: str, graph: fx.Graph, edits: dict[str, list[_Edit]], key: str | None
) -> None:
    """``x[:, :, ::s, ::s]`` (plain subsampling, e.g. an option-A shortcut) -> the method's sampler.

    Only with ``method != "blurpool"`` (BlurPool's conversion leaves slicing alone, as it always did);
    with aps/lps it pairs like a strided 1x1 shortcut (see ``_methods.Linker.link``).
    """
    stride = _M.slice_stride(node)
    if stride is None:  # the caller checked; narrows the type
        return
    name = _join(prefix, _join(_owner_key(node).split("@")[0], node.name))
    old = f"x[:, :, ::{stride[0]}, ::{stride[1]}]"
    if key is None:
        ctx.skip(name, "subsample", old, "slicing in a module called more than once")
        return
    if ctx.excluded(name):
        ctx.skip(name, "subsample", old, "excluded by `exclude`")
        return
    if ctx.opt.method == "adaptive":
        ctx.skip(name, "subsample", old, "input channels unknown: the adaptive filter needs them")
        return
    new = ctx.sampler(None, stride, name, follower=True)
    if ctx.opt.method in _M.POLYPHASE:
        ctx.linker.follower(name, new)
    loc = _locate(graph, node, key)
    edits[key].append(_Edit("replace", loc, new, f"{_hint(loc)}_aa"))
    ctx.done(name, "subsample", old, f"{ctx.label(2)}(s={_t(stride)})", "drop-in",
             "strided slicing replaced in the caller's forward (torch.fx.GraphModule)")


# --------------------------------------------------------------------------- module-level fallback


def _convert_modules(ctx: _Ctx, module: nn.Module, prefix: str) -> None:
    children = list(module.named_children())
    for i, (name, child) in enumerate(children):
        full = _join(prefix, name)
        if id(child) in ctx.handled:
            continue
        if isinstance(child, POOL_TYPES):
            ctx.handled.add(id(child))
            new = _pool_module(ctx, child, full)
            if new is not None:
                setattr(module, name, new)
        elif ctx.opt.upsample and _M.upsample_site(child) is not None:
            ctx.handled.add(id(child))
            new = _upsample_module(ctx, child, full)
            if new is not None and new is not child:
                setattr(module, name, new)
        elif _is_conv(child) and any(v > 1 for v in child.stride):
            ctx.handled.add(id(child))
            if _conv_gate(ctx, child, full):
                _conv_fallback(ctx, module, child, full, children[i + 1 :])
        elif isinstance(child, (*_L.AA_LEAVES, *_L.NORM_MODULES, *_L.ACT_MODULES)) or _A.is_leaf(child) or (
            _L.foreign_antialiased(child)
        ):
            continue
        else:
            new = _convert_unit(ctx, child, full)
            if new is not child:
                setattr(module, name, new)


def _conv_fallback(ctx: _Ctx, parent: nn.Module, conv: _ConvNd, name: str, following: list) -> None:
    nd = len(conv.kernel_size)  # ConvNd stores one kernel size per spatial axis
    if isinstance(parent, nn.Sequential) and type(parent).forward is nn.Sequential.forward:
        for act_name, nxt in following:
            if _A.is_activation(nxt):
                stateless = _stateless(nxt) and id(nxt) not in ctx.shared
                if stateless or _A.fused_activation(nxt) is not None:
                    stride = tuple(conv.stride)
                    old = _desc(conv)
                    blur = ctx.blurpool(nd, conv.out_channels, stride, stride, name)
                    fused_note = None if stateless else _into_fused(ctx, nxt, blur)
                    if not stateless and fused_note is None:
                        break
                    conv.stride = (1,) * nd
                    if stateless:
                        setattr(parent, act_name, nn.Sequential(nxt, blur))
                    ctx.done(
                        name,
                        "conv",
                        old,
                        f"{_desc(conv)} -> ... -> {type(nxt).__name__} -> {ctx.label(nd)}(s={_t(stride)})",
                        "after-activation",
                        "module-level fallback: order taken from the nn.Sequential"
                        + (f"; {fused_note}" if fused_note else ""),
                    )
                    ctx.check(name, conv, blur)
                    return
                break
            if not isinstance(nxt, _L.NORM_MODULES):
                break
    if not _blur_first(ctx, conv, name, "module-level fallback (no graph): blur-first"):
        ctx.skip(
            name, "conv", _desc(conv), "module-level fallback cannot wrap a custom conv class without changing its keys"
        )


def _convert_unit(ctx: _Ctx, unit: nn.Module, prefix: str) -> nn.Module:
    """Convert ``unit`` (named ``prefix`` in the model); returns it or its replacement."""
    label = prefix or "<root>"
    if isinstance(unit, POOL_TYPES):
        ctx.handled.add(id(unit))
        new = _pool_module(ctx, unit, label)
        return unit if new is None else new
    if _is_conv(unit):
        ctx.handled.add(id(unit))
        if any(v > 1 for v in unit.stride) and _conv_gate(ctx, unit, label) and not _blur_first(ctx, unit, label):
            ctx.skip(label, "conv", _desc(unit), "a custom conv class on its own: nothing to attach the blur to")
        return unit
    if isinstance(unit, (*_L.AA_LEAVES, *_L.NORM_MODULES, *_L.ACT_MODULES)) or _L.foreign_antialiased(unit):
        return unit
    try:
        graph = _DeepTracer().trace(unit)
    except Exception as exc:  # any tracing failure selects the fallback, and is reported
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


class _FlopCount(TorchDispatchMode):
    """Sum of ``torch.utils.flop_counter``'s formulas (convolutions, matmuls, attention) over the ops run.

    ``FlopCounterMode`` counts the same ops but also tracks modules and decomposes every op it has no
    formula for, which makes a DenseNet forward ~10x slower; ATen's CNN ops either have a formula or
    cost none by its convention, so the totals agree (tests/test_convert.py checks it).
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def _run(model: nn.Module, args: tuple) -> tuple[Any, int]:
    """Run once in eval mode without gradients (no BatchNorm statistics change); output and FLOPs."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    counter = _FlopCount()
    try:
        with torch.no_grad(), counter:
            out = model(*args)
    finally:
        for m, mode in modes:
            m.training = mode
    return out, counter.total


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
    filter_size: FilterSpec | Sequence[FilterSpec] | Mapping[int, FilterSpec] | None = "auto",
    padding_mode: str = "reflect",
    replace: Iterable[str] | str = KINDS,
    min_channels: int = 1,
    exclude: Iterable[str] | str = (),
    example_input: Tensor | tuple | None = None,
    input_size: Sequence[int] | None = None,
    inplace: bool = False,
    method: str = "blurpool",
    method_options: dict[str, Any] | None = None,
    upsample: bool = False,
) -> tuple[nn.Module, ConvertReport]:
    """Anti-alias every strided pool and conv of ``model`` (Zhang, ICML 2019), keeping its weights.

    See the module docstring for the rules and placements. Only strides change and non-persistent
    blur buffers are added: ``state_dict()`` keys and values are those of ``model``. Every replaced
    site keeps its output shape (checked on the example input when one is given). Converting a
    converted model changes nothing.

    Args:
        model: Any ``nn.Module``.
        filter_size: Blur filter. ``"auto"`` (default): stride-aware, tri4 at stride 2 (the paper's) and
            box(s) convolved three times (``3s - 2`` taps) at stride ``s > 2``, so a patch-embedding stem
            (``k4 s4``, ``k16 s16``) gets a low-pass near ``pi / s`` (see ``antialias.convert.stride_filter``).
            Binomial taps, a name such as ``"tri4"``, a custom 1-D tensor, or one per axis: used at every
            stride. A mapping ``{stride: filter}`` chooses per stride (unnamed strides follow the rule).
        padding_mode: Padding of the blurs (``"reflect"``, ``"replicate"``, ``"zeros"``, ``"circular"``).
        replace: Which kinds to convert, a subset of ``("maxpool", "avgpool", "conv")``.
        min_channels: Leave convs (and pools, where the example input shows their channels) with
            fewer input channels alone; ``min_channels=4`` keeps an RGB stem strided.
        exclude: Module names (``fnmatch`` patterns, e.g. ``"layer4.*"``) to leave alone.
        example_input: A tensor (or tuple of forward arguments) to check shapes and count FLOPs on.
        input_size: Shape of a random example input, instead of ``example_input``.
        inplace: Modify ``model`` itself instead of a deep copy. Always use the returned model: a
            model whose own forward had to be rewritten comes back as a ``torch.fx.GraphModule``.
        method: The downsampler: ``"blurpool"`` (Zhang 2019, the default), ``"aps"`` (Chaman &
            Dokmanic 2021), ``"lps"`` (Rojas-Gomez et al. 2022), ``"ideal"`` (Fourier low-pass) or
            ``"adaptive"`` (Zou et al. 2020); see :mod:`antialias.convert._methods` for the placements.
            ``filter_size`` is then APS's/LPS's pre-blur (1: none) and unused by ideal/adaptive. With
            ``aps``/``lps``, residual shortcuts take the phase of their block's main branch. ``aps`` and
            ``ideal`` add no ``state_dict`` keys; ``lps`` adds each sampler's scoring network
            (``<site>.score.*``) and ``adaptive`` its predictor (``<site>.predictor.*``).
        method_options: Options of the method's layer: ``{"norm": "l1"}`` (aps), ``{"tau": 1.0,
            "hard": True, "hidden_channels": 16}`` (lps), ``{"real": False}`` (ideal),
            ``{"kernel_size": 3, "groups": 8}`` (adaptive).
        upsample: Also anti-alias 2-D upsampling: ``nn.Upsample(mode="nearest")`` at an integer scale
            becomes ``BlurUpsample2d`` (or, with aps/lps, ``PolyphaseUpsample2d`` restoring the phase of
            the encoder's sampler in mirror order), a strided ``nn.ConvTranspose2d`` gets a blur after it.

    Returns:
        ``(converted, report)``; ``print(report)`` lists each site and the costs.

    Raises:
        TypeError: ``model`` is not an eager ``nn.Module`` (a scripted, traced, exported or compiled
            model: convert the eager module first), or an option has the wrong type.
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
    no_blur = filter_size is None and method != "blurpool"  # another method without a pre-blur: a 1-tap filter
    options, example = _validate(model, 1 if no_blur else filter_size, padding_mode, replace, min_channels, exclude,
                                 example_input, input_size, inplace)
    options.method = _D.check_method(method, _WHERE)
    options.method_options = _D.check_options(options.method, method_options, _WHERE)
    if not isinstance(upsample, bool):
        raise TypeError(f"{_WHERE}: `upsample` must be a bool, got {upsample!r}.")
    options.upsample = upsample
    target = model if inplace else _copy(model)
    report = ConvertReport(filter_size=filter_size, padding_mode=padding_mode, method=options.method)
    ctx = _Ctx(options, report, target)
    report.params_before = sum(p.numel() for p in target.parameters())
    report.antialiased = _antialiased_layers(target)
    out_before = None
    if example is not None:
        report.input_size = tuple(example[0].shape) if isinstance(example[0], Tensor) else None
        watched = [m for m in target.modules() if isinstance(m, (*_L.MAXPOOLS, *_L.AVGPOOLS, *_L.CONVS))]
        handles = _record(watched, ctx.observed)
        try:
            out_before, report.flops_before = _run(target, example)
        except Exception as exc:  # re-raised with the argument to blame
            first = next((m for m in target.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d))), None)
            shape = report.input_size
            unbatched = first is not None and shape is not None and len(shape) == len(first.kernel_size) + 1
            fix = (f"The input has no batch dimension: pass input_size={(1, *shape)!r} (or example_input with a "
                   "batch dimension)." if unbatched and shape is not None
                   else "Pass an `example_input`/`input_size` the model accepts.")
            raise ValueError(
                f"{_WHERE}: the model failed on the example input of shape {report.input_size} "
                f"({type(exc).__name__}: {exc}). {fix}"
            ) from exc
        finally:
            for h in handles:
                h.remove()

    converted = _convert_unit(ctx, target, "")
    replaced = ctx.linker.link(converted, report, filter_size, padding_mode)
    ctx.checks = [(name, before, replaced.get(id(mod), mod)) for name, before, mod in ctx.checks]
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
                "this is a bug, please report it (exclude the sites with `exclude=` meanwhile)."
            )
    return converted, report


def _copy(model: nn.Module) -> nn.Module:
    """A deep copy whose ``GraphModule``s keep their class names (a plain deep copy renames them all
    ``GraphModule``, so a converted ``BasicBlock`` would print as ``GraphModule`` after a second convert)."""
    new = copy.deepcopy(model)
    for old_mod, new_mod in zip(model.modules(), new.modules(), strict=True):
        if isinstance(new_mod, fx.GraphModule) and type(new_mod).__name__ != type(old_mod).__name__:
            type(new_mod).__name__ = type(old_mod).__name__
    return new


def _antialiased_layers(model: nn.Module) -> list[str]:
    """``"name (Class from module)"`` of every layer that already anti-aliases (outermost only)."""
    found: list[str] = []
    inside: list[str] = []
    for name, mod in model.named_modules():
        if any(name.startswith(p + ".") for p in inside):
            continue
        if _L.antialiased(mod):
            inside.append(name)
            found.append(f"{name or '<root>'} ({type(mod).__name__} from {type(mod).__module__})")
    return found


def _check_eager(model: Any) -> None:
    """Refuses compiled, scripted, traced and exported models with the fix: convert the eager module first."""
    fix = "Convert the eager nn.Module, then {}: `new, report = convert(model)`, then {} on `new`."
    if isinstance(model, torch.jit.ScriptModule):
        raise TypeError(
            f"{_WHERE}: `model` must be an eager nn.Module, got a TorchScript module ({type(model).__name__}, from "
            "torch.jit.script or torch.jit.trace), whose code convert cannot rewrite. "
            + fix.format("script or trace it", "torch.jit.script / torch.jit.trace")
        )
    if type(model).__name__ == "ExportedProgram" and type(model).__module__.startswith("torch.export"):
        raise TypeError(
            f"{_WHERE}: `model` must be an eager nn.Module, got a torch.export.ExportedProgram. "
            + fix.format("export it", "torch.export.export")
        )
    if isinstance(model, fx.GraphModule) and any(
        n.op == "call_function" and isinstance(n.target, torch._ops.OpOverload) for n in model.graph.nodes
    ):
        raise TypeError(
            f"{_WHERE}: `model` must be an eager nn.Module, got a GraphModule of ATen operators "
            f"({type(model).__name__}, e.g. from torch.export's ExportedProgram.module() or make_fx), where "
            "convolutions and pools are no longer modules. " + fix.format("export it", "torch.export.export")
        )
    if type(model).__name__ == "OptimizedModule" and isinstance(getattr(model, "_orig_mod", None), nn.Module):
        raise TypeError(
            f"{_WHERE}: `model` must be an eager nn.Module, got a torch.compile wrapper (OptimizedModule). "
            "Pass `model._orig_mod` (the eager module), then compile the result: "
            "`new, report = convert(model._orig_mod)`, then torch.compile(new)."
        )


def _validate(
    model: Any, filter_size: Any, padding_mode: Any, replace: Any, min_channels: Any, exclude: Any,
    example_input: Any, input_size: Any, inplace: Any,
) -> tuple[_Options, tuple | None]:
    """Checks the user's arguments (of any type) and returns the options and the example input."""
    _check_eager(model)
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"{_WHERE}: `model` must be a torch.nn.Module, got {type(model).__name__}. Pass the network itself "
            "(not its state_dict or a checkpoint path): build it, load the weights, then convert(model)."
        )
    _cf.check(filter_size, _WHERE)
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
        raise ValueError(
            f"{_WHERE}: `min_channels` must be >= 1, got {min_channels!r}. Use 1 to convert every site, 4 to keep an "
            "RGB stem strided."
        )
    listed = isinstance(exclude, Iterable) and not isinstance(exclude, str)
    patterns = tuple(exclude) if listed else (exclude,)
    if not all(isinstance(p, str) for p in patterns):
        raise TypeError(
            f"{_WHERE}: `exclude` must be module names or fnmatch patterns (str), got {exclude!r}. "
            "Example: exclude=('layer4.*', 'fc')."
        )
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
            raise ValueError(
                f"{_WHERE}: `input_size` must be a tuple of positive ints such as (1, 3, 224, 224), got {input_size!r}."
            )
        ref = next(iter(model.parameters()), None)
        factory: dict[str, Any] = (
            {"device": ref.device, "dtype": ref.dtype} if ref is not None and ref.is_floating_point() else {}
        )
        gen = torch.Generator().manual_seed(0)
        example = (torch.randn(tuple(input_size), generator=gen).to(**factory),)
    elif example_input is not None:
        example = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
        if not example or not isinstance(example[0], Tensor):
            raise TypeError(
                f"{_WHERE}: `example_input` must be a tensor or a tuple of forward arguments, got {example_input!r}."
            )
    options = _Options(filter_size, padding_mode, frozenset(kinds), min_channels, patterns)
    return options, example
