"""``micro3d-gui --self-test``: check an installation (or a PyInstaller bundle) end to end,
without a window or a display.

Each check prints one line, ``ok   <check>: <detail>``; the first failure prints
``FAIL <check>: <cause>`` and stops. The run exits 0 when every check passed, 1 otherwise.
The checks, in order: the demo micrographs are there, the demo model loads, a tiny volume
samples, it exports to ``.vti`` and reads back equal, the file renders off-screen (VTK) to a
non-blank image, and TauFactor (the diffusivity solver, the import most easily broken in a
frozen app) runs on it. No Qt here: it must work where no display exists.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import paths

#: Default box ``(Z, Y, X)`` and respaced steps: seconds on a CPU with the tiny demo model.
SHAPE = (16, 16, 16)
SAMPLING_STEPS = 4
RENDER_SIZE = (320, 240)
#: The checks :func:`run` makes, in order.
CHECKS = ("resources", "model", "sample", "export", "render", "properties")


class CheckFailed(Exception):
    """A self-test check whose result is wrong (the message says what was found)."""


def check_resources(material: str = paths.DEMO_MATERIAL) -> str:
    """The demo micrographs of ``material``: ``resources/demo/<material>/{xy,xz,yz}``."""
    from .io.images import list_images  # noqa: PLC0415

    root = paths.demo_dir(material)
    counts = {}
    for plane in ("xy", "xz", "yz"):
        folder = root / plane
        if not folder.is_dir():
            raise CheckFailed(f"{folder} is missing (data root {paths.data_root()})")
        counts[plane] = len(list_images(folder))
    return f"{root} ({', '.join(f'{p} {n}' for p, n in counts.items())} images)"


def check_model(model_path: Path) -> tuple[dict, str]:
    """Load the checkpoint; returns it and a description."""
    from .core.checkpoint import load_checkpoint  # noqa: PLC0415

    ckpt = load_checkpoint(model_path)
    preset = ckpt["model_config"].get("preset", "custom")
    return ckpt, (f"{model_path} (preset {preset}, {ckpt['num_phases']} phases, "
                  f"step {int(ckpt.get('step', 0))})")


def check_sample(ckpt: dict, shape: tuple[int, int, int], sampling_steps: int,
                 device: str = "cpu", seed: int = 0) -> tuple[np.ndarray, str]:
    """One volume ``[Z, Y, X]`` uint8: the default recipe cut to ``sampling_steps``
    respaced steps (core.recipe)."""
    from .core.recipe import DEFAULT_RECIPE, get_recipe, sample  # noqa: PLC0415

    t0 = time.perf_counter()
    recipe = get_recipe(DEFAULT_RECIPE).replace(sampling_steps=sampling_steps)
    labels = sample(ckpt, recipe, shape, 1, seed=seed, device=device)
    volume = labels[0].numpy()
    k = int(ckpt["num_phases"])
    if volume.shape != tuple(shape) or volume.dtype != np.uint8:
        raise CheckFailed(f"got a {volume.dtype} volume of shape {volume.shape}, "
                          f"expected uint8 {tuple(shape)}")
    if volume.max() >= k:
        raise CheckFailed(f"label {int(volume.max())} out of range for {k} phases")
    fractions = np.bincount(volume.ravel(), minlength=k) / volume.size
    return volume, (f"{'x'.join(map(str, shape))} voxels, recipe {DEFAULT_RECIPE} with "
                    f"{sampling_steps} steps in "
                    f"{time.perf_counter() - t0:.1f} s, phase fractions "
                    f"{', '.join(f'{f:.2f}' for f in fractions)}")


def check_export(volume: np.ndarray, path: Path):
    """Write ``path`` (.vti) and read it back; returns the read grid and a description."""
    import pyvista as pv  # noqa: PLC0415

    from .io.export import write_vti  # noqa: PLC0415

    write_vti(volume, path)
    grid = pv.read(path)
    back = np.asarray(grid.cell_data["phase"])
    if back.shape != (volume.size,) or not np.array_equal(back, volume.ravel()):
        raise CheckFailed(f"{path} does not read back as the volume written")
    return grid, f"{path} ({path.stat().st_size} bytes, read back equal)"


def render_image(grid, size: tuple[int, int] = RENDER_SIZE) -> tuple[np.ndarray, str]:
    """Render ``grid``'s voxels of phase > 0 (all voxels when the largest label is 0) and
    its outline, off-screen on white; returns the RGB image ``[H, W, 3]`` and the name of
    the VTK render window class that drew it."""
    import pyvista as pv  # noqa: PLC0415

    plotter = pv.Plotter(off_screen=True, window_size=list(size))
    try:
        plotter.set_background("white")
        top = int(np.max(grid.cell_data["phase"]))
        # phase 0 (the matrix) hidden, as in the app's surface view
        shown = grid.threshold(0.5, scalars="phase") if top > 0 else grid
        if shown.n_cells:
            plotter.add_mesh(shown, scalars="phase", clim=[0, max(top, 1)],
                             show_scalar_bar=False)
        plotter.add_mesh(grid.outline(), color="black")
        image = plotter.screenshot(return_img=True)
        return image[..., :3], type(plotter.ren_win).__name__
    finally:
        plotter.close()


def drawn_fraction(image: np.ndarray) -> float:
    """Fraction of pixels of an RGB image that are not the white background."""
    return float(np.any(image != 255, axis=-1).mean())


def check_render(grid, size: tuple[int, int] = RENDER_SIZE) -> str:
    """:func:`render_image` of ``grid``; the image must have the size asked and not be
    blank."""
    image, renderer = render_image(grid, size)
    if image.shape[:2] != (size[1], size[0]):
        raise CheckFailed(f"screenshot of shape {image.shape}, expected {size[1]}x{size[0]}")
    drawn = drawn_fraction(image)
    if drawn < 0.01:
        raise CheckFailed(f"the off-screen image is blank ({drawn:.1%} of pixels drawn)")
    return f"{size[0]}x{size[1]} off-screen image, {drawn:.0%} of pixels drawn ({renderer})"


def check_properties(volume: np.ndarray, device: str = "cpu") -> str:
    """Tortuosity of phase 1 (TauFactor) along z, y, x."""
    from .properties.diffusion import diffusivity  # noqa: PLC0415

    phase = 1 if volume.max() >= 1 else 0
    taus = diffusivity(volume, phase, device)["tortuosity"]
    return "TauFactor tortuosity of phase {} (z, y, x): {}".format(
        phase, ", ".join(f"{t:.3g}" for t in taus.values()))


def run(model_path: str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None,
        shape: tuple[int, int, int] = SHAPE, sampling_steps: int = SAMPLING_STEPS,
        device: str = "cpu", echo: Callable[[str], object] = print) -> int:
    """Run every check; ``echo`` gets one line per check. Returns 0 if all passed, else 1.

    ``model_path`` defaults to :func:`micro3d_gui.paths.demo_model`; ``out_dir`` (where the
    ``.vti`` goes) to a temporary folder that is removed afterwards.
    """
    model = Path(model_path) if model_path is not None else paths.demo_model()
    with tempfile.TemporaryDirectory(prefix="micro3d-selftest-") as tmp:
        out = Path(out_dir) if out_dir is not None else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        state: dict = {}
        checks: dict[str, Callable[[], str]] = {
            "resources": check_resources,
            "model": lambda: _keep(state, "ckpt", check_model(model)),
            "sample": lambda: _keep(state, "volume", check_sample(
                state["ckpt"], shape, sampling_steps, device)),
            "export": lambda: _keep(state, "grid", check_export(
                state["volume"], out / "selftest.vti")),
            "render": lambda: check_render(state["grid"]),
            "properties": lambda: check_properties(state["volume"], device),
        }
        for name in CHECKS:
            try:
                detail = checks[name]()
            except Exception as exc:  # report any failure as one line, never a traceback
                echo(f"FAIL {name}: {type(exc).__name__}: {exc}")
                if os.environ.get("MICRO3D_DEBUG"):
                    traceback.print_exc()
                return 1
            echo(f"ok   {name}: {detail}")
    echo(f"self-test passed ({'frozen app' if getattr(sys, 'frozen', False) else 'Python'} "
         f"{sys.version.split()[0]}, data root {paths.data_root()})")
    return 0


def _keep(state: dict, key: str, result: tuple) -> str:
    """Store a check's value for the next checks and return its description."""
    state[key], detail = result
    return detail
