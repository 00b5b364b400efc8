"""The sampling recipe's options of ``micro3d sample``: --recipe and one flag per recipe
field. Each flag's name, range and help are the field's
:class:`~micro3d_gui.core.diffusion.settings.Setting` (the one definition, which the
Generate panel and the README's table read too); its default is the recipe's."""
from __future__ import annotations

import argparse

from .options import non_negative, non_negative_float, number, positive, unit_interval

#: The option type that refuses, naming the fix, what is outside a field's range:
#: (kind, low, high) -> type.
_TYPES = {(int, 1, None): positive, (int, 0, None): non_negative,
          (float, 0, 1): unit_interval, (float, 0, None): non_negative_float,
          (float, None, None): number}


def _flag_options(spec) -> dict:
    """argparse options of a field's flag: on/off, a choice, or a number in its range."""
    if spec.kind is bool:
        return dict(action=argparse.BooleanOptionalAction)
    if spec.choices:
        return dict(choices=spec.choices)
    return dict(type=_TYPES[spec.kind, spec.low, spec.high], metavar=spec.metavar)


def add_recipe_options(parser: argparse.ArgumentParser) -> None:
    """--recipe and one flag per recipe field; every default is the recipe's, shown in the
    help from the dataclasses (not restated here)."""
    from ..core.recipe import DEFAULT_RECIPE, RECIPES, sampling_settings

    parser.add_argument("--recipe", choices=tuple(RECIPES), default=DEFAULT_RECIPE,
                        help=f"named sampling recipe (default {DEFAULT_RECIPE}); the flags "
                             "below override its fields")
    for name, spec in sampling_settings().items():
        values = ", ".join(f"{r} {spec.text(recipe.value(name))}"
                           for r, recipe in RECIPES.items())
        parser.add_argument(spec.flag, help=f"{spec.help} (recipes: {values})", default=None,
                            dest=name, **_flag_options(spec))


def sampling_recipe(args):
    """The --recipe named, with the flags given overriding its fields (InputError if bad)."""
    from ..core.recipe import get_recipe, sampling_settings

    return get_recipe(args.recipe).replace(
        **{name: getattr(args, name) for name in sampling_settings()})
