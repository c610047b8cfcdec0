"""The house's rooms and arrows (ARCHITECTURE.md), checked on the code itself: every import of every
product module — at the top or inside a function, so a lazy import cannot hide an arrow — goes to a
room its room may use, and no set of modules imports itself round in a circle."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from conftest import ROOT

# room → the rooms it may import (besides itself); everything else of the project is above it
ROOMS = {
    "baton_core": set(),
    "backend": {"baton_core"},
    "baton_rigs": {"baton_core"},
    "blender_addon": {"baton_core", "baton_rigs"},
    "baton_render": {"baton_core", "baton_rigs", "backend"},
    "training": {"baton_core", "backend"},
    "tools": {"baton_core", "baton_rigs", "backend"},
}
# what each room may take from outside the project: the add-on and the rig library run in Blender's
# own Python (numpy, bpy, no torch or scipy); the core runs in both processes
THIRD_PARTY = {
    "baton_core": {"numpy"},
    "baton_rigs": {"numpy", "bpy", "mathutils", "bmesh", "bpy_extras", "addon_utils"},  # addon_utils: the exporters
    "blender_addon": {"numpy", "bpy", "mathutils", "addon_utils", "bpy_extras", "aud"},  # aud: Blender's audaspace
}


def _modules() -> dict[str, Path]:
    out = {}
    for room in ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module `name` imports, relative imports resolved: for `from pkg import x`, the module
    pkg.x when there is one, else pkg itself (a package's __init__ running before its submodules is
    how packages work, not an arrow)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            for a in node.names:
                found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {m for m in _imports(name, path, modules) if m in modules and m != name}
            for name, path in modules.items()}


def test_every_import_goes_down_to_a_room_it_may_use():
    modules = _modules()
    wrong = []
    for name, path in modules.items():
        room = name.split(".")[0]
        for imported in _imports(name, path, modules):
            top = imported.split(".")[0]
            if top in ROOMS and top != room and top not in ROOMS[room]:
                wrong.append(f"{name} imports {imported}")
            if room in THIRD_PARTY and top not in ROOMS and top not in sys.stdlib_module_names and top:
                if top not in THIRD_PARTY[room] and top != "__future__":
                    wrong.append(f"{name} imports {imported}, which {room} may not use")
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_itself_round_a_circle():
    graph = _graph()
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_the_checker_sees_arrows():
    """The checks above must be looking at real imports (a broken walker would pass them vacuously)."""
    graph = _graph()
    assert "baton_core.take" in graph["backend.engine"] and "baton_rigs.keyframes" in graph["baton_render.stage"]
    assert "backend.engine" in graph["baton_render.piece"]
