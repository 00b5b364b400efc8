"""Layers point one way, and the non-GUI layers import no Qt.

Floors, lowest first: ``errors`` and ``paths`` (nothing of ours); ``io`` (files in and
out); ``core`` (planes, encoding, the diffusion model, training, sampling); ``properties``
(diffusivity, elasticity); ``metrics`` (statistics, reports); ``preprocess`` (segmentation,
labelled data sets, plane sets, synthetic materials: it uses the fraction metrics);
``session`` (the Qt-free session logic both faces share: data, document, project, model
summary); and on top the faces: ``cli``, ``gui``, ``selftest`` and the Qt layer ``qt``. A
module may import from its own floor or below, never above (checked on the source,
function-level imports included).
"""
import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import micro3d_gui

QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "pyvistaqt", "qtpy", "superqt")
PACKAGE = Path(micro3d_gui.__file__).parent
FLOORS = {"errors": 0, "paths": 0, "picking": 0, "interrupt": 0, "io": 1, "core": 2,
          "properties": 3, "metrics": 4, "preprocess": 5, "session": 6, "estimate": 6,
          "cli": 7, "gui": 7, "selftest": 7, "qt": 7, "__main__": 7,
          "__init__": 7}


def non_gui_modules():
    names = []
    for info in pkgutil.walk_packages(micro3d_gui.__path__, "micro3d_gui."):
        if ".qt" not in info.name and not info.name.endswith("__main__"):
            names.append(info.name)
    return names


def test_non_gui_modules_import_no_qt():
    modules = non_gui_modules()
    assert "micro3d_gui.core.diffusion.sampler" in modules and "micro3d_gui.cli" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


#: The one benchmark that times the desktop app itself (its Train panel against the CLI).
APP_BENCHMARKS = ("app_training.py",)


def test_benchmarks_import_no_qt():
    """The benchmarks reach the product through the Qt-free layers, as the CLI does."""
    wrong = []
    for path in sorted((PACKAGE.parent / "benchmarks").glob("*.py")):
        if path.name in APP_BENCHMARKS:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            wrong += [f"{path.name}:{node.lineno} imports {n}" for n in names
                      if n.split(".")[0] in QT_MODULES or ".qt" in n or n.endswith(".gui")]
    assert not wrong, "\n".join(wrong)


def imports_of(path: Path, root: Path) -> list[tuple[str, int]]:
    """``(imported module of ours, line)`` for every import in the source file ``path``
    of the package folder ``root`` (relative imports resolved)."""
    package = [root.name, *path.relative_to(root).parts[:-1]]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            folder = root.parent.joinpath(*module.split("."))
            for a in node.names:  # ``from .. import errors`` may name a module
                is_module = (folder / f"{a.name}.py").is_file() or (folder / a.name).is_dir()
                found.append((f"{module}.{a.name}" if is_module else module, node.lineno))
    return [(m, line) for m, line in found if m.split(".")[0] == root.name]


def floor(module: str) -> tuple[str, int] | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the package itself (its __init__ holds only __version__)
    name = parts[1]
    assert name in FLOORS, f"{module}: give the new layer a floor in FLOORS"
    return name, FLOORS[name]


def upward_imports(root: Path) -> list[str]:
    wrong = []
    for path in sorted(root.rglob("*.py")):
        here = floor(".".join([root.name, *path.relative_to(root).with_suffix("").parts]))
        for module, line in dict.fromkeys(imports_of(path, root)):
            there = floor(module)
            if here and there and there[1] > here[1]:
                wrong.append(f"{path.relative_to(root.parent)}:{line} ({here[0]}) imports "
                             f"{module} ({there[0]}, a higher floor)")
    return wrong


def test_every_import_points_down_or_sideways():
    wrong = upward_imports(PACKAGE)
    assert not wrong, "\n".join(wrong)


def test_the_check_catches_an_upward_import(tmp_path):
    fake = tmp_path / "micro3d_gui"
    (fake / "io").mkdir(parents=True)
    (fake / "io" / "ok.py").write_text("from ..errors import InputError\n")
    (fake / "io" / "bad.py").write_text("def f():\n    from ..core import training\n")
    (fake / "core").mkdir()
    (fake / "core" / "worse.py").write_text("import micro3d_gui.metrics.report\n")
    assert upward_imports(fake) == [
        "micro3d_gui/core/worse.py:1 (core) imports micro3d_gui.metrics.report (metrics, "
        "a higher floor)",
        "micro3d_gui/io/bad.py:2 (io) imports micro3d_gui.core (core, a higher floor)"]


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join([root.name, *(parts[:-1] if parts[-1] == "__init__" else parts)])


def import_circles(root: Path) -> list[list[str]]:
    """Groups of the package's modules that import each other round a circle (function-level
    imports included: a lazy import hides a circle, it does not remove it), each sorted."""
    graph = {module_name(p, root): {m for m, _ in imports_of(p, root)}
             for p in sorted(root.rglob("*.py"))}
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v] & graph.keys() - {v}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                circles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(circles)


def test_no_import_circle():
    circles = import_circles(PACKAGE)
    assert not circles, "\n".join(" <-> ".join(c) for c in circles)


def test_the_check_catches_an_import_circle(tmp_path):
    fake = tmp_path / "micro3d_gui"
    (fake / "core").mkdir(parents=True)
    (fake / "core" / "a.py").write_text("from . import b\n")
    (fake / "core" / "b.py").write_text("def f():\n    from .c import g\n")
    (fake / "core" / "c.py").write_text("import micro3d_gui.core.a\n")
    (fake / "core" / "d.py").write_text("from .a import b\n")
    assert import_circles(fake) == [["micro3d_gui.core.a", "micro3d_gui.core.b",
                                     "micro3d_gui.core.c"]]
