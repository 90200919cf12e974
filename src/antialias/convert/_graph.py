"""torch.fx machinery of :func:`antialias.convert`: tracers, node look-up across traces, and the
rewrite of one module's forward into a ``GraphModule`` that keeps the module's children and keys."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.fx as fx
from torch import nn

from antialias.convert import _activations as _A
from antialias.convert import _layers as _L


class _DeepTracer(fx.Tracer):
    """Traces through containers; stops at pools, convs, norms, activations and antialias layers."""

    _LEAVES = (
        *_L.AA_LEAVES, *_L.MAXPOOLS, *_L.AVGPOOLS, *_L.CONVS, *_L.NORM_MODULES, *_L.ACT_MODULES,
    )

    def trace(self, root: Any, concrete_args: dict[str, Any] | None = None) -> fx.Graph:
        # Decided before tracing: the fused norm + activation check runs modules (see _activations.is_leaf).
        self._act_leaves = {id(m) for m in root.modules() if _A.is_leaf(m)} if isinstance(root, nn.Module) else set()
        return super().trace(root, concrete_args)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return (
            isinstance(m, self._LEAVES)
            or _L.foreign_antialiased(m)  # timm's / kornia's / the reference's blur-pools: never traced into
            or id(m) in getattr(self, "_act_leaves", ())  # registered activations, fused norm + activation layers
            or super().is_leaf_module(m, module_qualified_name)
        )


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


def _path(node: fx.Node) -> str:
    """The module path a ``call_module`` node calls (torch.fx types every target as ``str | Callable``)."""
    if not isinstance(node.target, str):
        raise TypeError(f"`_path`: `node` must call a module by its path, got {node.op} of {node.target!r}.")
    return node.target


def _rel_target(node: fx.Node, owner_path: str) -> Any:
    if node.op == "call_module" and owner_path:
        return _path(node)[len(owner_path) + 1 :]
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


def _all_but(kept: fx.Node) -> Callable[[fx.Node], bool]:
    """A ``delete_user_cb`` that redirects every user except ``kept``."""
    return lambda user: user is not kept


def _rewrite_owner(owner: nn.Module, edits: list[_Edit]) -> tuple[fx.GraphModule, dict[int, str]] | None:
    """Trace ``owner``'s own forward, apply ``edits`` and return the GraphModule (None if impossible)."""
    try:
        graph = _ShallowTracer().trace(owner)
    except Exception:  # any failure means: do it another way (the caller reports it)
        return None
    names = set(owner._modules) | set(owner._parameters) | set(owner._buffers) | set(vars(owner))
    added: dict[str, nn.Module] = {}
    where: dict[int, str] = {}
    found = [_find(graph, e.loc) for e in edits]
    nodes = [n for n in found if n is not None]
    if len(nodes) != len(found):
        return None
    for edit, node in zip(edits, nodes, strict=True):
        name = _unique(names, edit.hint)
        added[name] = edit.module
        where[id(edit.module)] = name
        if edit.how == "after":
            with graph.inserting_after(node):
                new = graph.call_module(name, (node,))
            node.replace_all_uses_with(new, delete_user_cb=_all_but(new))
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
            root[node.target] = (
                owner.get_submodule(node.target) if node.op == "call_module" else _getattr(owner, node.target)
            )
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


def _set(root: nn.Module, target: str, new: nn.Module, modules: dict[str, nn.Module] | None = None) -> None:
    parent_path, _, leaf = target.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, leaf, new)
    if modules is not None:
        modules[target] = new
