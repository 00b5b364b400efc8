"""Each sampling setting is defined once (its field's Setting): the checks, the CLI's flags
and the README's table of sampler options are built from or checked against it (the
Generate panel's fields: tests/qt/test_generate_recipe.py)."""
from pathlib import Path

import pytest

from micro3d_gui.cli import build_parser, sampling_recipe
from micro3d_gui.core.diffusion.settings import SamplerSettings
from micro3d_gui.core.recipe import DEFAULT_RECIPE, FAST, PAPER, RECIPES, Recipe, get_recipe, \
    sampling_settings
from micro3d_gui.errors import InputError

README = Path(__file__).resolve().parents[2] / "README.md"


def options_table() -> str:
    """The README's table of sampler options, from the definitions."""
    rows = ["| flag | range | `fast` (default) | `paper` | what it does |",
            "|---|---|---|---|---|"]
    for name, spec in sampling_settings().items():
        flag = f"`--[no-]{spec.flag[2:]}`" if spec.kind is bool else f"`{spec.flag}`"
        rows.append(f"| {flag} | {spec.range_text()} | {spec.text(FAST.value(name))} | "
                    f"{spec.text(PAPER.value(name))} | {spec.help} |")
    return "\n".join(rows)


def test_the_readme_table_is_the_definitions():
    assert options_table() in README.read_text(encoding="utf-8"), \
        "README.md's table of sampler options is stale; paste:\n" + options_table()


def test_the_default_recipe_is_the_dataclasses_defaults():
    assert get_recipe(DEFAULT_RECIPE) == FAST == Recipe()
    assert FAST.sampler == SamplerSettings()


def sample_args(*flags):
    return build_parser().parse_args(["sample", "m.pt", "--shape", "8", "8", "8", "--out",
                                      "v.tif", *flags])


@pytest.mark.parametrize("name", list(sampling_settings()))
def test_every_field_has_a_flag_with_its_help_and_range(name, capsys):
    """The flag is the field's, says its help and every recipe's value, and refuses what
    the field refuses (argparse exits 2 naming the flag)."""
    spec = sampling_settings()[name]
    sub = build_parser()._subparsers._group_actions[0].choices["sample"]
    action = next(a for a in sub._actions if a.dest == name)
    assert spec.flag in action.option_strings and action.help.startswith(spec.help)
    assert all(f"{r} {spec.text(recipe.value(name))}" in action.help
               for r, recipe in RECIPES.items())
    if spec.kind is bool:
        assert getattr(sample_args(spec.flag), name) is True
        assert getattr(sample_args(f"--no-{spec.flag[2:]}"), name) is False
        return
    inside = spec.choices[0] if spec.choices else f"{spec.low if spec.low is not None else 2}"
    assert sampling_recipe(sample_args(spec.flag, inside)).value(name) == \
        (inside if spec.choices else spec.kind(inside))
    outside = ([f"{spec.low - 1}"] if spec.low is not None else []) + \
        ([f"{spec.high + 1}"] if spec.high is not None else []) + \
        (["nan"] if spec.kind is float else [])
    for value in ["bad", *outside]:
        with pytest.raises(SystemExit):
            sample_args(spec.flag, value)
        assert f"argument {spec.flag}" in capsys.readouterr().err
    for value in (["bad"] if spec.choices else [spec.kind(float(v)) for v in outside]):
        with pytest.raises(InputError, match=name.replace("_", " ")):  # the library's check
            get_recipe().replace(**{name: value})

