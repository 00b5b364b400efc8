"""Each default, name list and size rule is written once: no module but its definition
restates the preset names, the recipe names, the device list or the crop multiple as
literals (checked on the source), and the faces that show them agree."""
import ast
from pathlib import Path

import micro3d_gui
from micro3d_gui.core.device import DEVICES
from micro3d_gui.core.recipe import RECIPES
from micro3d_gui.core.train_config import CROP_MULTIPLE, PRESET_NAMES

PACKAGE = Path(micro3d_gui.__file__).parent

#: name list -> the one module that may write it out
LISTS = {"preset names": (set(PRESET_NAMES) - {"auto"}, {"core/train_config.py",
                                                          "core/diffusion/unet.py"}),
         "recipe names": (set(RECIPES), {"core/recipe.py"}),
         "devices": (set(DEVICES) - {"auto"}, {"core/device.py"})}


def restated_lists(root: Path) -> list[str]:
    """``file:line`` of every tuple, list or set literal holding two or more names of one
    of :data:`LISTS` outside that list's definition."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                continue
            words = {e.value for e in node.elts
                     if isinstance(e, ast.Constant) and isinstance(e.value, str)}
            for what, (names, homes) in LISTS.items():
                if len(words & names) >= 2 and rel not in homes:
                    found.append(f"{rel}:{node.lineno} restates the {what}")
    return found


#: Parameter names that take the crop multiple.
NAMES = ("multiple", "crop_multiple", "step")


def restated_crop_multiple(root: Path) -> list[str]:
    """``file:line`` of the crop multiple written as a literal outside its definition:
    ``x % 8``, ``multiple=8`` (a call's or a default), ``setSingleStep(8)``, ``CROP_STEP = 8``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel == "core/train_config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            literal = None
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
                literal = node.right
            elif isinstance(node, ast.keyword) and node.arg in NAMES:
                literal = node.value
            elif isinstance(node, ast.arguments):  # ``def f(..., multiple=8)``
                named = node.args[len(node.args) - len(node.defaults):] + node.kwonlyargs
                defaults = node.defaults + node.kw_defaults
                literal = next((d for a, d in zip(named, defaults) if a.arg in NAMES), None)
            elif isinstance(node, ast.Assign) and any(  # ``CROP_STEP = 8``
                    isinstance(t, ast.Name) and ("CROP" in t.id or "MULTIPLE" in t.id)
                    for t in node.targets):
                literal = node.value
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr == "setSingleStep" and node.args):
                literal = node.args[0]
            if isinstance(literal, ast.Constant) and literal.value == CROP_MULTIPLE:
                found.append(f"{rel}:{literal.lineno} writes the crop multiple "
                             f"{CROP_MULTIPLE} as a literal")
    return found


def test_no_name_list_is_restated():
    wrong = restated_lists(PACKAGE)
    assert not wrong, "\n".join(wrong)


def test_the_crop_multiple_is_not_restated():
    wrong = restated_crop_multiple(PACKAGE)
    assert not wrong, "\n".join(wrong)


def test_the_checks_catch_a_restatement(tmp_path):
    (tmp_path / "qt").mkdir()
    (tmp_path / "qt" / "panel.py").write_text(
        f"PRESETS = {tuple(PRESET_NAMES)!r}\nok = ('xy', 'cpu')\n"
        f"def f(spin, crop, multiple={CROP_MULTIPLE}):\n    spin.setSingleStep({CROP_MULTIPLE})\n"
        f"    return crop % {CROP_MULTIPLE}\nCROP_STEP = {CROP_MULTIPLE}\n")
    assert restated_lists(tmp_path) == ["qt/panel.py:1 restates the preset names"]
    assert sorted(w.split(" ")[0] for w in restated_crop_multiple(tmp_path)) == [
        "qt/panel.py:3", "qt/panel.py:4", "qt/panel.py:5", "qt/panel.py:6"]
