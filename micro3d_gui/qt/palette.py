"""The app's one palette: phase colours and direction colours (no Qt, display only).

The viewport, the thumbnails, the Data panel's fraction table and every plot take their
colours from here, so that phase 1 and the x direction look the same everywhere.
Phase 0 (the matrix) is dark so that the other phases stand out in 3D; the directions use
the Okabe-Ito colour-blind-safe hues (x blue, y green, z vermilion), which the 3D view's
axis triad shares.
"""
from __future__ import annotations

import numpy as np

#: Phase colours (phase 0 = matrix, dark); cycled for more phases.
PHASE_HEX = ("#3b4a6b", "#f2b134", "#d94f4f", "#4fb36b", "#8e6cc9", "#46b5c9",
             "#c97a46", "#c9c146")
#: Colour of each volume axis / image direction.
DIRECTION_HEX = {"x": "#0072b2", "y": "#009e73", "z": "#d55e00"}
#: Colour of each section plane (e.g. the Train panel's fidelity per plane).
PLANE_HEX = {"xy": "#cc79a7", "xz": "#e69f00", "yz": "#56b4e9"}
#: Colour of a self-check verdict by its level (metrics.selfcheck.level): at the floor
#: green, near it (up to 3x) amber, beyond red, no check grey; dark enough to read as text.
VERDICT_HEX = {"at_floor": "#1b7a3a", "near": "#a86400", "far": "#c0392b", "none": "#666666"}


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))


#: ``PHASE_RGB[k]``: uint8 RGB of phase k (k modulo the palette's length).
PHASE_RGB = np.array([_rgb(c) for c in PHASE_HEX], dtype=np.uint8)


def phase_hex(k: int) -> str:
    return PHASE_HEX[k % len(PHASE_HEX)]


def phase_hexes(num_phases: int) -> list[str]:
    return [phase_hex(k) for k in range(num_phases)]


def phase_rgb(k: int) -> tuple[int, int, int]:
    """uint8 RGB of phase ``k`` (Qt colours)."""
    return tuple(int(v) for v in PHASE_RGB[k % len(PHASE_RGB)])


def phase_float(k: int) -> tuple[float, float, float]:
    """RGB in 0..1 of phase ``k`` (matplotlib colours)."""
    return tuple(v / 255.0 for v in phase_rgb(k))


def direction_hex(axis: str) -> str:
    return DIRECTION_HEX[axis]


def labels_to_rgb(labels: np.ndarray, colours: np.ndarray | None = None) -> np.ndarray:
    """uint8 phase labels ``[H, W]`` -> ``[H, W, 3]`` uint8 RGB (``colours``: one row per
    phase, default :data:`PHASE_RGB`)."""
    table = PHASE_RGB if colours is None else np.asarray(colours, dtype=np.uint8)
    return table[np.asarray(labels).astype(np.intp) % len(table)]
