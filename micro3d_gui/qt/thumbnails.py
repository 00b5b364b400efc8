"""Small pixmaps of micrographs and label images for the data panel (display only)."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from skimage.exposure import rescale_intensity

from .palette import labels_to_rgb


def _subsample(image: np.ndarray, size: int) -> np.ndarray:
    """Every n-th pixel so the long side is about ``2 * size``: cheap before any scaling."""
    step = max(1, max(image.shape[:2]) // (2 * size))
    return image[::step, ::step]


def grey_to_uint8(image: np.ndarray) -> np.ndarray:
    """Any 2D grey image (8/16-bit, float, bool) stretched to 0..255 for display."""
    im = np.asarray(image)
    if im.dtype == np.uint8:
        return im
    im = im.astype(np.float64)
    lo, hi = float(im.min()), float(im.max())
    if hi <= lo:
        return np.zeros(im.shape, np.uint8)
    return rescale_intensity(im, in_range=(lo, hi), out_range=(0, 255)).astype(np.uint8)


def array_to_qimage(array: np.ndarray) -> QImage:
    """``[H, W]`` uint8 grey or ``[H, W, 3]`` uint8 RGB -> a QImage owning its pixels."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    h, w = a.shape[:2]
    if a.ndim == 2:
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_Grayscale8)
    else:
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGB888)
    return img.copy()  # detach from the numpy buffer, which is freed after return


def grey_pixmap(image: np.ndarray, size: int) -> QPixmap:
    """A grey image scaled to fit ``size`` x ``size`` pixels."""
    img = array_to_qimage(grey_to_uint8(_subsample(image, size)))
    return QPixmap.fromImage(img.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.SmoothTransformation))


def labels_pixmap(labels: np.ndarray, size: int, colours: np.ndarray | None = None
                  ) -> QPixmap:
    """A label image in the phase colours (``colours``: one uint8 RGB row per phase,
    default the palette's) scaled to fit ``size`` x ``size`` (no blending)."""
    img = array_to_qimage(labels_to_rgb(_subsample(labels, size), colours))
    return QPixmap.fromImage(img.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.FastTransformation))
