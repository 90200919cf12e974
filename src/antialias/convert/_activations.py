"""What :func:`antialias.convert` counts as an activation, so that a strided conv gets the paper's placement.

The paper blurs *after* the nonlinearity (conv at stride 1 -> norm -> activation -> BlurPool). The
activation may sit in four places, all recognised here:

- a torch activation module (``nn.ReLU``, ``nn.SiLU``, ... : ``_layers.ACT_MODULES``);
- a **fused norm + activation** module, as timm builds them (``BatchNormAct2d``, ``GroupNormAct``,
  ``LayerNormAct2d``: a norm subclass holding its activation as a child). They are found by
  behaviour, never by importing timm: a norm layer (``_BatchNorm``, ``_InstanceNorm``, ``GroupNorm``,
  ``LayerNorm`` or a subclass) with a child that is an activation (a torch activation module, a
  registered one, or a parameterless child named ``act``/``activation``/``act_fn``/``nonlinearity``)
  other than ``nn.Identity``, *and* whose output on a random input equals that child applied to the
  output of the same module with the child replaced by ``nn.Identity`` (so the activation is its last
  step). The blur then goes after the whole module;
- a module class or predicate the user registered with :func:`register_activation` (for custom
  activations such as a ``Swish`` class, or fused layers this test does not recognise);
- a function or tensor method in the traced graph (``F.relu``, ``torch.relu``, ``x.relu()``,
  ``F.silu``, ``F.gelu``, ``F.hardswish``, ``x.clamp(0, 6)``, ...), including gated forms computed
  from the normalised map and itself only (``x * torch.sigmoid(x)``, ``x * F.relu6(x + 3) / 6``):
  the blur goes after the node where such a pointwise region closes.
"""

from __future__ import annotations

import copy
import operator
import weakref
from collections.abc import Callable
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from antialias.convert import _layers as _L

__all__ = ["fused_activation", "is_activation", "register_activation", "unregister_activation"]

_WHERE_REGISTER = "`antialias.convert.register_activation`"

#: Registered activation classes and predicates (``register_activation``), in registration order.
_REGISTRY: list[type[nn.Module] | Callable[[nn.Module], bool]] = []

#: Child names that hold the activation of a fused norm + activation module.
ACT_CHILD_NAMES = ("act", "activation", "act_fn", "act_layer", "nonlinearity", "relu")

#: Norm layers that may hold a fused activation (timm's are subclasses of these).
NORM_BASES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
)

#: Pointwise arithmetic allowed inside a gated activation (``x * sigmoid(x)``).
_ARITH_FUNCTIONS = {
    operator.add, operator.mul, operator.truediv, operator.sub, operator.iadd, operator.imul,
    operator.itruediv, operator.isub, torch.add, torch.mul, torch.div, torch.sub,
}
_ARITH_METHODS = {"add", "add_", "mul", "mul_", "div", "div_", "sub", "sub_"}
_GATE_SPAN = 12  # graph nodes scanned past the normalised map for a gated activation's region


def register_activation(
    entry: type[nn.Module] | Callable[[nn.Module], bool],
) -> type[nn.Module] | Callable[[nn.Module], bool]:
    """Make :func:`antialias.convert.convert` treat modules as activations (the paper's blur goes after them).

    Use it for an activation class torch does not define (``class Swish(nn.Module)``) or a fused
    norm + activation layer convert does not recognise on its own. Registered modules are never traced
    into. Works as a class decorator; registering twice is a no-op.

    Args:
        entry: An ``nn.Module`` subclass (its instances are activations) or a predicate
            ``f(module) -> bool``.

    Returns:
        ``entry``, unchanged.

    Raises:
        TypeError: ``entry`` is neither an ``nn.Module`` subclass nor a callable.

    Examples:
        >>> class Swish(nn.Module):
        ...     def forward(self, x):
        ...         return x * torch.sigmoid(x)
        >>> _ = register_activation(Swish)
        >>> is_activation(Swish())
        True
        >>> unregister_activation(Swish)
    """
    if isinstance(entry, type):
        if not issubclass(entry, nn.Module):
            raise TypeError(
                f"{_WHERE_REGISTER}: `entry` must be an nn.Module subclass or a predicate f(module) -> bool, "
                f"got the class {entry.__name__}."
            )
    elif not callable(entry):
        raise TypeError(
            f"{_WHERE_REGISTER}: `entry` must be an nn.Module subclass or a predicate f(module) -> bool, got {entry!r}."
        )
    if entry not in _REGISTRY:
        _REGISTRY.append(entry)
    return entry


def unregister_activation(entry: type[nn.Module] | Callable[[nn.Module], bool]) -> None:
    """Undo :func:`register_activation` for ``entry``.

    Raises:
        ValueError: ``entry`` was not registered.
    """
    if entry not in _REGISTRY:
        raise ValueError(
            f"`antialias.convert.unregister_activation`: `entry` must be a registered class or predicate, "
            f"got {entry!r}. Registered: {_REGISTRY!r}."
        )
    _REGISTRY.remove(entry)


def registered(mod: nn.Module) -> bool:
    """Whether a registered class or predicate claims ``mod``."""
    for entry in _REGISTRY:
        if isinstance(entry, type):
            if isinstance(mod, entry):
                return True
        elif entry(mod):
            return True
    return False


def _plain(mod: nn.Module) -> bool:
    return isinstance(mod, _L.ACT_MODULES) or registered(mod)


# Behaviour of fused modules, per module (the check runs the module; once per object is enough).
_FUSED_CACHE: weakref.WeakKeyDictionary[nn.Module, tuple[str, nn.Module] | None] = weakref.WeakKeyDictionary()


def fused_activation(mod: nn.Module) -> tuple[str, nn.Module] | None:
    """``(child name, child)`` when ``mod`` is a norm layer whose last step is that activation child, else None."""
    if not isinstance(mod, NORM_BASES):
        return None
    if mod in _FUSED_CACHE:
        return _FUSED_CACHE[mod]
    found = None
    for name, child in mod.named_children():
        if isinstance(child, nn.Identity):
            continue
        candidate = _plain(child) or (name in ACT_CHILD_NAMES and not child.state_dict())
        if candidate and _applied_last(mod, name, child):
            found = (name, child)
            break
    _FUSED_CACHE[mod] = found
    return found


def _probe_inputs(mod: nn.Module) -> list[torch.Tensor]:
    channels = getattr(mod, "num_features", None) or getattr(mod, "num_channels", None)
    shape = getattr(mod, "normalized_shape", None)
    if channels is None and shape:
        channels = int(shape[-1])
    if not isinstance(channels, int):
        return []
    ref: torch.Tensor | None = next(iter(mod.parameters()), None)
    if ref is None:
        ref = next(iter(mod.buffers()), None)
    factory: dict[str, Any] = (
        {"device": ref.device, "dtype": ref.dtype} if ref is not None and ref.is_floating_point() else {}
    )
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(2, channels, 5, 6, generator=gen) * 2
    return [base.to(**factory), base.permute(0, 2, 3, 1).contiguous().to(**factory)]  # NCHW, then NHWC


def _probe_copy(mod: nn.Module) -> nn.Module:
    """A copy of ``mod`` with random statistics and affine terms (defaults would make a norm commute with ReLU)."""
    probe = copy.deepcopy(mod)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for key, value in [*probe.named_parameters(), *probe.named_buffers()]:
            if not value.is_floating_point():
                continue
            draw = torch.rand if key.endswith("var") else torch.randn
            noise = draw(value.shape, generator=gen)
            base = 0.5 if key.endswith("var") else (1.0 if key.endswith("weight") else 0.0)
            value.copy_((base + 0.5 * noise).to(value.dtype))
    return probe.eval()


def _applied_last(mod: nn.Module, name: str, child: nn.Module) -> bool:
    """Whether ``mod(x) == child(mod_without_child(x))`` (and differs from ``mod_without_child(x)``).

    Run on a copy with random statistics, so a norm that merely commutes with the activation at its
    initial values is not taken for one followed by it.
    """
    try:
        mod = _probe_copy(mod)
    except Exception:  # a module that cannot be copied cannot be probed: not recognised
        return False
    child = mod._modules[name] or nn.Identity()
    for x in _probe_inputs(mod):  # the copy is in eval mode: no statistics of the user's module change
        try:
            with torch.no_grad():
                out = mod(x.clone())
                mod._modules[name] = nn.Identity()
                try:
                    pre = mod(x.clone())
                finally:
                    mod._modules[name] = child
                expected = child(pre.clone())
        except Exception:  # this input layout does not suit the module: try the next one
            continue
        if not isinstance(out, torch.Tensor) or not isinstance(expected, torch.Tensor):
            return False
        if out.shape != expected.shape or out.shape != pre.shape:
            return False
        return bool(torch.allclose(out, expected, rtol=1e-4, atol=1e-5)) and not bool(
            torch.allclose(out, pre, rtol=1e-4, atol=1e-5)
        )
    return False


def is_activation(mod: nn.Module) -> bool:
    """Whether convert treats ``mod`` as an activation: torch's, registered, or a fused norm + activation."""
    return _plain(mod) or fused_activation(mod) is not None


def is_leaf(mod: nn.Module) -> bool:
    """Whether the tracer must stop at ``mod`` (registered activations and fused norm + activation layers).

    The fused check runs the module, which must not happen while ``torch.fx`` traces (its patched
    ``Module.__call__`` would record the probe): tracers call this on every module before tracing.
    """
    return registered(mod) or fused_activation(mod) is not None


#: Functional activations (node targets) and tensor methods (node names) in a traced graph.
ACT_FUNCTIONS = {
    *_L.ACT_FUNCTIONS,
    F.hardtanh_, F.rrelu_, F.threshold, torch.threshold_, F.logsigmoid, F.softsign, F.tanhshrink,
    F.softshrink, F.hardshrink, torch.selu, torch.celu, torch.rrelu, torch.clamp, torch.clip,
    torch.clamp_min, torch.threshold,
}
ACT_METHODS = {*_L.ACT_METHODS, "clamp", "clamp_", "clip", "clip_", "clamp_min", "clamp_min_", "hardtanh"}


def is_activation_node(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Whether a graph node applies an activation (module, function or tensor method)."""
    if node.op == "call_module":
        mod = modules.get(str(node.target))
        return mod is not None and is_activation(mod)
    if node.op == "call_method":
        return node.target in ACT_METHODS
    return node.op == "call_function" and node.target in ACT_FUNCTIONS


def _pointwise(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if is_activation_node(node, modules):
        return True
    if node.op == "call_function":
        return node.target in _ARITH_FUNCTIONS
    return node.op == "call_method" and node.target in _ARITH_METHODS


def gated_activation(src: fx.Node, modules: dict[str, nn.Module]) -> fx.Node | None:
    """The node closing a pointwise region fed by ``src`` alone that holds a nonlinearity, or None.

    ``y = x * torch.sigmoid(x)``: every use of ``x`` lies in the region ``{sigmoid, mul}``, only ``mul``
    is used outside it, and the region's inputs are ``x`` and constants: the blur goes after ``mul``.
    """
    region: list[fx.Node] = []
    inside = {src}
    node = src.next
    for _ in range(_GATE_SPAN):
        if node.op == "output":
            return None
        uses_region = any(isinstance(a, fx.Node) and a in inside for a in node.all_input_nodes)
        if uses_region:
            if not _pointwise(node, modules):
                return None
            if any(a not in inside for a in node.all_input_nodes):
                return None  # another tensor enters the region (e.g. a residual add): not an activation
            region.append(node)
            inside.add(node)
            open_nodes = [n for n in inside if any(u not in inside for u in n.users)]
            if open_nodes == [node] and any(is_activation_node(n, modules) for n in region):
                return node
        node = node.next
    return None
