"""The sampling recipe's options of ``micro3d sample``: --recipe and one flag per field."""
from __future__ import annotations

import argparse

from .options import non_negative, non_negative_float, number, positive, unit_interval


#: ``micro3d sample`` flags of the recipe fields: flag -> (field, argparse options). Their
#: defaults are the recipe's (core.recipe); a flag given overrides that field.
RECIPE_FLAGS = {
    "--sampling-steps": ("sampling_steps", dict(type=positive, metavar="S"),
                         "respaced reverse steps (the model's T when unset)"),
    "--harmonize": ("harmonize", dict(type=non_negative, metavar="NH"), "harmonizing steps n_h"),
    "--gamma": ("gamma", dict(type=unit_interval), "blend of Eq. 17, 0 to 1"),
    "--guidance": ("guidance", dict(type=number, metavar="W"),
                   "classifier-free guidance w (1 = conditional only)"),
    "--fraction-guidance": ("fraction_guidance", dict(type=non_negative_float, metavar="WF"),
                            "classifier-free guidance on the phase-fraction condition "
                            "(1 = off)"),
    "--solver": ("solver", dict(choices=None), "reverse step"),
    "--eta": ("eta", dict(type=number), "DDIM noise scale (--solver ddim)"),
    "--harmonize-fraction": ("harmonize_fraction", dict(type=unit_interval, metavar="F"),
                             "harmonize only in this fraction of the steps: the first, noisy "
                             "ones, or with --harmonize-late the last"),
    "--harmonize-late": ("harmonize_late", dict(action=argparse.BooleanOptionalAction),
                         "take --harmonize-fraction at the end (low noise) instead"),
    "--consensus-steps": ("consensus_steps", dict(type=non_negative, metavar="N"),
                          "the last N steps step from the mean x0 estimate of all three "
                          "planes (2 more network calls each)"),
    "--x0-projection": ("x0_projection", dict(choices=None),
                        "correction of each x0 estimate (none = the paper's)"),
    "--anchor": ("anchor_fractions", dict(action=argparse.BooleanOptionalAction),
                 "hold the volume fractions at the target (the micrographs' by default)"),
    "--decoded-anchor": ("anchor_decoded", dict(action=argparse.BooleanOptionalAction),
                         "hold the decoded (sign / argmax) fractions at the target exactly "
                         "(auto: for --fractions only)"),
    "--match-variance": ("match_variance", dict(action=argparse.BooleanOptionalAction),
                         "restore the variance of the Eq. 17 blend (--no-match-variance: "
                         "the paper's plain blend)"),
    "--max-batch": ("max_batch", dict(type=positive),
                    "most slices per network call (lower it to save memory)"),
}

def add_recipe_options(parser: argparse.ArgumentParser) -> None:
    """--recipe and one flag per recipe field; every default is the recipe's, shown in the
    help from the dataclasses (not restated here)."""
    from ..core.diffusion.settings import SOLVERS, X0_PROJECTIONS
    from ..core.recipe import DEFAULT_RECIPE, RECIPES

    parser.add_argument("--recipe", choices=tuple(RECIPES), default=DEFAULT_RECIPE,
                        help=f"named sampling recipe (default {DEFAULT_RECIPE}); the flags "
                             "below override its fields")
    choices = {"solver": SOLVERS, "x0_projection": X0_PROJECTIONS}
    for flag, (name, options, text) in RECIPE_FLAGS.items():
        values = ", ".join(f"{r} {_recipe_value(recipe, name)}" for r, recipe in RECIPES.items())
        options = dict(options, default=None, dest=name)
        if "choices" in options:
            options["choices"] = choices[name]
        parser.add_argument(flag, help=f"{text} (recipes: {values})", **options)

def _recipe_value(recipe, name: str):
    if name == "sampling_steps":
        return recipe.sampling_steps or "T"
    value = getattr(recipe.sampler, name)
    return "auto" if value is None else value

def sampling_recipe(args):
    """The --recipe named, with the flags given overriding its fields (InputError if bad)."""
    from ..core.recipe import get_recipe

    return get_recipe(args.recipe).replace(
        **{name: getattr(args, name) for name, _, _ in RECIPE_FLAGS.values()})
