"""Reading 2D micrographs from files and folders.

Supported: PNG, JPEG, BMP (Pillow), TIFF (tifffile: 8/16-bit, float, multipage = several
images; an ImageJ stack is several images). RGB(A), palette and grey+alpha images become
grey. Files of a folder are taken in natural order (``img2`` before ``img10``). Every failure
raises :class:`~.errors.ImageReadError` naming the file and the fix.

Every format is bounded as Pillow bounds PNG: an image that declares more than
:func:`max_image_pixels` pixels is refused before it is decoded (default Pillow's own
decompression-bomb limit; the environment variable ``MICRO3D_MAX_IMAGE_PIXELS`` changes it).
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ImageReadError
from .volume import _limit, check_size, unreadable

#: Pillow's DecompressionBombError threshold (2 x Image.MAX_IMAGE_PIXELS), for every format.
MAX_IMAGE_PIXELS = 2 * 89_478_485

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


def _pil_array(im) -> np.ndarray:
    """A Pillow image as an array of grey values, RGB or RGBA (no palette, no 1-bit)."""
    if im.mode in ("I;16B", "I;16L", "I;16N"):
        im = im.convert("I;16")
    elif im.mode == "1":
        im = im.convert("L")  # bool -> 0/255
    elif im.mode == "LA":
        im = im.getchannel("L")
    elif im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV", "PA", "La", "RGBa"):
        im = im.convert("RGB")
    return np.asarray(im)


def max_image_pixels() -> int:
    """Most pixels one image (page) may declare: ``MICRO3D_MAX_IMAGE_PIXELS`` or
    :data:`MAX_IMAGE_PIXELS`."""
    return _limit("MICRO3D_MAX_IMAGE_PIXELS", MAX_IMAGE_PIXELS)


def _check_pixels(path: Path, shape) -> None:
    check_size(path, shape, max_image_pixels(), "MICRO3D_MAX_IMAGE_PIXELS", "pixels")


def _tiff_pages(tif, path: Path) -> list[np.ndarray]:
    pages = []
    for page in tif.pages:
        _check_pixels(path, page.shape[:2] if page.ndim <= 3 else page.shape)
        a = page.asarray()
        # RGB stored plane by plane comes as [3, H, W]: colour last, like the other readers.
        if (a.ndim == 3 and a.shape[0] in (3, 4) and page.photometric == 2
                and page.planarconfig == 2):
            a = np.moveaxis(a, 0, -1)
        pages.append(a)
    return pages


def read_images(path: str | os.PathLike) -> list[np.ndarray]:
    """All 2D images in one file (a multipage TIFF gives several), grey ``[H, W]``.

    Grey values keep the file's type (uint8, uint16, float, ...); colour images become
    float grey in [0, 1] (luminance), except grey stored as RGB, which keeps its levels.
    """
    p = Path(path)
    _check_suffix(p)
    try:
        if p.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(p) as tif:
                pages = _tiff_pages(tif, p)
        else:
            from PIL import Image

            with Image.open(p) as im:
                _check_pixels(p, im.size[::-1])  # before Pillow's own (lower) guard
                im.load()
                pages = [_pil_array(im)]
    except ImageReadError:
        raise
    except Exception as exc:  # each reader raises its own types for a broken file
        from PIL import Image

        if isinstance(exc, Image.DecompressionBombError):
            raise ImageReadError(
                f"{p}: declares more pixels than Pillow's decompression-bomb limit "
                f"({exc}); if the image is genuine, split it into smaller images") from None
        raise unreadable(p, exc, "image") from None
    images = []
    for page in pages:
        # A multipage TIFF page can itself be [S, H, W] (ImageJ stacks).
        stack = page if page.ndim == 3 and page.shape[-1] not in (3, 4) else [page]
        images.extend(to_grey(np.asarray(im), p) for im in stack)
    if not images:
        raise ImageReadError(f"{p}: holds no image data; export it again or remove it")
    for im in images:
        if min(im.shape) < 2:
            raise ImageReadError(
                f"{p}: image is only {im.shape[0]}x{im.shape[1]} pixels; "
                "use micrographs at least as large as the training crop"
            )
        if im.dtype.kind in "fc" and not np.isfinite(im).all():
            raise ImageReadError(
                f"{p}: holds NaN or infinite grey values; replace them (e.g. with 0) "
                "or remove the file"
            )
        if im.dtype.kind == "c":
            raise ImageReadError(f"{p}: holds complex numbers, not grey values; "
                                 "export the magnitude as a grey image")
    return images


def read_folder(source: str | os.PathLike) -> tuple[list[np.ndarray], list[Path]]:
    """Images of a folder (or one file) and, per image, the file it came from."""
    return read_sources([source])


def read_sources(sources: str | os.PathLike | Sequence[str | os.PathLike]
                 ) -> tuple[list[np.ndarray], list[Path]]:
    """Images of several files and folders, and per image the file it came from.

    ``sources`` is a sequence of paths (a single path is also accepted). They are read in the
    order given; a folder expands to its images in natural order. A file named twice (also
    through its folder) is read once. Grey ``[H, W]`` arrays, as :func:`read_images`.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    if not len(sources):
        raise ImageReadError("no images given; choose image files or a folder of micrographs")
    files, seen = [], set()
    for src in sources:
        for f in list_images(src):
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                files.append(f)
    images, origins = [], []
    for f in files:
        ims = read_images(f)
        images.extend(ims)
        origins.extend([f] * len(ims))
    return images, origins
