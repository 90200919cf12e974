"""The package's dependency rule: imports flow one way through the layers below, with no cycles.

Every module of ``src/antialias`` is parsed (imports inside functions included) and each edge
``a imports b`` is checked against the layer table: a module may import its own layer and the
layers below it, never one above, and never a peer layer named in ``FORBIDDEN``. ARCHITECTURE.md
draws the same table.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: Lowest first. A module belongs to the first entry whose prefix matches (longest prefix wins).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", (
        "antialias._version",
        "antialias._docs",
        "antialias._io",
        "antialias._manifest",
        "antialias._factory",
        "antialias._download",
        "antialias.checkpoint",
        "antialias.filters",
    )),
    ("functional", ("antialias._ext", "antialias._ops", "antialias._kernels", "antialias.functional")),
    ("layers", ("antialias.layers", "antialias.downsample")),
    ("convert", ("antialias.convert",)),
    ("models", ("antialias.models",)),
    ("data", ("antialias.data",)),
    ("runs", ("antialias.runs",)),
    ("eval", ("antialias.eval",)),
    ("train", ("antialias.train",)),
    ("report", ("antialias.report",)),
    ("reproduce", ("antialias.reproduce",)),
    ("cli", ("antialias.cli", "antialias.__main__", "antialias")),
)

#: Layers that share a rank in spirit but must not know each other.
FORBIDDEN = {("train", "eval"), ("eval", "train")}


def _layer_of(module: str) -> tuple[int, str]:
    best: tuple[int, int, str] | None = None
    for rank, (name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rank, name)
    if best is None:
        raise AssertionError(f"module {module} is in no layer of tests/test_architecture.py: add it to LAYERS")
    return best[1], best[2]


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "antialias").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _edges(module: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported first-party module, line) for every import in ``path``, nested ones included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import sub` imports the submodule pkg.sub when there is one.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            if target == "antialias" or target.startswith("antialias."):
                while target not in known:  # `import antialias.x.y` names a module; attributes resolve upward
                    target = target.rpartition(".")[0]
                out.append((target, node.lineno))
    return out


def _graph() -> tuple[dict[str, Path], dict[str, list[tuple[str, int]]]]:
    modules = _modules()
    return modules, {m: _edges(m, p, set(modules)) for m, p in modules.items()}


def test_every_module_has_a_layer():
    for module in _modules():
        _layer_of(module)


def _violations(graph: dict[str, list[tuple[str, int]]]) -> list[str]:
    """``module:line: a (layer) imports b (layer)`` for every edge against the layer order."""
    bad = []
    for module, edges in graph.items():
        rank, layer = _layer_of(module)
        for target, line in edges:
            t_rank, t_layer = _layer_of(target)
            if t_rank > rank or (layer, t_layer) in FORBIDDEN:
                bad.append(f"{module}:{line}: {module} ({layer}) imports {target} ({t_layer})")
    return sorted(set(bad))


def _cycles(adjacency: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in adjacency:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if i < len(adjacency.get(node, ())):
                work.append((node, i + 1))
                nxt = adjacency[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_imports_flow_one_way():
    _, graph = _graph()
    bad = _violations(graph)
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_no_import_cycles():
    _, graph = _graph()
    adjacency = {m: sorted({t for t, _ in edges if t != m}) for m, edges in graph.items()}
    detail = []
    for component in _cycles(adjacency):
        members = set(component)
        detail.append("cycle: " + ", ".join(f"{m} -> {t}" for m in component for t in adjacency[m] if t in members))
    assert not detail, "\n".join(detail)


def test_the_checks_can_fail():
    # An upward edge, a forbidden peer edge and a cycle, each named.
    graph = {
        "antialias.filters": [("antialias.layers", 7)],
        "antialias.eval.consistency": [("antialias.train.loop", 3)],
        "antialias.train.loop": [],
        "antialias.layers": [],
    }
    assert _violations(graph) == [
        "antialias.eval.consistency:3: antialias.eval.consistency (eval) imports antialias.train.loop (train)",
        "antialias.filters:7: antialias.filters (base) imports antialias.layers (layers)",
    ]
    assert _violations({"antialias.layers": [("antialias.filters", 1)]}) == []
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert _cycles({"a": ["b"], "b": []}) == []


def test_nested_imports_are_seen(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from antialias.train import loop\n    import antialias.eval.consistency\n")
    known = {"antialias.train.loop", "antialias.train", "antialias.eval", "antialias.eval.consistency"}
    assert _edges("antialias.filters", module, known) == [("antialias.train.loop", 2),
                                                           ("antialias.eval.consistency", 3)]
