"""Reading 2D micrographs from files and folders.

Supported: PNG, JPEG, BMP (Pillow), TIFF (tifffile: 8/16-bit, float, multipage = several
images). RGB(A) images become grey. Files are taken in natural order (``img2`` before
``img10``). Every failure raises :class:`~.errors.ImageReadError` naming the file and the fix.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .errors import ImageReadError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def natural_key(path: Path) -> list:
    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", path.name)]


def list_images(source: str | os.PathLike) -> list[Path]:
    """Image files of a folder (natural order), or the single file given."""
    src = Path(source)
    if src.is_file():
        _check_suffix(src)
        return [src]
    if not src.is_dir():
        raise ImageReadError(f"{src}: no such file or folder; check the path")
    files = sorted((p for p in src.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                    and not p.name.startswith(".")), key=natural_key)
    if not files:
        raise ImageReadError(
            f"{src}: no images found; put PNG, JPEG, BMP or TIFF micrographs in this folder"
        )
    return files


def _check_suffix(path: Path) -> None:
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageReadError(
            f"{path}: unknown file type '{path.suffix}'; use PNG, JPEG, BMP or TIFF images"
        )


def to_grey(image: np.ndarray, path: Path) -> np.ndarray:
    """``[H, W]``, ``[H, W, 3]`` or ``[H, W, 4]`` -> ``[H, W]`` (alpha dropped)."""
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        rgb = image[..., :3]
        if (rgb == rgb[..., :1]).all():  # grey stored as RGB: keep its exact levels
            return rgb[..., 0]
        from skimage.color import rgb2gray

        return rgb2gray(rgb)
    if image.ndim != 2:
        raise ImageReadError(
            f"{path}: image has shape {image.shape}; expected a 2D grey or RGB image"
        )
    return image


def read_images(path: str | os.PathLike) -> list[np.ndarray]:
    """All 2D images in one file (a multipage TIFF gives several), grey ``[H, W]``."""
    p = Path(path)
    _check_suffix(p)
    try:
        if p.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(p) as tif:
                pages = [page.asarray() for page in tif.pages]
        else:
            from PIL import Image

            with Image.open(p) as im:
                im.load()
                pages = [np.asarray(im.convert("I;16") if im.mode == "I;16B" else im)]
    except ImageReadError:
        raise
    except Exception as exc:  # each reader raises its own types for a broken file
        raise ImageReadError(
            f"{p}: cannot be read as an image ({type(exc).__name__}: {exc}); "
            "the file may be corrupt or truncated: export it again or remove it"
        ) from None
    images = []
    for page in pages:
        # A multipage TIFF page can itself be [S, H, W] (ImageJ stacks).
        stack = page if page.ndim == 3 and page.shape[-1] not in (3, 4) else [page]
        images.extend(to_grey(np.asarray(im), p) for im in stack)
    for im in images:
        if min(im.shape) < 2:
            raise ImageReadError(
                f"{p}: image is only {im.shape[0]}x{im.shape[1]} pixels; "
                "use micrographs at least as large as the training crop"
            )
    return images


def read_folder(source: str | os.PathLike) -> tuple[list[np.ndarray], list[Path]]:
    """Images of a folder (or one file) and, per image, the file it came from."""
    images, origins = [], []
    for f in list_images(source):
        ims = read_images(f)
        images.extend(ims)
        origins.extend([f] * len(ims))
    return images, origins
