"""The project's import graph, read from the source (every `import`, at module level or inside a function).

    graph = import_graph(SRC)                 # {"talkface.evaluate": {"talkface.metrics.image", ...}, ...}
    module_files(closure(graph, ["talkface.evaluate"]), SRC)   # the files a stage runs
    cycles(graph)                             # strongly connected groups of more than one module (or self-imports)

Only modules of the package count (talkface.*); an imported name that is a submodule (`from .metrics import lse`)
is an edge to that submodule. `executed_graph` adds the edges Python adds on its own: importing a.b.c runs a/__init__
and a/b/__init__ first, which is what a stage depends on; the explicit graph (without them) is the one that must have
no circle (a package __init__ that re-exports its modules is not a circle).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "talkface"


def _module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules(src: Path) -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    return {_module_name(p, src): p for p in sorted((src / PACKAGE).rglob("*.py"))}


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is a module of the package."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in known:
            return candidate
    return None


def imports_of(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """Package modules imported by one file (anywhere in it)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, known)
                if target:
                    out.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not (mod == PACKAGE or mod.startswith(PACKAGE + ".")):
                continue
            for alias in node.names:  # `from .pkg import sub` names a submodule
                sub = f"{mod}.{alias.name}"
                target = sub if sub in known else _resolve(mod, known)
                if target:
                    out.add(target)
    out.discard(name)
    return out


def import_graph(src: Path) -> dict[str, set[str]]:
    known = modules(src)
    return {name: imports_of(path, name, known) for name, path in known.items()}


def executed_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """`graph` plus each module's parent packages (their __init__ runs first)."""
    out = {k: set(v) for k, v in graph.items()}
    for name in graph:
        parts = name.split(".")
        out[name] |= {".".join(parts[:i]) for i in range(1, len(parts))}
    return out


def closure(graph: dict[str, set[str]], roots) -> set[str]:
    seen, todo = set(), list(roots)
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    return seen


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def script_imports(path: Path, src: Path) -> set[str]:
    """Package modules a script outside the package (a stage) imports."""
    known = modules(src)
    return imports_of(path, "__script__", known)


def stage_code(script: Path, root: Path) -> list[str]:
    """Repository-relative files a stage script runs: itself, the local modules it imports (stages/_bootstrap.py) and
    every package module reached from its imports, with the package __init__ files Python runs on the way."""
    src = root / "src"
    graph = executed_graph(import_graph(src))
    known = modules(src)
    files = {script}
    for local in ast.walk(ast.parse(script.read_text())):  # `import _bootstrap`: a sibling module of the script
        if isinstance(local, ast.Import):
            for alias in local.names:
                sibling = script.parent / f"{alias.name}.py"
                if sibling.is_file():
                    files.add(sibling)
    reached = closure(graph, {m for m in script_imports(script, src) for m in [m]} |
                      {p for m in script_imports(script, src) for p in executed_graph({m: set()})[m]})
    files |= {known[m] for m in reached}
    return sorted(str(f.relative_to(root)) for f in files)


if __name__ == "__main__":  # the code deps of every stage script, as dvc.yaml must list them
    import sys

    root = Path(__file__).resolve().parents[1]
    scripts = [Path(a) for a in sys.argv[1:]] or sorted((root / "stages").glob("*.py"))
    for script in scripts:
        if script.name.startswith("_") or script.name == "queue_ablations.py":
            continue
        print(f"{script.relative_to(root) if script.is_absolute() else script}:")
        for f in stage_code(script.resolve(), root):
            print(f"  - {f}")
