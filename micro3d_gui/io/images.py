"""Reading 2D micrographs from files and folders.

Supported: PNG, JPEG, BMP (Pillow), TIFF (tifffile: 8/16-bit, float, multipage = several
images; an ImageJ stack is several images). 1-bit images become 0/255. Colour (RGB(A),
palette) images become grey: grey-looking ones (channels within :data:`GREY_TOLERANCE`)
keep their grey levels; the others become their luminance (0.2125 R + 0.7154 G + 0.0721 B,
in the file's units), so that a label image of at most :data:`MAX_LABEL_LEVELS` colours
gives one level per colour, darkest first (two equally bright colours are refused).
Transparent pixels, NaN and infinite values are refused; a JPEG's EXIF orientation is
applied (the image reads as viewers show it). Files of a folder are taken in natural order
(``img2`` before ``img10``); files that are not images (``notes.txt``, ``.DS_Store``,
``Thumbs.db``, hidden files) are skipped. Every failure raises
:class:`~.errors.ImageReadError` naming the file and the fix.

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

#: Most phases a labelled image may hold: more distinct grey levels (or colours) than this
#: means a raw micrograph (preprocess.labels uses it for grey levels).
MAX_LABEL_LEVELS = 16

#: Largest difference between an integer image's channels (in grey levels of its type, per
#: 255) for which it still counts as grey: JPEG compression tints grey micrographs by 1-3.
GREY_TOLERANCE = 4


def natural_key(path: Path) -> list:
    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", path.name)]


def list_images(source: str | os.PathLike, skipped: list[Path] | None = None) -> list[Path]:
    """Image files of a folder (natural order), or the single file given.

    A folder's other files (not an image suffix, or hidden: ``.DS_Store``, ``._a.png``) are
    left out, and appended to ``skipped`` when given."""
    src = Path(source)
    if src.is_file():
        _check_suffix(src)
        return [src]
    if not src.is_dir():
        raise ImageReadError(f"{src}: no such file or folder; check the path")
    files, others = [], []
    for p in src.iterdir():
        if p.is_file():
            image = p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            (files if image else others).append(p)
    if not files:
        extra = (f" (only {skipped_text(others)})" if others else "")
        raise ImageReadError(
            f"{src}: no images found{extra}; put PNG, JPEG, BMP or TIFF micrographs in this "
            "folder")
    if skipped is not None:
        skipped.extend(sorted(others, key=natural_key))
    return sorted(files, key=natural_key)


def skipped_text(files: Sequence[Path]) -> str:
    """'3 files that are not images (notes.txt, .DS_Store, Thumbs.db)' (at most 5 named)."""
    names = [p.name for p in sorted(files, key=natural_key)]
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    what = "file that is not an image" if len(names) == 1 else "files that are not images"
    return f"{len(names)} {what} ({shown})"


def _check_suffix(path: Path) -> None:
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageReadError(
            f"{path}: unknown file type '{path.suffix}'; use PNG, JPEG, BMP or TIFF images"
        )


def _check_opaque(alpha: np.ndarray, path: Path) -> None:
    """ImageReadError when an alpha channel leaves any pixel (partly) transparent."""
    full = np.iinfo(alpha.dtype).max if alpha.dtype.kind in "ui" else 1.0
    seen = int(np.count_nonzero(alpha != full))
    if seen:
        raise ImageReadError(
            f"{path}: {seen:,} of {alpha.size:,} pixels are (partly) transparent, so what "
            "lies under them is unknown; flatten the image (remove its alpha channel, or fill "
            "the transparent area) and save it again")


def _colours(rgb: np.ndarray) -> np.ndarray:
    """The distinct colours ``[N, 3]`` of an ``[H, W, 3]`` image."""
    flat = rgb.reshape(-1, 3)
    if flat.dtype.kind in "u" and flat.dtype.itemsize <= 2:  # packed: far faster than rows
        bits = 8 * flat.dtype.itemsize
        packed = np.unique((flat[:, 0].astype(np.int64) << 2 * bits)
                           | (flat[:, 1].astype(np.int64) << bits) | flat[:, 2])
        mask = (1 << bits) - 1
        return np.stack([packed >> 2 * bits, (packed >> bits) & mask, packed & mask],
                        -1).astype(flat.dtype)
    return np.unique(flat, axis=0)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """0.2125 R + 0.7154 G + 0.0721 B (scikit-image's weights) in the image's own units
    (0..255 for 8 bits), so colour and grey micrographs of one set share a scale; for
    integer images rounded to a thousandth of a level (readable levels, and colours that
    close count as equally bright)."""
    from skimage.color import rgb2gray

    if rgb.dtype.kind not in "ui":
        return rgb2gray(rgb)
    return np.round(rgb2gray(rgb) * np.iinfo(rgb.dtype).max, 3)


def to_grey(image: np.ndarray, path: Path) -> np.ndarray:
    """``[H, W]``, ``[H, W, 3]`` or ``[H, W, 4]`` (fully opaque) -> ``[H, W]``.

    Grey stored as colour keeps its levels (its type; near-grey within
    :data:`GREY_TOLERANCE` is rounded to it); other colour images become their luminance
    (float64, the file's units), after a check that no two of a label image's colours
    (at most :data:`MAX_LABEL_LEVELS`) are equally bright."""
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        if image.shape[-1] == 4:
            _check_opaque(image[..., 3], path)
        rgb = image[..., :3]
        if (rgb == rgb[..., :1]).all():  # grey stored as RGB: keep its exact levels
            return rgb[..., 0]
        if rgb.dtype.kind in "ui":
            tolerance = GREY_TOLERANCE * (np.iinfo(rgb.dtype).max / 255)
            spread = rgb.max(axis=-1).astype(np.int64) - rgb.min(axis=-1)
            if spread.max() <= tolerance:  # grey-looking (e.g. a JPEG's tint)
                return np.round(_luminance(rgb)).astype(rgb.dtype)
        colours = _colours(rgb)
        if len(colours) <= MAX_LABEL_LEVELS:
            _check_distinct_brightness(colours, path)
        return _luminance(rgb)
    if image.ndim != 2:
        raise ImageReadError(
            f"{path}: image has shape {image.shape}; expected a 2D grey or RGB image"
        )
    return image


def _check_distinct_brightness(colours: np.ndarray, path: Path) -> None:
    """ImageReadError when two of a label image's ``colours [N, 3]`` have one luminance:
    they would become one phase."""
    lum = _luminance(colours[:, None, :])[:, 0]
    order = np.argsort(lum, kind="stable")
    same = np.flatnonzero(np.diff(lum[order]) == 0)
    if len(same):
        a, b = (tuple(int(v) for v in colours[order[i]]) for i in (same[0], same[0] + 1))
        raise ImageReadError(
            f"{path}: the colours {a} and {b} are equally bright, so they would become one "
            "phase (colours become phases darkest first); recolour one of them, or save the "
            "labels as grey levels")


def _pil_array(im, path: Path) -> np.ndarray:
    """A Pillow image as an array of grey values, RGB or RGBA (no palette, no 1-bit), turned
    as its EXIF orientation says (as viewers show it)."""
    from PIL import ImageOps

    if im.getexif().get(0x0112, 1) != 1:  # 0x0112: Orientation; 1 = as stored
        im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16B", "I;16L", "I;16N"):
        im = im.convert("I;16")
    elif im.mode == "1":
        im = im.convert("L")  # bool -> 0/255
    elif im.mode in ("LA", "La"):  # grey + alpha: the grey, once the alpha is checked
        _check_opaque(np.asarray(im.getchannel("A")), path)
        im = im.getchannel("L")
    elif im.mode in ("P", "PA"):
        im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
    elif im.mode == "RGBa":
        im = im.convert("RGBA")
    elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
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
                pages = [_pil_array(im, p)]
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
            bad = ~np.isfinite(im)
            r, c = np.argwhere(bad)[0]
            raise ImageReadError(
                f"{p}: holds {int(bad.sum()):,} NaN or infinite grey values (the first at row "
                f"{r}, column {c}); replace them (e.g. with 0) or remove the file"
            )
        if im.dtype.kind == "c":
            raise ImageReadError(f"{p}: holds complex numbers, not grey values; "
                                 "export the magnitude as a grey image")
    return images


def read_folder(source: str | os.PathLike) -> tuple[list[np.ndarray], list[Path]]:
    """Images of a folder (or one file) and, per image, the file it came from."""
    return read_sources([source])


def read_sources(sources: str | os.PathLike | Sequence[str | os.PathLike],
                 skipped: list[Path] | None = None) -> tuple[list[np.ndarray], list[Path]]:
    """Images of several files and folders, and per image the file it came from.

    ``sources`` is a sequence of paths (a single path is also accepted). They are read in the
    order given; a folder expands to its images in natural order. A file named twice (also
    through its folder) is read once. Grey ``[H, W]`` arrays, as :func:`read_images`.
    Folders' files that are not images are appended to ``skipped`` (when given).
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    if not len(sources):
        raise ImageReadError("no images given; choose image files or a folder of micrographs")
    files, seen = [], set()
    for src in sources:
        for f in list_images(src, skipped):
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
