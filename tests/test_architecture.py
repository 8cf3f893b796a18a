"""The shape of the package, read from its source with ``ast``: no import cycles, short functions.

Both rules come from ``docs/architecture.md`` ("a shared concept has one home", "a function body
is at most 80 lines"). The import graph counts every import: module-level and inside functions,
absolute and relative, and ``from xequi import x`` as an import of the submodule ``xequi.x``
when ``x`` is one.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "xequi"
MAX_BODY_LINES = 80


def _modules() -> dict[str, Path]:
    """{dotted module name: source file} of every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _resolve(node: ast.ImportFrom, here: str, modules: dict[str, Path]) -> str:
    """The absolute module a ``from ... import`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = here.split(".")
    if not _is_package(here, modules):
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _nearest_module(name: str, modules: dict[str, Path]) -> str | None:
    """``name`` if it is a module of the package, else its closest parent that is one."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_graph() -> dict[str, set[str]]:
    """{module: modules of the package it imports}, from every import statement in its source."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for here, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node, here, modules)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                found = _nearest_module(target, modules) if target.startswith("xequi") else None
                if found is not None and found != here:
                    graph[here].add(found)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def long_functions(limit: int = MAX_BODY_LINES) -> list[str]:
    """``"file:line name (n lines)"`` for every function whose body, docstring excluded, is
    longer than ``limit`` lines (from the first statement after the docstring to its end)."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = node.body
            if (len(body) > 1 and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                body = body[1:]
            n = node.end_lineno - body[0].lineno + 1
            if n > limit:
                out.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} "
                           f"({n} lines)")
    return out


# --------------------------------------------------------------------------------------------
# the checkers themselves
# --------------------------------------------------------------------------------------------
def test_cycle_finder_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_graph_resolves_relative_and_from_package_imports():
    graph = import_graph()
    assert "xequi.errors" in graph["xequi.train"]
    assert "xequi.models.normalized" in graph["xequi.checkpoint"]
    # ``from xequi import checkpoint as ck`` is an import of the submodule, not of the package
    assert "xequi.checkpoint" in graph["xequi.train"]
    assert "xequi" not in graph["xequi.train"]


# --------------------------------------------------------------------------------------------
# the rules
# --------------------------------------------------------------------------------------------
def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle in xequi/: " + " -> ".join(cycle)


def test_inference_does_not_import_training():
    graph = import_graph()
    for module in ("xequi.forecast", "xequi.checkpoint", "xequi.models.normalized",
                   "xequi.models.card"):
        assert "xequi.train" not in graph[module], module


def test_no_function_body_over_80_lines():
    offenders = long_functions()
    assert not offenders, (f"{len(offenders)} function bodies (docstring excluded) are over "
                           f"{MAX_BODY_LINES} lines:\n" + "\n".join(offenders))


#: The layers of docs/architecture.md ("Layers and what each may import"), lowest first. A module
#: may import modules of its own layer or of a lower one, never of a higher one. A module not
#: listed belongs to the layer of its closest listed parent package.
LAYERS = (
    ("foundation", ("xequi.errors", "xequi._version", "xequi.units", "xequi.routing", "xequi.io")),
    ("data", ("xequi.fields", "xequi.windows", "xequi.ocean", "xequi.geostrophy",
              "xequi.regrid", "xequi.datasets", "xequi.catalog")),
    ("symmetry", ("xequi.symmetry",)),
    ("models", ("xequi.models",)),
    ("checkpoint", ("xequi.checkpoint",)),
    ("workflows", ("xequi.train", "xequi.forecast")),
    ("evaluation", ("xequi.diagnostics", "xequi.skill", "xequi.plot")),
    ("interfaces", ("xequi", "xequi.accessor", "xequi.cli", "xequi.demo")),
)


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of ``module`` (its closest listed parent's)."""
    parts = module.split(".")
    while parts:
        name = ".".join(parts)
        for i, (_, members) in enumerate(LAYERS):
            if name in members:
                return i
        parts.pop()
    raise KeyError(module)


def test_every_module_has_a_layer():
    missing = []
    for module in import_graph():
        try:
            layer_of(module)
        except KeyError:
            missing.append(module)
    assert not missing, f"modules in no layer of docs/architecture.md: {missing}"


def test_no_module_imports_a_higher_layer():
    graph = import_graph()
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
              for m, targets in sorted(graph.items()) for t in sorted(targets)
              if layer_of(t) > layer_of(m)]
    assert not upward, "imports against the layering of docs/architecture.md:\n" + "\n".join(upward)


def test_layer_rule_catches_an_upward_import():
    assert layer_of("xequi.symmetry.rotation") < layer_of("xequi.models.mirror")
    assert layer_of("xequi.models.card") < layer_of("xequi.train")
    assert layer_of("xequi.datasets._cache") == layer_of("xequi.fields")


def test_architecture_page_lists_the_layers():
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    for name, members in LAYERS:
        assert f"**{name}**" in text, name
        for m in members:
            assert f"`{m}`" in text, m
