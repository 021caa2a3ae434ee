"""The tree shows the design (issue 20): no import circles, no module importing from a layer
above its own, the core never importing `analysis`, no module over 400 lines. Read from the
source with ast (imports inside functions count too), so nothing is imported here."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400
# Bottom to top; a unit is a module or package under tune_vqvae/ (or analysis/). A module may
# import its own unit and the units of lower layers only.
LAYERS = [
    {"errors", "vocab", "compat", "sessions"},
    {"objectives", "model", "curves"},
    # a budget on an objective's metric (reads its record; stats judges it), the benchmark's distortion
    {"constraints", "distortion_curves"},
    {"stats", "sampler"},
    {"data", "losses"},
    {"metrics", "storage", "train"},
    {"trainable"},
    {"testing"},
    {"search"},
    {"bench"},
    {"analysis"},
]


def _modules() -> dict[str, Path]:
    files = sorted(ROOT.glob("tune_vqvae/**/*.py")) + sorted(ROOT.glob("analysis/**/*.py"))
    mods = {}
    for p in files:
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return mods


def _imports(name: str, path: Path, mods: dict) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in mods:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


@functools.cache
def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, mods) for name, path in mods.items()}


def _unit(module: str) -> str:
    parts = module.split(".")
    return "analysis" if parts[0] == "analysis" else parts[1] if len(parts) > 1 else "tune_vqvae"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v):
        state[v], _ = 1, stack.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        state[v], _ = 2, stack.pop()
        return None

    return next((c for v in sorted(graph) if v not in state and (c := visit(v))), None)


def test_no_import_cycle():
    assert _cycle(_graph()) is None


def test_no_module_imports_from_a_layer_above():
    layer = {unit: k for k, units in enumerate(LAYERS) for unit in units}
    graph = _graph()
    units = {_unit(m) for m in graph} - {"tune_vqvae"}
    assert units <= set(layer), f"put {sorted(units - set(layer))} in a layer of LAYERS"
    upward = [f"{m} -> {d}" for m, deps in graph.items() for d in deps
              if _unit(m) != "tune_vqvae" and _unit(d) != _unit(m) and layer[_unit(d)] >= layer[_unit(m)]]
    assert upward == []


def test_no_module_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in _modules().values()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_checks_see_a_cycle_and_the_real_graph():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    graph = _graph()
    assert "tune_vqvae.train._trainer" in graph["tune_vqvae.train"]
    assert "tune_vqvae.train.faults" in graph["tune_vqvae.trainable"]  # imported inside a function
